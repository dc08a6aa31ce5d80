"""Hostile devices of a chaos run (issue 18), each with its own real credentials.

Two sorts. *Payload* attacks are messages added to the played timeline of a living device
(poison payloads, a flood with the device's own SOS in the middle, implausible values, an SOS
stamped in 2005); what became of them is read afterwards from ingest's metrics and the API.
*Connection* attacks open their own MQTT connections from devices that are not played
(subscribing to ingest's shared subscription and to every topic, taking another client's id,
leaving a large backlog on the broker) and record what the broker answered.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from devices.wire import Channel
from simulators import devices as packs
from simulators.chaos_plan import AttackWhat
from simulators.fleet import DeviceCreds
from simulators.session import Broker
from simulators.timeline import Msg

REFUSED: Final = "refused"
DEAD_LETTER: Final = "recorded as dead letter"
ACCEPTED: Final = "accepted!"
SHARE_TOPIC: Final = "$share/ingest/eldercare/v1/+/+/event"
ALL_TOPIC: Final = "eldercare/v1/#"
YEAR_2005: Final = 1104537600.0  # 2005-01-01 00:00 UTC
HOLD_S: Final = 6.0  # how long a hostile subscriber listens


@dataclass(slots=True)
class Outcome:
    attack: AttackWhat
    at: float  # wall clock the attack started
    verdict: str = "not observed"
    detail: str = ""
    harmful: bool = False
    facts: dict[str, object] = field(default_factory=dict)  # raw observations, for the judge


# ---- payload attacks: messages in the played timeline ---------------------------------------


def poison_payloads(device_id: str, at: float) -> list[bytes]:
    deep = b"[" * 100_000 + b"]" * 100_000  # 200 KB: RecursionError in a recursive decoder
    huge = b'[{"bn":"' + device_id.encode() + b':","n":"note","vs":"' + b"A" * 900_000 + b'"}]'
    head = b'[{"bn":"' + device_id.encode() + b':","bt":' + str(at).encode()
    odd = [
        b"\x00\xff\xfe\x80garbage",
        head + b',"n":"door","vs":"\xc3\x28"}]',  # invalid UTF-8 inside a string
        head + b',"n":"door","vs":"a\\u0000b"}]',  # a NUL character
        b"\xef\xbb\xbf" + head + b',"n":"hr","v":70}]',  # a byte-order mark
        b'{"a":' * 5_000 + b"1" + b"}" * 5_000,  # nested objects
    ]
    return [deep, huge, *odd]


def poison(dev: DeviceCreds, at: float) -> list[Msg]:
    out: list[Msg] = []
    for i, raw in enumerate(poison_payloads(dev.device_id, at)):
        channel = Channel.EVENT if i % 2 else Channel.TELEMETRY  # both lanes
        out.append(Msg(at + 0.05 * i, dev.device_id, channel=channel, raw=raw))
    return out


FLOOD_S: Final = 1.5


def flood(dev: DeviceCreds, at: float, count: int) -> list[Msg]:
    """``count`` telemetry packs in 1.5 s around the device's own SOS (an incident of the
    plan, 1 s in: well past any burst allowance)."""
    step = FLOOD_S / count
    return [
        Msg(
            at + i * step,
            dev.device_id,
            channel=Channel.TELEMETRY,
            pack=packs.make_pack(
                dev.device_id, at + i * step, [{"n": "battery", "u": "%EL", "v": 80.0}]
            ),
        )
        for i in range(count)
    ]


def implausible(dev: DeviceCreds, at: float) -> list[Msg]:
    values: list[packs.Rec] = [
        {"n": "hr", "u": "beat/min", "v": -1e308},
        {"n": "spo2", "u": "%", "v": 1000},
        {"n": "battery", "u": "%EL", "v": 1e308},
    ]
    return [
        Msg(
            at + 0.1 * i,
            dev.device_id,
            channel=Channel.TELEMETRY,
            pack=packs.make_pack(dev.device_id, at + 0.1 * i, [rec]),
        )
        for i, rec in enumerate(values)
    ]


def old_sos(dev: DeviceCreds, at: float) -> list[Msg]:
    pack = packs.make_pack(dev.device_id, YEAR_2005, [{"n": "sos", "vb": True}])
    return [Msg(at, dev.device_id, channel=Channel.EVENT, pack=pack)]


# ---- connection attacks: their own MQTT connections -----------------------------------------


@dataclass(slots=True)
class _Conn:
    client: mqtt.Client
    connack: ReasonCode | None = None
    suback: list[ReasonCode] = field(default_factory=list)
    pubacks: list[ReasonCode] = field(default_factory=list)
    received: int = 0
    disconnected: str | None = None
    connected: threading.Event = field(default_factory=threading.Event)
    subscribed: threading.Event = field(default_factory=threading.Event)


def _connect(
    creds: DeviceCreds,
    broker: Broker,
    *,
    client_id: str | None = None,
    clean: bool = True,
    expiry_s: int = 0,
    timeout: float = 10.0,
) -> _Conn:
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id or creds.device_id,
        protocol=mqtt.MQTTv5,
        reconnect_on_failure=False,
    )
    client.username_pw_set(creds.device_id, creds.password)
    conn = _Conn(client)

    def on_connect(c: mqtt.Client, u: object, flags: object, rc: ReasonCode, p: object) -> None:
        conn.connack = rc
        conn.connected.set()

    def on_subscribe(c: mqtt.Client, u: object, mid: int, rcs: list[ReasonCode], p: object) -> None:
        conn.suback.extend(rcs)
        conn.subscribed.set()

    def on_publish(c: mqtt.Client, u: object, mid: int, rc: ReasonCode, p: object) -> None:
        conn.pubacks.append(rc)

    def on_message(c: mqtt.Client, u: object, m: mqtt.MQTTMessage) -> None:
        conn.received += 1

    def on_disconnect(c: mqtt.Client, u: object, f: object, rc: ReasonCode, p: object) -> None:
        conn.disconnected = str(rc)
        conn.connected.set()
        conn.subscribed.set()

    client.on_connect, client.on_subscribe, client.on_publish = on_connect, on_subscribe, on_publish
    client.on_message, client.on_disconnect = on_message, on_disconnect
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = expiry_s
    try:
        client.connect(broker.host, broker.port, keepalive=30, clean_start=clean, properties=props)
    except OSError as exc:
        conn.disconnected = f"connection failed: {exc}"
        return conn
    client.loop_start()
    conn.connected.wait(timeout)
    return conn


def _accepted(conn: _Conn) -> bool:
    return conn.connack is not None and not conn.connack.is_failure and conn.disconnected is None


def _close(conn: _Conn) -> None:
    if conn.client.is_connected():
        conn.client.disconnect()
    conn.client.loop_stop()


def _codes(rcs: Sequence[ReasonCode]) -> str:
    return ", ".join(f"0x{rc.value:02x} {rc}" for rc in rcs) or "none"


def subscribe(attackers: Sequence[DeviceCreds], broker: Broker, at: float) -> Outcome:
    """Three devices join ingest's shared subscription, a fourth subscribes to every topic;
    they listen for a while (the witness SOS is pressed meanwhile)."""
    out = Outcome(AttackWhat.SUBSCRIBE, at)
    conns: list[tuple[str, list[str], _Conn]] = []
    for i, dev in enumerate(attackers[:4]):
        topics = [ALL_TOPIC] if i == 3 else [SHARE_TOPIC]
        if i == 0 and len(attackers) < 4:
            topics.append(ALL_TOPIC)
        conn = _connect(dev, broker)
        if _accepted(conn):
            for topic in topics:
                conn.subscribed.clear()
                conn.client.subscribe(topic, qos=1)
                conn.subscribed.wait(5.0)
        conns.append((dev.device_id, topics, conn))
    time.sleep(HOLD_S)
    granted = 0
    received = 0
    parts: list[str] = []
    for dev_id, topics, conn in conns:
        ok = [rc for rc in conn.suback if not rc.is_failure]
        granted += len(ok)
        received += conn.received
        parts.append(
            f"{dev_id} {' + '.join(topics)}: SUBACK {_codes(conn.suback)}, {conn.received} received"
        )
        _close(conn)
    out.facts = {"granted": granted, "received": received}
    out.detail = "; ".join(parts)
    out.harmful = granted > 0 or received > 0
    out.verdict = ACCEPTED if out.harmful else REFUSED
    return out


def client_id(
    attacker: DeviceCreds, broker: Broker, at: float, *, victims: Sequence[str]
) -> Outcome:
    """Connect with the attacker's own password under each victim's client id."""
    out = Outcome(AttackWhat.CLIENT_ID, at)
    parts: list[str] = []
    taken: list[str] = []
    for victim in victims:
        conn = _connect(attacker, broker, client_id=victim)
        time.sleep(1.0)  # kicked off again by the victim's reconnect, or held
        code = str(conn.connack) if conn.connack is not None else "no CONNACK"
        if _accepted(conn) or (conn.connack is not None and not conn.connack.is_failure):
            taken.append(victim)
        parts.append(f"as {victim!r}: CONNACK {code}, then {conn.disconnected or 'held'}")
        _close(conn)
    out.facts = {"taken": taken}
    out.detail = "; ".join(parts)
    out.harmful = bool(taken)
    out.verdict = ACCEPTED if taken else REFUSED
    return out


def _rss_kb(pid: int) -> int:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def backlog(
    attacker: DeviceCreds,
    broker: Broker,
    at: float,
    *,
    count: int,
    size: int,
    broker_pid: Callable[[], int],
) -> Outcome:
    """A persistent session subscribed to the device's own topics goes away; a second
    connection of the same account sends ``count`` messages of ``size`` bytes to it."""
    out = Outcome(AttackWhat.BACKLOG, at)
    pid = broker_pid()
    before = _rss_kb(pid)
    own = f"eldercare/v1/{attacker.site_id}/{attacker.device_id}/#"
    sleeper = _connect(attacker, broker, clean=False, expiry_s=3600)
    if _accepted(sleeper):
        sleeper.client.subscribe(own, qos=1)
        sleeper.subscribed.wait(5.0)
    sub = _codes(sleeper.suback)
    _close(sleeper)
    sender = _connect(attacker, broker, client_id=f"{attacker.device_id}-b")
    peak = before
    if _accepted(sender):
        payload = b'"' + b"x" * max(0, size - 2) + b'"'
        topic = attacker.topic(Channel.TELEMETRY)
        for _ in range(count):
            sender.client.publish(topic, payload, qos=1)
        deadline = time.monotonic() + 30
        while len(sender.pubacks) < count and time.monotonic() < deadline:
            if sender.disconnected:
                break
            peak = max(peak, _rss_kb(pid))
            time.sleep(0.1)
    peak = max(peak, _rss_kb(pid))
    failed = [rc for rc in sender.pubacks if rc.is_failure]
    acked = len(sender.pubacks) - len(failed)
    sent_connack = str(sender.connack) if sender.connack is not None else "no CONNACK"
    _close(sender)
    cleaner = _connect(attacker, broker, clean=True)  # drop the persistent session
    _close(cleaner)
    grown_mb = (peak - before) / 1024
    out.facts = {"acked": acked, "failed": len(failed), "grown_mb": grown_mb, "bytes": count * size}
    out.detail = (
        f"persistent session on {own}: SUBACK {sub}; second connection "
        f"{attacker.device_id}-b: CONNACK {sent_connack}, {acked}/{count} x {size // 1024} KB "
        f"acknowledged, {len(failed)} refused ({_codes(failed[:1])}); "
        f"broker RSS {before // 1024} MB -> peak {peak // 1024} MB"
    )
    held = grown_mb * 1024 * 1024 > 0.5 * count * size
    out.harmful = held
    if held:
        out.verdict = ACCEPTED
    elif acked == 0:
        out.verdict = REFUSED
    else:
        out.verdict = "bounded"  # the judge adds what ingest made of what got through
    return out
