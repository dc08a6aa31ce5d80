"""The few MQTT 5 packets a fast consumer or publisher needs, by hand. Pure: no I/O.

Why not a library on this path: a general client (paho, aiomqtt) spends tens of microseconds
of Python per received message (callbacks, property objects, message objects), which caps one
consumer well below what the broker can deliver (../shared/measurements.md: paho ~12k, a
minimal parser ~33k QoS-1 messages/s on the same machine). A consumer only ever receives
PUBLISH and sends PUBACK, so the protocol surface is small: CONNECT/CONNACK, SUBSCRIBE/SUBACK,
PUBLISH (QoS 0/1) in, PUBACK out, PINGREQ/PINGRESP and DISCONNECT, and UNSUBSCRIBE/UNSUBACK
(to drop a filter an older version left in a persistent session). Everything else is refused.
The load publisher (simulators.load) frames its PUBLISH packets here for the same reason. The
device simulators and the backend's own publishers keep using paho/aiomqtt.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

CONNECT, CONNACK, PUBLISH, PUBACK = 1, 2, 3, 4
SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK = 8, 9, 10, 11
PINGREQ, PINGRESP, DISCONNECT = 12, 13, 14

PINGREQ_BYTES = b"\xc0\x00"
DISCONNECT_BYTES = b"\xe0\x00"  # normal disconnection, no properties
_PUBACK = struct.Struct("!BBH")
_U16 = struct.Struct("!H")
_U32 = struct.Struct("!I")
MAX_REMAINING = 268_435_455  # the largest length four varint bytes can carry


class ProtocolError(ValueError):
    """The broker sent something this consumer cannot accept; the connection is dropped."""


@dataclass(frozen=True, slots=True)
class Publish:
    topic: str
    payload: bytes
    qos: int
    packet_id: int  # 0 for QoS 0
    dup: bool
    retain: bool


@dataclass(frozen=True, slots=True)
class ConnAck:
    session_present: bool
    reason: int


@dataclass(frozen=True, slots=True)
class SubAck:
    packet_id: int
    reasons: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Control:
    """PINGRESP, UNSUBACK, or DISCONNECT from the broker (reason 0 when it sent none)."""

    kind: int
    reason: int = 0


Packet = Publish | ConnAck | SubAck | Control


def varint(n: int) -> bytes:
    if not 0 <= n <= MAX_REMAINING:
        raise ValueError(f"{n} does not fit an MQTT variable byte integer")
    out = bytearray()
    while True:
        n, digit = divmod(n, 128)
        out.append(digit | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _string(s: str) -> bytes:
    raw = s.encode()
    return _U16.pack(len(raw)) + raw


def _packet(first: int, body: bytes) -> bytes:
    return bytes([first]) + varint(len(body)) + body


def connect(
    *,
    client_id: str,
    username: str | None,
    password: str | None,
    keepalive_s: int,
    clean_start: bool,
    session_expiry_s: int,
    receive_maximum: int,
    maximum_packet: int = MAX_REMAINING,
) -> bytes:
    flags = (0x80 if username is not None else 0) | (0x40 if password is not None else 0)
    flags |= 0x02 if clean_start else 0
    props = b"\x11" + _U32.pack(session_expiry_s) + b"\x21" + _U16.pack(receive_maximum)
    props += b"\x27" + _U32.pack(maximum_packet)  # the broker sends nothing larger
    body = _string("MQTT") + bytes([5, flags]) + _U16.pack(keepalive_s) + varint(len(props))
    body += props + _string(client_id)
    if username is not None:
        body += _string(username)
    if password is not None:
        body += _string(password)
    return _packet(CONNECT << 4, body)


def subscribe(packet_id: int, filters: Sequence[str], qos: int = 1) -> bytes:
    body = _U16.pack(packet_id) + b"\x00"  # no properties
    for f in filters:
        body += _string(f) + bytes([qos])
    return _packet(SUBSCRIBE << 4 | 0x02, body)


def unsubscribe(packet_id: int, filters: Sequence[str]) -> bytes:
    body = _U16.pack(packet_id) + b"\x00"  # no properties
    for f in filters:
        body += _string(f)
    return _packet(UNSUBSCRIBE << 4 | 0x02, body)


def publish(
    topic: bytes, packet_id: int, payload: bytes, *, qos: int = 1, retain: bool = False
) -> bytes:
    """PUBLISH at QoS 1 (or 0: no packet id), no properties."""
    head = _U16.pack(len(topic)) + topic + (_U16.pack(packet_id) if qos else b"") + b"\x00"
    first = PUBLISH << 4 | qos << 1 | int(retain)
    return bytes([first]) + varint(len(head) + len(payload)) + head + payload


def pubacks(packet_ids: Sequence[int]) -> bytes:
    """Several PUBACKs (success, no properties) as one write."""
    return b"".join(_PUBACK.pack(PUBACK << 4, 2, mid) for mid in packet_ids)


class Parser:
    """Incremental: feed bytes as they arrive, get whole packets back."""

    def __init__(self, max_packet: int = MAX_REMAINING) -> None:
        self._buf = bytearray()
        self._max = max_packet

    def feed(self, data: bytes) -> list[Packet]:
        buf = self._buf
        buf += data
        out: list[Packet] = []
        pos, end = 0, len(buf)
        while end - pos >= 2:
            first = buf[pos]
            length = shift = 0
            i = pos + 1
            complete = False
            while i < end:
                byte = buf[i]
                i += 1
                length |= (byte & 0x7F) << shift
                if not byte & 0x80:
                    complete = True
                    break
                shift += 7
                if shift > 21:
                    raise ProtocolError("remaining length longer than four bytes")
            if not complete:
                break  # the length itself has not fully arrived
            if length > self._max:
                raise ProtocolError(f"packet of {length} bytes is over the limit {self._max}")
            if end - i < length:
                break
            out.append(_parse(first, bytes(buf[i : i + length])))
            pos = i + length
        del buf[:pos]
        return out


def _parse(first: int, body: bytes) -> Packet:
    kind = first >> 4
    if kind == PUBLISH:
        return _publish(first, body)
    if kind == CONNACK:
        if len(body) < 2:
            raise ProtocolError("CONNACK too short")
        return ConnAck(bool(body[0] & 1), body[1])
    if kind == SUBACK:
        if len(body) < 3:
            raise ProtocolError("SUBACK too short")
        start, plen = _read_varint(body, 2)
        return SubAck(_U16.unpack_from(body)[0], tuple(body[start + plen :]))
    if kind == PINGRESP:
        return Control(PINGRESP)
    if kind == UNSUBACK:
        return Control(UNSUBACK)  # "no subscription existed" is as good as "removed"
    if kind == DISCONNECT:
        return Control(DISCONNECT, body[0] if body else 0)
    raise ProtocolError(f"unexpected packet type {kind} from the broker")


def _publish(first: int, body: bytes) -> Publish:
    qos = (first >> 1) & 3
    if qos == 3:
        raise ProtocolError("PUBLISH with QoS 3")
    if len(body) < 2:
        raise ProtocolError("PUBLISH too short")
    tlen = _U16.unpack_from(body)[0]
    pos = 2 + tlen
    packet_id = 0
    if qos:
        if len(body) < pos + 2:
            raise ProtocolError("PUBLISH without its packet id")
        packet_id = _U16.unpack_from(body, pos)[0]
        pos += 2
    pos, plen = _read_varint(body, pos)
    pos += plen
    if pos > len(body) or tlen == 0:
        raise ProtocolError("PUBLISH truncated, or with a topic alias this client never allowed")
    topic = body[2 : 2 + tlen].decode("utf-8", "replace")
    return Publish(topic, body[pos:], qos, packet_id, bool(first & 0x08), bool(first & 0x01))


def _read_varint(body: bytes, pos: int) -> tuple[int, int]:
    """Returns (position after the integer, its value)."""
    value = shift = 0
    while True:
        if pos >= len(body) or shift > 21:
            raise ProtocolError("bad variable byte integer")
        byte = body[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return pos, value
        shift += 7
