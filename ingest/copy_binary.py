"""Rows to PostgreSQL's binary COPY format, a whole batch at a time. Pure: no I/O.

psycopg's ``write_row`` costs a few microseconds of Python per row and its list dumper much
more per array; on the ingest hot path that was a third of the worker's main thread. Here one
precompiled ``struct`` call builds most of a row, and the batch goes to ``copy.write`` as one
buffer. Format: https://www.postgresql.org/docs/current/sql-copy.html (binary format).

Times are floats of seconds since the Unix epoch, written as ``timestamptz`` (microseconds
since 2000-01-01). Values were validated by the decoder (finite, in range, UTF-8 text).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from functools import lru_cache

from ingest.decode import AccWindowRow, EventRow, TelemetryRow

SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
TRAILER = b"\xff\xff"
PG_EPOCH = 946_684_800.0  # 2000-01-01 in Unix seconds
FLOAT4_OID = 700
_NULL = struct.pack("!i", -1)
_TIME_KEY = struct.Struct("!hiqii")  # field count, then timestamptz and int4 with lengths
_BOOL = {True: struct.pack("!ib", 1, 1), False: struct.pack("!ib", 1, 0)}
_F8 = struct.Struct("!id")
_LEN = struct.Struct("!i")


def micros(t: float) -> int:
    return round((t - PG_EPOCH) * 1_000_000)


@lru_cache(maxsize=4096)
def _text(s: str) -> bytes:
    raw = s.encode()
    return _LEN.pack(len(raw)) + raw


def telemetry(rows: Sequence[TelemetryRow]) -> bytes:
    """(time timestamptz, device_key int4, metric text, value float8) rows."""
    head, f8, text = _TIME_KEY.pack, _F8.pack, _text
    parts = [SIGNATURE]
    for t, key, metric, value in rows:
        parts += (head(4, 8, micros(t), 4, key), text(metric), f8(8, value))
    parts.append(TRAILER)
    return b"".join(parts)


def events(rows: Sequence[EventRow]) -> bytes:
    """(time timestamptz, device_key int4, name text, value_bool bool, value_num float8,
    value_text text) rows; None is NULL."""
    head, f8 = _TIME_KEY.pack, _F8.pack
    parts = [SIGNATURE]
    for t, key, name, b, num, s in rows:
        parts += (
            head(6, 8, micros(t), 4, key),
            _text(name),
            _NULL if b is None else _BOOL[b],
            _NULL if num is None else f8(8, num),
            _NULL if s is None else _encoded(s),
        )
    parts.append(TRAILER)
    return b"".join(parts)


def _encoded(s: str) -> bytes:
    raw = s.encode()
    return _LEN.pack(len(raw)) + raw


def windows(rows: Sequence[AccWindowRow]) -> bytes:
    """(time timestamptz, device_key int4, t_offset/acc_x/acc_y/acc_z float4[]) rows."""
    head = _TIME_KEY.pack
    parts = [SIGNATURE]
    for t, key, offsets, x, y, z in rows:
        parts += (head(6, 8, micros(t), 4, key), *map(float4_array, (offsets, x, y, z)))
    parts.append(TRAILER)
    return b"".join(parts)


@lru_cache(maxsize=64)
def _array_struct(n: int) -> struct.Struct:
    # field length, ndim, has-nulls, element type, dimension size, lower bound, then
    # (length 4, value) per element
    return struct.Struct("!iiiIii" + "if" * n)


def float4_array(values: Sequence[float]) -> bytes:
    """A one-dimensional float4[] field, with its length prefix."""
    n = len(values)
    shape = _array_struct(n)
    args: list[float] = [4] * (2 * n)  # ints for the element lengths
    args[1::2] = values
    return shape.pack(shape.size - 4, 1, 0, FLOAT4_OID, n, 1, *args)
