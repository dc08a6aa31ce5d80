"""The demo's care programme (issue 15): priority residents with their visit policy and
visitors, a safety officer and a report reader, the default safety checklists, districts."""

from __future__ import annotations

from datetime import datetime

from devices.accounts import create_user
from devices.domain import Role
from devices.registry import Conn
from devtools.logins import demo_login

# The checklist every care home starts with; a site adds its own items.
DEFAULT_CHECKLIST = (
    ("fire_exits", "消防通道畅通 / Fire exits clear"),
    ("extinguishers", "灭火器在有效期内 / Extinguishers in date"),
    ("smoke_detectors", "烟感探测器正常 / Smoke detectors working"),
    ("call_buttons", "呼叫按钮正常 / Call buttons working"),
    ("bed_rails", "床栏牢固 / Bed rails secure"),
)


async def add_default_checklist(conn: Conn, *, site_id: str) -> None:
    for pos, (key, label) in enumerate(DEFAULT_CHECKLIST):
        await conn.execute(
            "INSERT INTO safety_checklist_items (site_id, item_key, label, position) "
            "VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
            (site_id, key, label, pos),
        )


async def seed_care_demo(
    conn: Conn, *, now: datetime, flagged_since: datetime
) -> list[tuple[str, str, str, str]]:
    """Returns (username, password, role, scope) of the users it made."""
    await conn.execute("UPDATE sites SET district = 'pinghu'")
    cur = await conn.execute(
        "SELECT r.resident_id, r.site_id, s.kind, s.community FROM residents r "
        "JOIN sites s USING (site_id) ORDER BY r.resident_id"
    )
    residents = await cur.fetchall()
    users: list[tuple[str, str, str, str]] = []

    async def user(name: str, role: Role, scope: str, sites: tuple[str, ...] = ()) -> int:
        password, password_hash = demo_login(name)
        uid = await create_user(
            conn, username=name, password_hash=password_hash, role=role, site_ids=sites
        )
        users.append((name, password, role.value, scope))
        return uid

    west = await user("visitor-west", Role.VISITOR, "assigned residents of pinghu-west")
    east = await user("volunteer-east", Role.VISITOR, "assigned residents of pinghu-east")
    for uid, kind, community in (
        (west, "community_worker", "pinghu-west"),
        (east, "volunteer", "pinghu-east"),
    ):
        await conn.execute(
            "INSERT INTO care_visitors (user_id, kind, community) VALUES (%s, %s, %s)",
            (uid, kind, community),
        )
    await user("safety-sunrise", Role.SAFETY_OFFICER, "sunrise", ("sunrise",))
    await user("reader", Role.REPORT_READER, "figures of every district")
    homes = [r for r in residents if r["kind"] == "home_care_bed"]
    home_flags = (["living_alone"], ["empty_nest", "disabled"], ["living_alone", "disabled"])
    for n, r in enumerate(homes):
        await _flag(conn, r["resident_id"], home_flags[n % 3], 2 if n == 1 else 1, flagged_since)
        if n < 2:  # the third one has no visitor yet: it shows as unassigned
            await _assign(conn, r["resident_id"], west, flagged_since)
    for r in [r for r in residents if r["kind"] == "nursing_home"][:4]:
        await _flag(conn, r["resident_id"], ["disabled"], 1, flagged_since)
        await _assign(conn, r["resident_id"], east, flagged_since)
    for site in {r["site_id"] for r in residents if r["kind"] == "nursing_home"}:
        await add_default_checklist(conn, site_id=site)
    return users


async def _flag(
    conn: Conn, resident_id: int, flags: list[str], per_month: int, at: datetime
) -> None:
    await conn.execute(
        "INSERT INTO care_flags (resident_id, flags, visits_per_month, flagged_at, updated_at) "
        "VALUES (%s, %s, %s, %s, %s)",
        (resident_id, flags, per_month, at, at),
    )


async def _assign(conn: Conn, resident_id: int, visitor: int, at: datetime) -> None:
    await conn.execute(
        "INSERT INTO visit_assignments (resident_id, visitor_id, assigned_at) VALUES (%s, %s, %s)",
        (resident_id, visitor, at),
    )
