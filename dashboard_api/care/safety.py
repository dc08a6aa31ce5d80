"""Safety-round services (机构安全巡检), keyword-only: per-site checklists, rounds recorded
from a phone, findings tracked to closure with an owner and a deadline. Scope: an admin sees
every site; staff and safety officers their own sites."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from psycopg.types.json import Jsonb

from devices.accounts import Principal
from devices.domain import Role
from devices.registry import Conn

FIX_WITHIN = timedelta(days=7)
# how far back a round (or a finding's closure) may be entered: a month's paper rounds
BACKDATE_LIMIT = timedelta(days=35)
FINDING_COLUMNS = (
    "f.finding_id, f.site_id, f.source, f.round_id, d.device_id, f.item_key, f.kind, "
    "f.description, f.params, f.owner, f.deadline, f.opened_at, f.closed_at, f.closure_note"
)


def past_time(
    given: datetime | None, *, now: datetime, not_before: datetime | None = None
) -> datetime:
    """When something was done: ``now`` if not given; else a zoned time, never in the future,
    at most BACKDATE_LIMIT back (and not before ``not_before``). Otherwise ValueError with
    the catalogue key of the reason (params: ``days``)."""
    if given is None:
        return now
    if given.tzinfo is None:
        raise ValueError("error.time_zone")
    if given > now:
        raise ValueError("error.time_future")
    if given < now - BACKDATE_LIMIT:
        raise ValueError("error.time_too_old")
    if not_before is not None and given < not_before:
        raise ValueError("error.closed_before_opened")
    return given


def may_see_site(principal: Principal, site_id: str) -> bool:
    if principal.role is Role.ADMIN:
        return True
    return principal.role in (Role.STAFF, Role.SAFETY_OFFICER) and site_id in principal.site_ids


async def checklist(conn: Conn, *, site_id: str) -> list[dict[str, Any]]:
    cur = await conn.execute(
        "SELECT item_key, label FROM safety_checklist_items WHERE site_id = %s "
        "ORDER BY position, item_key",
        (site_id,),
    )
    return list(await cur.fetchall())


async def add_item(conn: Conn, *, site_id: str, item_key: str, label: str) -> None:
    await conn.execute(
        "INSERT INTO safety_checklist_items (site_id, item_key, label) VALUES (%s, %s, %s) "
        "ON CONFLICT (site_id, item_key) DO UPDATE SET label = EXCLUDED.label",
        (site_id, item_key, label),
    )


async def record_round(
    conn: Conn,
    *,
    principal: Principal,
    site_id: str,
    results: list[dict[str, Any]],
    note: str,
    owner: str,
    deadline: datetime | None,
    done_at: datetime,
    now: datetime,
) -> tuple[int, list[int]]:
    """Store the round walked at ``done_at`` (entered at ``now`` by ``principal``); every item
    not ok opens a finding on that day. Returns (round id, finding ids). Items not on the
    site's checklist are refused (ValueError)."""
    known = {i["item_key"] for i in await checklist(conn, site_id=site_id)}
    unknown = sorted({r["item_key"] for r in results} - known)
    if unknown:
        raise ValueError(f"not on this site's checklist: {', '.join(unknown)}")
    if len({r["item_key"] for r in results}) != len(results):
        raise ValueError("each checklist item once per round")
    cur = await conn.execute(
        "INSERT INTO safety_rounds (site_id, inspector_id, done_at, recorded_at, results, note) "
        "VALUES (%s, %s, %s, %s, %s, %s) RETURNING round_id",
        (site_id, principal.user_id, done_at, now, Jsonb(results), note),
    )
    row = await cur.fetchone()
    assert row is not None
    round_id = int(row["round_id"])
    findings = []
    for r in results:
        if r["ok"]:
            continue
        cur = await conn.execute(
            "INSERT INTO safety_findings (idem_key, site_id, source, round_id, item_key, kind, "
            "description, owner, deadline, opened_at) VALUES (%s, %s, 'round', %s, %s, %s, %s, "
            "%s, %s, %s) RETURNING finding_id",
            (
                f"round:{round_id}:{r['item_key']}",
                site_id,
                round_id,
                r["item_key"],
                r["item_key"],
                r.get("note") or r["item_key"],
                owner or principal.username,
                deadline or done_at + FIX_WITHIN,
                done_at,
            ),
        )
        f = await cur.fetchone()
        assert f is not None
        findings.append(int(f["finding_id"]))
    return round_id, findings


