"""The alert wall's folding and order (issue 14 item 3), without a database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from dashboard_api.wall import fold

NOW = datetime(2026, 12, 3, 6, 0, tzinfo=UTC)


def _row(
    order_id: int,
    *,
    state: str,
    colour: str,
    kind: str,
    resident: int | None,
    opened_min_ago: float,
    count: int = 1,
) -> dict[str, Any]:
    opened = NOW - timedelta(minutes=opened_min_ago)
    deadline = opened + timedelta(seconds=60 if colour == "red" else 300)
    return {
        "order_id": order_id,
        "state": state,
        "colour": colour,
        "kind": kind,
        "resident_id": resident,
        "site_id": "home-17",
        "opened_at": opened,
        "accept_deadline": deadline,
        "occurred_at": opened,
        "alert_count": count,
        "details": {},
    }


def test_repeated_presses_are_one_card_with_a_count_and_the_oldest_deadline() -> None:
    rows = [
        _row(1, state="offered", colour="red", kind="sos", resident=7, opened_min_ago=15, count=3),
        _row(2, state="queued", colour="red", kind="sos", resident=7, opened_min_ago=8),
        _row(3, state="queued", colour="red", kind="sos", resident=7, opened_min_ago=0.5),
    ]
    [card] = fold(rows, now=NOW)
    assert card["order_ids"] == [1, 2, 3]
    assert card["count"] == 5
    assert card["opened_at"] == NOW - timedelta(minutes=15)
    assert card["overdue"] is True


def test_unhandled_red_first_then_oldest_first() -> None:
    rows = [
        _row(1, state="queued", colour="yellow", kind="inactivity", resident=1, opened_min_ago=60),
        _row(2, state="accepted", colour="red", kind="fall", resident=2, opened_min_ago=50),
        _row(3, state="queued", colour="red", kind="sos", resident=3, opened_min_ago=20),
        _row(4, state="offered", colour="red", kind="smoke", resident=None, opened_min_ago=40),
        _row(5, state="resolved", colour="red", kind="sos", resident=5, opened_min_ago=70),
    ]
    assert [c["order_ids"][0] for c in fold(rows, now=NOW)] == [4, 3, 1, 2, 5]


def test_a_fresh_order_is_not_overdue_and_handled_orders_stay_apart() -> None:
    rows = [
        _row(1, state="queued", colour="red", kind="sos", resident=7, opened_min_ago=0.2),
        _row(2, state="resolved", colour="red", kind="sos", resident=7, opened_min_ago=30),
        _row(3, state="resolved", colour="red", kind="sos", resident=7, opened_min_ago=20),
    ]
    cards = fold(rows, now=NOW)
    assert [c["order_ids"] for c in cards] == [[1], [2], [3]]
    assert cards[0]["overdue"] is False
