"""The hot path's MQTT side: one asyncio connection, manual acknowledgement after commit.

Messages are acknowledged only after the batch holding them is committed. The session is
persistent (MQTT v5, ``clean_start=False``), so what arrives while the worker is away waits
in the broker, and whatever was delivered but not acknowledged is delivered again. The v5
``Receive Maximum`` bounds how many unacknowledged messages the broker sends us: when the
database is slow, acknowledgements stop and so does the flow (backpressure without loss).
The packets themselves are in :mod:`ingest.mqtt_codec` (why not a client library: there).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from devices import mqtt_codec as mc
from devices.backoff import Backoff
from ingest.decode import RawMessage

log = logging.getLogger(__name__)

CHANNELS = ("telemetry", "event", "status")
# The worker's two paths: life-safety events (sos, fall, smoke) travel on the event topic with
# the name inside the payload, so the life-safety lane takes every event (its own connection,
# its own client id) and the telemetry path everything else.
LANE_CHANNELS = ("event",)
TELEMETRY_CHANNELS = ("telemetry", "status")
READ_CHUNK = 256 * 1024


class BrokerRefused(ConnectionError):
    """CONNACK or SUBACK with a failure reason code (bad credentials, ACL, ...)."""


@dataclass(frozen=True, slots=True)
class SourceConfig:
    host: str
    port: int
    username: str
    password: str
    client_id: str
    topic_root: str = "eldercare/v1"
    tls_ca_file: str | None = None  # TLS to the broker, verified against this CA
    share_group: str | None = "ingest"
    session_expiry_s: int = 7 * 24 * 3600
    receive_maximum: int = 5000
    keepalive_s: int = 30
    queue_max: int = 20000  # messages held in memory before the socket is no longer read
    max_packet_bytes: int = 2 * 1024 * 1024
    channels: tuple[str, ...] = CHANNELS
    # Channels to unsubscribe from on connect: a persistent session made by a version that
    # took every channel on one connection would otherwise keep sending them here.
    drop_channels: tuple[str, ...] = ()

    def filters(self, channels: tuple[str, ...] | None = None) -> list[str]:
        plain = [
            f"{self.topic_root}/+/+/{c}" for c in (self.channels if channels is None else channels)
        ]
        if not self.share_group:
            return plain
        return [f"$share/{self.share_group}/{f}" for f in plain]


class MqttSource:
    def __init__(self, cfg: SourceConfig) -> None:
        self.cfg = cfg
        self._messages: deque[RawMessage] = deque()
        self._arrived = asyncio.Event()
        self._enough = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()
        self._want = 1
        self._generation = 0
        self._writer: asyncio.StreamWriter | None = None
        self._last_write = 0.0
        self.connected = asyncio.Event()

    # connection --------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        """Stay connected until ``stop``: reconnect with jittered backoff after any loss."""
        backoff = Backoff(initial_s=0.5, maximum_s=15.0)
        while not stop.is_set():
            try:
                await self._session(stop, backoff)
            except (OSError, EOFError, TimeoutError, mc.ProtocolError) as exc:
                log.warning("broker connection lost: %s", exc or type(exc).__name__)
            finally:
                self.connected.clear()
                self._close()
            if stop.is_set():
                return
            try:
                await asyncio.wait_for(stop.wait(), timeout=backoff.next_delay())
            except TimeoutError:
                continue

    async def _session(self, stop: asyncio.Event, backoff: Backoff) -> None:
        cfg = self.cfg
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(
                cfg.host,
                cfg.port,
                ssl=ssl.create_default_context(cafile=cfg.tls_ca_file) if cfg.tls_ca_file else None,
            ),
            timeout=10,
        )
        self._writer = writer
        self._send(
            mc.connect(
                client_id=cfg.client_id,
                username=cfg.username,
                password=cfg.password,
                keepalive_s=cfg.keepalive_s,
                clean_start=False,
                session_expiry_s=cfg.session_expiry_s,
                receive_maximum=cfg.receive_maximum,
                maximum_packet=cfg.max_packet_bytes,
            )
        )
        parser = mc.Parser(cfg.max_packet_bytes)
        ack = await self._connack(reader, parser)
        if cfg.drop_channels:
            self._send(mc.unsubscribe(2, cfg.filters(cfg.drop_channels)))
        self._send(mc.subscribe(1, cfg.filters()))
        log.info("connected to broker (session present: %s)", ack.session_present)
        backoff.reset()
        self.connected.set()
        await self._read_loop(reader, parser, stop)
        if stop.is_set():
            self._send(mc.DISCONNECT_BYTES)
            await writer.drain()

    async def _connack(self, reader: asyncio.StreamReader, parser: mc.Parser) -> mc.ConnAck:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            data = await asyncio.wait_for(reader.read(READ_CHUNK), timeout=10)
            if not data:
                raise EOFError("broker closed the connection before CONNACK")
            packets = parser.feed(data)
            if packets:
                first = packets[0]
                if not isinstance(first, mc.ConnAck):
                    raise mc.ProtocolError(f"expected CONNACK, got {first!r}")
                if first.reason >= 0x80:
                    raise BrokerRefused(f"connection refused: reason 0x{first.reason:02x}")
                self._generation += 1  # before anything this connection delivers
                self._handle(packets[1:], time.time())
                return first
        raise TimeoutError("no CONNACK within 10 s")

    async def _read_loop(
        self, reader: asyncio.StreamReader, parser: mc.Parser, stop: asyncio.Event
    ) -> None:
        keepalive = self.cfg.keepalive_s
        last_read = time.monotonic()
        while not stop.is_set():
            if not self._room.is_set():  # far behind: stop reading, the broker holds the rest
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._room.wait(), timeout=1.0)
                last_read = time.monotonic()  # not reading: silence says nothing of the broker
            else:
                try:
                    data = await asyncio.wait_for(reader.read(READ_CHUNK), timeout=1.0)
                except TimeoutError:
                    data = None
                if data == b"":
                    raise EOFError("broker closed the connection")
                if data:
                    last_read = time.monotonic()
                    self._handle(parser.feed(data), time.time())
            now = time.monotonic()
            if now - self._last_write >= keepalive / 2:
                self._send(mc.PINGREQ_BYTES)
            if now - last_read > keepalive * 1.5:
                raise TimeoutError(f"nothing from the broker for {now - last_read:.0f} s")

    def _handle(self, packets: list[mc.Packet], received_at: float) -> None:
        gen = self._generation
        queued = self._messages
        for p in packets:
            if isinstance(p, mc.Publish):
                queued.append(RawMessage(p.topic, p.payload, received_at, p.packet_id, p.qos, gen))
            elif isinstance(p, mc.SubAck):
                if any(r >= 0x80 for r in p.reasons):
                    raise BrokerRefused(f"subscription refused: {[hex(r) for r in p.reasons]}")
            elif isinstance(p, mc.Control) and p.kind == mc.DISCONNECT:
                raise EOFError(f"broker disconnected us: reason 0x{p.reason:02x}")
        if queued:
            self._arrived.set()
            if len(queued) >= self._want:
                self._enough.set()
            if len(queued) >= self.cfg.queue_max:
                self._room.clear()

    def _send(self, data: bytes) -> None:
        if self._writer is not None:
            self._writer.write(data)
            self._last_write = time.monotonic()

    def _close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    # used by the worker ------------------------------------------------------------------
    async def take_batch(
        self, max_n: int, wait_s: float, idle_timeout_s: float
    ) -> list[RawMessage]:
        """Wait up to ``idle_timeout_s`` for a first message, then up to ``wait_s`` more for
        the batch to fill."""
        queued = self._messages
        if not queued:
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), timeout=idle_timeout_s)
            except TimeoutError:
                return []
        if len(queued) < max_n and wait_s > 0:
            self._want = max_n
            self._enough.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._enough.wait(), timeout=wait_s)
        out = [queued.popleft() for _ in range(min(max_n, len(queued)))]
        if len(queued) < self.cfg.queue_max:
            self._room.set()
        return out

    def ack(self, messages: Sequence[RawMessage]) -> int:
        """Acknowledge committed messages, in arrival order; messages delivered on an earlier
        connection are skipped (the broker redelivers them, and the database drops the copy)."""
        gen = self._generation
        mids = [m.mid for m in messages if m.qos == 1 and m.generation == gen]
        if not mids or not self.connected.is_set():
            return 0
        self._send(mc.pubacks(mids))
        return len(mids)

    def backlog(self) -> int:
        return len(self._messages)
