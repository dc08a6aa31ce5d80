"""The ingest's own binary COPY encoder, against psycopg's dumpers as an independent reference,
and against PostgreSQL itself (a round trip through the staging tables)."""

from __future__ import annotations

import asyncio
import struct
from datetime import UTC, datetime

import psycopg
import pytest
from hypothesis import given
from hypothesis import strategies as st
from psycopg import postgres
from psycopg.adapt import Transformer
from psycopg.pq import Format
from psycopg.rows import dict_row

from ingest import copy_binary
from ingest.decode import AccWindowRow, EventRow, TelemetryRow
from ingest.writer import STAGING

T = 1_795_000_000.0
float4s = st.floats(-1000, 1000, allow_nan=False, width=32)
times = st.floats(946_684_800.0, 4_102_444_800.0, allow_nan=False)  # 2000 .. 2100


def reference(values: list[object], type_names: list[str]) -> list[bytes]:
    tx = Transformer()
    oids = [
        postgres.types[n[:-2]].array_oid if n.endswith("[]") else postgres.types[n].oid
        for n in type_names
    ]
    tx.set_dumper_types(oids, Format.BINARY)
    dumped = tx.dump_sequence(values, [Format.BINARY] * len(values))
    return [bytes(d) if d is not None else b"" for d in dumped]


@given(st.lists(float4s, min_size=1, max_size=300))
def test_float4_arrays_match_psycopg(values: list[float]) -> None:
    (ref,) = reference([values], ["float4[]"])
    assert copy_binary.float4_array(values) == struct.pack("!i", len(ref)) + ref


@given(times)
def test_times_match_psycopg_to_the_microsecond(t: float) -> None:
    (ref,) = reference([datetime.fromtimestamp(t, UTC)], ["timestamptz"])
    # psycopg dumps the datetime (already rounded to µs by fromtimestamp): allow that rounding
    assert abs(copy_binary.micros(t) - struct.unpack("!q", ref)[0]) <= 1


def test_rows_round_trip_through_postgresql(database_url: str) -> None:
    tel = [TelemetryRow(T, 1, "hr", 61.5), TelemetryRow(T + 0.000001, 2, "spo2", -0.0)]
    ev = [
        EventRow(T, 1, "door", None, None, "open"),
        EventRow(T + 1, 1, "fall", True, 0.85, None),
        EventRow(T + 2, 3, "note", None, None, "护理 ✓"),
        EventRow(T + 3, 3, "motion", False, None, None),
    ]
    win = [
        AccWindowRow(T, 7, (0.0,), (0.5,), (-0.25,), (9.75,)),
        AccWindowRow(T + 1, 7, (0.0, 0.02, 0.04), (1.0, 2.0, 3.0), (0.0,) * 3, (-9.5,) * 3),
    ]

    async def go() -> tuple[list[dict[str, object]], ...]:
        async with await psycopg.AsyncConnection.connect(database_url, row_factory=dict_row) as c:
            await c.execute(STAGING)
            out = []
            for table, data in (
                ("s_tel", copy_binary.telemetry(tel)),
                ("s_ev", copy_binary.events(ev)),
                ("s_win", copy_binary.windows(win)),
            ):
                async with c.cursor() as cur:
                    async with cur.copy(f"COPY {table} FROM STDIN (FORMAT BINARY)") as cp:
                        await cp.write(data)
                    await cur.execute(f"SELECT * FROM {table} ORDER BY t")
                    out.append(await cur.fetchall())
            return tuple(out)

    got_tel, got_ev, got_win = asyncio.run(go())
    assert [(r["t"].timestamp(), r["k"], r["m"], r["v"]) for r in got_tel] == [
        (T, 1, "hr", 61.5),
        (pytest.approx(T + 0.000001, abs=1e-7), 2, "spo2", -0.0),
    ]
    assert [(r["t"].timestamp(), r["k"], r["n"], r["b"], r["v"], r["s"]) for r in got_ev] == [
        (T + i, *rest) for i, (_t, *rest) in enumerate(ev)
    ]
    assert [(r["t"].timestamp(), r["k"], r["o"], r["x"], r["y"], r["z"]) for r in got_win] == [
        (w.time, w.device_key, list(w.t_offset), list(w.acc_x), list(w.acc_y), list(w.acc_z))
        for w in win
    ]
