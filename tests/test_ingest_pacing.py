"""Backlog pacing (issue 18 item 3): a device's backlog after a reconnect is stored paced, a
flood of fresh data is dropped and counted, life-safety always passes. Pure: time is passed in.
"""

from __future__ import annotations

import json

from devices.registry import DeviceRef
from devices.wire import Reason
from ingest.decode import DeadLetter, Decoded, Limits, RawMessage
from ingest.ratelimit import BacklogPacer, TokenBuckets
from ingest.worker import Held, decode_all

NOW = 1_795_000_000.0
REFS = {
    "wb-1": DeviceRef(7, "wb-1", "home-1", "wristband", False),
    "wb-2": DeviceRef(8, "wb-2", "home-1", "wristband", False),
}
LIMITS = Limits(late_after_s=60.0)


def _msg(device: str, at: float, seq: int, name: str = "hr", mid: int = 0) -> RawMessage:
    channel = "event" if name == "sos" else "telemetry"
    value = {"vb": True} if name == "sos" else {"v": 60 + seq % 30}
    body = json.dumps([{"bn": f"{device}:", "bt": at, "n": name, **value}]).encode()
    return RawMessage(f"eldercare/v1/home-1/{device}/{channel}", body, NOW, mid or seq + 1, 1)


def test_the_pacer_passes_the_burst_holds_the_rest_and_releases_it_at_the_rate() -> None:
    pacer: BacklogPacer[int] = BacklogPacer(TokenBuckets(rate=10, burst=5), max_held=100)
    verdicts = [pacer.offer("d", i, NOW) for i in range(30)]
    assert verdicts[:5] == [True] * 5  # the burst
    assert verdicts[5:] == [None] * 25  # held, not dropped
    assert pacer.held == 25
    assert pacer.release(NOW) == []  # no token yet
    assert pacer.release(NOW + 0.5) == [5, 6, 7, 8, 9]  # 10/s, in arrival order
    later = [pacer.release(NOW + 0.5 * k) for k in range(2, 6)]  # every half second
    assert later == [list(range(n, n + 5)) for n in (10, 15, 20, 25)]
    assert pacer.held == 0


def test_a_held_device_keeps_its_order_and_the_others_are_not_held() -> None:
    pacer: BacklogPacer[str] = BacklogPacer(TokenBuckets(rate=1, burst=1), max_held=100)
    assert pacer.offer("d", "a", NOW) is True
    assert pacer.offer("d", "b", NOW) is None
    # a token arrives, but "c" may not overtake the held "b"
    assert pacer.offer("d", "c", NOW + 1) is None
    assert pacer.offer("other", "x", NOW + 1) is True
    assert pacer.release(NOW + 1) == ["b"]
    assert pacer.release(NOW + 2) == ["c"]


def test_the_pacer_is_bounded() -> None:
    pacer: BacklogPacer[int] = BacklogPacer(TokenBuckets(rate=1, burst=1), max_held=3)
    verdicts = [pacer.offer(f"d{i % 2}", i, NOW) for i in range(10)]
    assert verdicts.count(True) == 2  # each device's burst
    assert verdicts.count(None) == 3  # the bound
    assert verdicts.count(False) == 5  # dropped and counted, like a flood
    assert pacer.held == 3


def _split(items: list[Decoded | DeadLetter]) -> tuple[int, int]:
    stored = sum(isinstance(i, Decoded) for i in items)
    dropped = sum(isinstance(i, DeadLetter) and i.reason is Reason.RATE_LIMITED for i in items)
    return stored, dropped


def test_a_fresh_flood_is_dropped_and_a_backlog_is_paced_never_dropped() -> None:
    buckets = TokenBuckets(rate=10, burst=20)
    pacer: BacklogPacer[Held] = BacklogPacer(TokenBuckets(rate=100, burst=25), max_held=1000)
    flood = [_msg("wb-1", NOW - i / 1000, i) for i in range(300)]  # fresh: a second old at most
    backlog = [_msg("wb-2", NOW - 3600 + i, i, mid=1000 + i) for i in range(300)]  # an hour old
    items, acks = decode_all(flood + backlog, REFS, LIMITS, buckets, NOW, pacer)
    stored_flood, dropped = _split(items[:300])
    assert (stored_flood, dropped) == (20, 280)  # the burst; the rest dropped and counted
    assert _split(items[300:]) == (25, 0)  # the backlog's burst; nothing dropped
    assert pacer.held == 275
    # Held messages are neither stored nor acknowledged yet: the broker still holds them.
    assert len(acks) == len(items) == 325
    assert {m.mid for m in acks} >= {m.mid for m in flood}
    released: list[RawMessage] = []
    for step in range(1, 12):  # 100/s, called every 0.25 s: 25 at a time (the burst)
        items, acks = decode_all([], REFS, LIMITS, buckets, NOW + step * 0.25, pacer)
        assert len(items) == len(acks) == 25
        assert all(isinstance(i, Decoded) for i in items)
        released += acks
    assert pacer.held == 0
    assert [m.mid for m in released] == [m.mid for m in backlog[25:]]  # each once, in order


def test_life_safety_passes_a_flood_and_a_full_pacer() -> None:
    buckets = TokenBuckets(rate=1, burst=1)
    pacer: BacklogPacer[Held] = BacklogPacer(TokenBuckets(rate=1, burst=1), max_held=0)
    msgs = [_msg("wb-1", NOW - i, i) for i in range(5)]
    msgs += [_msg("wb-1", NOW - 3600 - i, 10 + i) for i in range(5)]  # an old backlog, no room
    msgs += [_msg("wb-1", NOW, 20, "sos"), _msg("wb-1", NOW - 7200, 21, "sos")]
    items, acks = decode_all(msgs, REFS, LIMITS, buckets, NOW, pacer)
    assert len(acks) == len(msgs)
    assert _split(items[:10]) == (2, 8)  # one fresh and one backlog token, the rest dropped
    assert all(isinstance(i, Decoded) and i.events[0].name == "sos" for i in items[10:])
