"""devices.logs: one JSON object a line, ids as fields of their own (issue 16 item 6)."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from devices.logs import JsonFormatter


def _line(msg: str, *args: object, **extra: object) -> dict[str, object]:
    record = logging.getLogger("t").makeRecord(
        "t", logging.WARNING, "f.py", 1, msg, args, None, extra=extra
    )
    return json.loads(JsonFormatter().format(record))


def test_extra_fields_are_keys_of_their_own() -> None:
    doc = _line(
        "order %s: step skipped (%s)", 17, "boom", order_id=17, at=datetime(2026, 12, 3, tzinfo=UTC)
    )
    assert doc["msg"] == "order 17: step skipped (boom)"
    assert doc["order_id"] == 17
    assert doc["at"] == "2026-12-03 00:00:00+00:00"  # not JSON by itself: as text
    assert doc["level"] == "warning"
    assert doc["logger"] == "t"
    assert "args" not in doc
    assert "exc" not in doc


@given(st.dictionaries(st.from_regex(r"[a-z]{3,12}_id", fullmatch=True), st.integers() | st.text()))
def test_any_id_field_survives_the_round_trip(fields: dict[str, object]) -> None:
    doc = _line("x", **fields)
    for key, value in fields.items():
        assert doc[key] == value
