"""A fast load publisher: many devices, a realistic mix, QoS 1, fixed rate or as fast as it goes.

It speaks only the wire protocol (docs/device-protocol.md) over a minimal MQTT v5 client written
for this loop alone (CONNECT, PUBLISH QoS 1, PUBACK): a general client library's per-message
overhead would make the publisher, not the system under test, the bottleneck. Several
processes (``--processes``) split the devices between them, so one device's messages always
leave from one connection, in order.

Every message carries absolute, distinct times (``bt`` = the publish time), so the receiving
side can count rows against messages exactly and measure publish-to-commit latency.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Final

import msgspec

from devices import mqtt_codec as mc
from devices.wire import TOPIC_ROOT

ACC_SAMPLES: Final = 50  # one window = 1 s at 50 Hz


@dataclass(frozen=True, slots=True)
class Mix:
    """Shares of each kind of message (the rest are vitals: hr, spo2, battery)."""

    status: float = 0.05
    event: float = 0.05
    acc: float = 0.05

    def kinds(self, n: int = 100) -> list[str]:
        """A fixed, evenly interleaved cycle of ``n`` kinds with these shares."""
        counts = {
            "status": round(self.status * n),
            "event": round(self.event * n),
            "acc": round(self.acc * n),
        }
        cycle = ["vitals"] * (n - sum(counts.values()))
        for kind, c in counts.items():
            for i in range(c):
                cycle.insert((i * len(cycle)) // max(c, 1) + i, kind)
        return cycle


# Rows one message of each kind yields in the database (status updates device_status only).
ROWS: Final = {"vitals": ("telemetry", 3), "event": ("events", 1), "acc": ("acc_windows", 1)}


def device_ids(count: int, sites: int, prefix: str = "ld") -> list[tuple[str, str]]:
    """The load fleet's (site_id, device_id) pairs; the bench provisions the same names."""
    return [(f"{prefix}s{i % sites:04d}", f"{prefix}{i:06d}") for i in range(count)]


def payload(kind: str, device_id: str, now: float, seq: int) -> tuple[str, bytes, bool]:
    """(channel, body, retain) of one message of ``kind``."""
    if kind == "status":
        body = {"online": True, "battery": 50 + seq % 50, "fw": "1.4.2", "ts": now}
        # Real devices retain their status; the load does not, so it leaves no state in the
        # broker (Mosquitto 2.0 hands retained messages even to new shared subscribers).
        return "status", msgspec.json.encode(body), False
    if kind == "event":
        name, value = ("motion", {"vb": True}) if seq % 2 else ("door", {"vs": "open"})
        return (
            "event",
            msgspec.json.encode([{"bn": f"{device_id}:", "bt": now, "n": name, **value}]),
            False,
        )
    if kind == "acc":
        recs: list[dict[str, object]] = [{"bn": f"{device_id}:", "bt": now}]
        for i in range(ACC_SAMPLES):
            t = round(i / ACC_SAMPLES, 3)
            z = 9.81 + 0.3 * math.sin(seq + i / 5)
            recs += [
                {"n": "acc_x", "v": round(0.1 * math.cos(i), 3), "t": t},
                {"n": "acc_y", "v": round(0.1 * math.sin(i), 3), "t": t},
                {"n": "acc_z", "v": round(z, 3), "t": t},
            ]
        recs[1].update(recs.pop(0))  # bn/bt ride on the first record
        return "telemetry", msgspec.json.encode(recs), False
    body_v = [
        {"bn": f"{device_id}:", "bt": now, "n": "hr", "u": "beat/min", "v": 60 + seq % 40},
        {"n": "spo2", "u": "%", "v": 94 + seq % 5},
        {"n": "battery", "u": "%EL", "v": 50 + seq % 50},
    ]
    return "telemetry", msgspec.json.encode(body_v), False


@dataclass(slots=True)
class Counters:
    sent: int = 0
    acked: int = 0
    errors: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)
    # Wall clock in µs (one clock for every process and the database): first send, last ack.
    first_sent_us: int = 0
    last_ack_us: int = 0


class Publisher:
    """One connection publishing QoS 1 with a bounded window of unacknowledged messages."""

    def __init__(self, host: str, port: int, username: str, password: str, client_id: str):
        self.addr = (host, port)
        self.creds = (client_id, username, password)
        self.counters = Counters()
        self.window = asyncio.Semaphore(2000)
        self.done = asyncio.Event()
        self._finished = False

    async def run(self, messages: Iterator[tuple[str, str, str, float]], rate: float) -> None:
        reader, writer = await asyncio.open_connection(*self.addr)
        client_id, username, password = self.creds
        writer.write(
            mc.connect(
                client_id=client_id,
                username=username,
                password=password,
                keepalive_s=60,
                clean_start=True,
                session_expiry_s=0,
                receive_maximum=65535,
            )
        )
        head = await reader.readexactly(2)
        rest = await reader.readexactly(head[1])
        if head[0] != 0x20 or rest[1] != 0:
            raise ConnectionError(f"broker refused the connection (reason {rest[1]})")
        acks = asyncio.create_task(self._read_acks(reader))
        try:
            self.counters.first_sent_us = time.time_ns() // 1000
            await self._send(writer, messages, rate)
            self._finished = True
            self._check_done()
            await self.done.wait()
            self.counters.last_ack_us = time.time_ns() // 1000
            if acks.done() and self.counters.acked + self.counters.errors < self.counters.sent:
                raise ConnectionError("the broker closed the connection before acknowledging")
        finally:
            acks.cancel()
            writer.close()

    async def _send(
        self,
        writer: asyncio.StreamWriter,
        messages: Iterator[tuple[str, str, str, float]],
        rate: float,
    ) -> None:
        c = self.counters
        seq = itertools.count()
        pids = itertools.cycle(range(1, 65536))
        started = time.monotonic()
        for kind, site, dev, _ in messages:
            if rate > 0:
                ahead = c.sent / rate - (time.monotonic() - started)
                if ahead > 0.002:
                    await asyncio.sleep(ahead)
            await self.window.acquire()
            n = next(seq)
            channel, body, retain = payload(kind, dev, time.time(), n)
            topic = f"{TOPIC_ROOT}/{site}/{dev}/{channel}".encode()
            writer.write(mc.publish(topic, next(pids), body, retain=retain))
            c.sent += 1
            c.by_kind[kind] = c.by_kind.get(kind, 0) + 1
            if n % 64 == 0:
                await writer.drain()
        await writer.drain()

    async def _read_acks(self, reader: asyncio.StreamReader) -> None:
        buf = b""
        while True:
            chunk = await reader.read(65536)
            if not chunk:
                self.done.set()
                return
            buf += chunk
            i = 0
            while len(buf) - i >= 2:
                length = buf[i + 1]  # PUBACKs are short: one length byte
                if len(buf) - i < 2 + length:
                    break
                if buf[i] == 0x40:
                    ok = length < 3 or buf[i + 4] < 0x80
                    self.counters.acked += ok
                    self.counters.errors += not ok
                    self.window.release()
                i += 2 + length
            buf = buf[i:]
            self._check_done()

    def _check_done(self) -> None:
        c = self.counters
        if self._finished and c.acked + c.errors >= c.sent:
            self.done.set()


def schedule(
    devices: list[tuple[str, str]], mix: Mix, total: int
) -> Iterator[tuple[str, str, str, float]]:
    """``total`` messages round-robin over the devices, kinds cycling through ``mix``."""
    kinds = itertools.cycle(mix.kinds())
    fleet = itertools.cycle(devices)
    for _ in range(total):
        site, dev = next(fleet)
        yield next(kinds), site, dev, 0.0