async def list_rounds(conn: Conn, *, site_id: str, limit: int) -> list[dict[str, Any]]:
    """A site's rounds, latest walked first: when walked, when entered and by whom."""
    cur = await conn.execute(
        "SELECT r.round_id, r.done_at, r.recorded_at, u.username AS inspector, "
        "(SELECT count(*) FROM jsonb_array_elements(r.results) x "
        "WHERE NOT (x->>'ok')::boolean) AS failed_items "
        "FROM safety_rounds r JOIN users u ON u.user_id = r.inspector_id "
        "WHERE r.site_id = %s ORDER BY r.done_at DESC, r.round_id DESC LIMIT %s",
        (site_id, limit),
    )
    return list(await cur.fetchall())


async def list_findings(
    conn: Conn, *, principal: Principal, site_id: str | None, open_only: bool, limit: int
) -> list[dict[str, Any]]:
    admin = principal.role is Role.ADMIN
    cur = await conn.execute(
        "SELECT " + FINDING_COLUMNS + " FROM safety_findings f "
        "LEFT JOIN devices d ON d.device_key = f.device_key "
        "WHERE (%(admin)s OR f.site_id = ANY(%(sites)s)) "
        "AND (%(site)s::text IS NULL OR f.site_id = %(site)s) "
        "AND (NOT %(open)s OR f.closed_at IS NULL) "
        "ORDER BY f.closed_at IS NOT NULL, f.deadline, f.finding_id LIMIT %(limit)s",
        {
            "admin": admin,
            "sites": [] if admin else list(principal.site_ids),
            "site": site_id,
            "open": open_only,
            "limit": limit,
        },
    )
    return list(await cur.fetchall())


async def get_finding(conn: Conn, *, finding_id: int) -> dict[str, Any] | None:
    cur = await conn.execute(
        "SELECT " + FINDING_COLUMNS + " FROM safety_findings f "
        "LEFT JOIN devices d ON d.device_key = f.device_key WHERE f.finding_id = %s",
        (finding_id,),
    )
    return await cur.fetchone()


async def update_finding(
    conn: Conn,
    *,
    finding_id: int,
    owner: str | None,
    deadline: datetime | None,
    close_note: str | None,
    principal: Principal,
    now: datetime,
    closed_at: datetime | None = None,
) -> bool:
    """Set owner/deadline, or close with a note (at ``closed_at``, default ``now``; the
    closure is recorded as entered at ``now``). False if it was already closed."""
    cur = await conn.execute(
        "UPDATE safety_findings SET owner = coalesce(%(owner)s, owner), "
        "deadline = coalesce(%(deadline)s, deadline), "
        "closed_at = CASE WHEN %(close)s::text IS NULL THEN NULL ELSE %(closed)s END, "
        "close_recorded_at = CASE WHEN %(close)s::text IS NULL THEN NULL ELSE %(now)s END, "
        "closed_by = CASE WHEN %(close)s::text IS NULL THEN NULL ELSE %(user)s END, "
        "closure_note = coalesce(%(close)s, '') WHERE finding_id = %(id)s AND closed_at IS NULL",
        {
            "owner": owner,
            "deadline": deadline,
            "close": close_note,
            "now": now,
            "closed": closed_at or now,
            "user": principal.user_id,
            "id": finding_id,
        },
    )
    return cur.rowcount == 1
