"""The ingest consumer's MQTT 5 codec: packets built by hand from the spec, and paho's own
encoder as an independent reference, parsed back under any split of the byte stream."""

from __future__ import annotations

import contextlib
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from devices import mqtt_codec as mc


def publish_bytes(
    topic: str, payload: bytes, *, qos: int, mid: int = 0, props: bytes = b"", dup: bool = False
) -> bytes:
    t = topic.encode()
    body = struct.pack("!H", len(t)) + t
    if qos:
        body += struct.pack("!H", mid)
    body += mc.varint(len(props)) + props + payload
    return bytes([0x30 | qos << 1 | (0x08 if dup else 0)]) + mc.varint(len(body)) + body


topics = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00+#"),
    min_size=1,
    max_size=60,
)
publishes = st.builds(
    lambda t, p, q, m, d: (t, p, q, m if q else 0, d),
    topics,
    st.binary(max_size=3000),
    st.sampled_from([0, 1]),
    st.integers(1, 65535),
    st.booleans(),
)


@given(st.lists(publishes, min_size=1, max_size=20), st.lists(st.integers(1, 500), max_size=30))
def test_any_split_of_the_stream_gives_the_same_publishes(
    sent: list[tuple[str, bytes, int, int, bool]], cuts: list[int]
) -> None:
    stream = b"".join(publish_bytes(t, p, qos=q, mid=m, dup=d) for t, p, q, m, d in sent)
    parser = mc.Parser()
    got: list[mc.Packet] = []
    pos = 0
    for c in cuts:
        got += parser.feed(stream[pos : pos + c])
        pos += c
    got += parser.feed(stream[pos:])
    assert got == [mc.Publish(t, p, q, m, d, False) for t, p, q, m, d in sent]


def test_properties_are_skipped_and_the_payload_kept() -> None:
    props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    props.MessageExpiryInterval = 60
    props.UserProperty = [("k", "v" * 300)]  # long enough for a two-byte property length
    raw = props.pack()  # type: ignore[no-untyped-call]  # with its length prefix
    t = b"a/b"
    body = struct.pack("!H", len(t)) + t + struct.pack("!H", 7) + raw + b'{"x":1}'
    packed = b"\x32" + mc.varint(len(body)) + body
    assert mc.Parser().feed(packed) == [mc.Publish("a/b", b'{"x":1}', 1, 7, False, False)]


def test_connect_matches_the_spec_layout() -> None:
    pkt = mc.connect(
        client_id="w1",
        username="ingest",
        password="pw",
        keepalive_s=30,
        clean_start=False,
        session_expiry_s=3600,
        receive_maximum=5000,
        maximum_packet=1 << 21,
    )
    assert pkt[0] == 0x10
    body = pkt[1 + len(mc.varint(len(pkt) - 2)) :]
    assert body[:7] == b"\x00\x04MQTT\x05"
    assert body[7] == 0xC0  # username + password, no clean start
    assert body[8:10] == b"\x00\x1e"
    props = b"\x11" + (3600).to_bytes(4, "big") + b"\x21" + (5000).to_bytes(2, "big")
    props += b"\x27" + (1 << 21).to_bytes(4, "big")
    assert body[10] == len(props)
    assert body[11 : 11 + len(props)] == props
    assert body[11 + len(props) :] == b"\x00\x02w1\x00\x06ingest\x00\x02pw"


def test_subscribe_and_pubacks() -> None:
    sub = mc.subscribe(1, ["$share/g/x/+"])
    assert sub == b"\x82" + bytes([2 + 1 + 2 + 12 + 1]) + b"\x00\x01\x00\x00\x0c$share/g/x/+\x01"
    assert mc.pubacks([1, 258]) == b"\x40\x02\x00\x01\x40\x02\x01\x02"


def test_control_packets() -> None:
    packets = mc.Parser().feed(
        b"\x20\x03\x01\x00\x00" + b"\x90\x04\x00\x01\x00\x01\xd0\x00\xe0\x01\x8e"
    )
    assert packets == [
        mc.ConnAck(True, 0),
        mc.SubAck(1, (1,)),
        mc.Control(mc.PINGRESP),
        mc.Control(mc.DISCONNECT, 0x8E),
    ]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x30\xff\xff\xff\xff\x01", "longer than four bytes"),
        (b"\x36\x03\x00\x01a", "QoS 3"),
        (b"\x32\x03\x00\x01a", "packet id"),
        (b"\x30\x03\x00\x00\x00", "topic alias"),
        (b"\x50\x02\x00\x01", "unexpected packet type 5"),
    ],
)
def test_bad_packets_are_refused_with_a_reason(data: bytes, message: str) -> None:
    with pytest.raises(mc.ProtocolError, match=message):
        mc.Parser().feed(data)


def test_a_packet_over_the_limit_is_refused_before_it_is_buffered() -> None:
    with pytest.raises(mc.ProtocolError, match="over the limit"):
        mc.Parser(max_packet=100).feed(b"\x30" + mc.varint(101))


@given(st.integers(0, mc.MAX_REMAINING))
def test_varint_roundtrip(n: int) -> None:
    encoded = mc.varint(n)
    assert 1 <= len(encoded) <= 4
    pkt = b"\xd0" + encoded  # a PINGRESP claiming that length
    parser = mc.Parser()
    if n == 0:
        assert parser.feed(pkt) == [mc.Control(mc.PINGRESP)]
    else:
        assert parser.feed(pkt) == []  # waits for the body


@given(st.binary(max_size=200))
def test_garbage_never_escapes_as_another_exception(data: bytes) -> None:
    with contextlib.suppress(mc.ProtocolError):
        mc.Parser().feed(data)


@given(topics, st.binary(max_size=2000), st.integers(1, 65535), st.booleans())
def test_publish_encoder_parses_back(topic: str, payload: bytes, mid: int, retain: bool) -> None:
    packet = mc.publish(topic.encode(), mid, payload, retain=retain)
    assert mc.Parser().feed(packet) == [mc.Publish(topic, payload, 1, mid, False, retain)]
