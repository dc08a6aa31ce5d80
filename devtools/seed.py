"""Demo population: one nursing home with 20 residents and three home-care beds.

Passwords (device MQTT secrets and demo user logins) are random per installation and
returned to the caller, which writes them under the run directory for the simulator.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from devices.accounts import create_user
from devices.domain import CareProfile, DeviceKind, Placement, Role, RoomKind, SiteKind
from devices.registry import (
    Conn,
    create_resident,
    create_room,
    create_site,
    provision_device,
)
from devices.roster import add_responder, add_shift
from devtools.care_seed import seed_care_demo
from devtools.logins import demo_login

NAMES = [
    "Wang Fang",
    "Li Wei",
    "Zhang Min",
    "Liu Yang",
    "Chen Jing",
    "Yang Li",
    "Zhao Lei",
    "Huang Qiang",
    "Zhou Xia",
    "Wu Hua",
    "Xu Ming",
    "Sun Hong",
    "Ma Lin",
    "Zhu Ping",
    "Hu Jun",
    "Guo Mei",
    "He Gang",
    "Lin Yan",
    "Gao Feng",
    "Luo Qin",
    "Zheng Hui",
    "Liang Bo",
    "Song Lan",
]
PROFILES = [CareProfile.INDEPENDENT, CareProfile.FRAIL, CareProfile.DEMENTIA, CareProfile.BED_BOUND]


@dataclass(frozen=True, slots=True)
class DemoDevice:
    site_id: str
    device_id: str
    kind: str
    password: str
    resident: str | None
    room: str | None


@dataclass(frozen=True, slots=True)
class DemoUser:
    username: str
    password: str
    role: str
    scope: str


@dataclass(slots=True)
class DemoPopulation:
    devices: list[DemoDevice]
    users: list[DemoUser]

    def as_json(self) -> dict[str, object]:
        return {
            "devices": [asdict(d) for d in self.devices],
            "users": [asdict(u) for u in self.users],
        }


INSTALLED_BEFORE = timedelta(days=30)


async def _device(
    conn: Conn,
    out: list[DemoDevice],
    *,
    device_id: str,
    site_id: str,
    kind: DeviceKind,
    now: datetime,
    room_id: int | None,
    room: str | None,
    resident_id: int | None = None,
    resident: str | None = None,
) -> None:
    p = await provision_device(
        conn,
        device_id=device_id,
        site_id=site_id,
        kind=kind,
        now=now,
        room_id=room_id,
        resident_id=resident_id,
        # the demo's wristbands are worn on the wrist (their fall model is the wrist's)
        placement=Placement.WRIST if kind is DeviceKind.WRISTBAND else Placement.UNKNOWN,
    )
    out.append(DemoDevice(site_id, device_id, kind.value, p.secret, resident, room))


async def seed_demo(
    conn: Conn, *, now: datetime, nursing_home_residents: int = 20
) -> DemoPopulation:
    """The demo's devices were installed and assigned ``INSTALLED_BEFORE`` before ``now``, so
    readings from the recent past (a replay, a simulated night played compressed) belong to
    their residents."""
    devices: list[DemoDevice] = []
    installed = now - INSTALLED_BEFORE
    await create_site(
        conn,
        site_id="sunrise",
        name="Sunrise Care Home",
        kind=SiteKind.NURSING_HOME,
        community="pinghu-east",
        address="1 Xinhua Road, Pinghu",
    )
    await _device(
        conn,
        devices,
        device_id="smoke-sunrise-1",
        site_id="sunrise",
        kind=DeviceKind.SMOKE,
        now=installed,
        room_id=None,
        room=None,
    )
    for i in range(nursing_home_residents):
        room_no = 101 + i // 2
        room_name = f"room {room_no}"
        if i % 2 == 0:
            room_id = await create_room(
                conn, site_id="sunrise", name=room_name, kind=RoomKind.BEDROOM
            )
            for kind, prefix in (
                (DeviceKind.PIR, "pir"),
                (DeviceKind.DOOR, "door"),
                (DeviceKind.SOS_BUTTON, "sos"),
            ):
                await _device(
                    conn,
                    devices,
                    device_id=f"{prefix}-r{room_no}",
                    site_id="sunrise",
                    kind=kind,
                    now=installed,
                    room_id=room_id,
                    room=room_name,
                )
        name = NAMES[i % len(NAMES)]
        rid = await create_resident(
            conn,
            site_id="sunrise",
            full_name=name,
            room_id=room_id,
            birth_year=1935 + i,
            care_profile=PROFILES[i % len(PROFILES)],
            admitted_at=installed,
        )
        for kind, prefix in ((DeviceKind.WRISTBAND, "wb"), (DeviceKind.BED_MAT, "bed")):
            await _device(
                conn,
                devices,
                device_id=f"{prefix}-s{i + 1:02d}",
                site_id="sunrise",
                kind=kind,
                now=installed,
                room_id=room_id,
                room=room_name,
                resident_id=rid,
                resident=name,
            )
    home_residents: list[int] = []
    for n, site_id in enumerate(("home-17", "home-18", "home-19")):
        await create_site(
            conn,
            site_id=site_id,
            name=f"Home-care bed {site_id}",
            kind=SiteKind.HOME_CARE_BED,
            community="pinghu-west",
        )
        room_id = await create_room(conn, site_id=site_id, name="bedroom", kind=RoomKind.BEDROOM)
        name = (
            NAMES[nursing_home_residents + n]
            if nursing_home_residents + n < len(NAMES)
            else site_id
        )
        rid = await create_resident(
            conn,
            site_id=site_id,
            full_name=name,
            room_id=room_id,
            birth_year=1940 + n,
            care_profile=CareProfile.FRAIL,
            admitted_at=installed,
            phone=f"138 0013 80{17 + n}",  # the number they call the 96345 hotline from
        )
        home_residents.append(rid)
        suffix = f"{42 + n:04d}"
        for kind, prefix, personal in (
            (DeviceKind.SOS_BUTTON, "btn", False),
            (DeviceKind.WRISTBAND, "wb", True),
            (DeviceKind.BED_MAT, "bed", True),
            (DeviceKind.SEAT_MAT, "seat", False),  # the armchair: seated is a resting place
            (DeviceKind.PIR, "pir", False),
            (DeviceKind.DOOR, "door", False),
            (DeviceKind.SMOKE, "smoke", False),
        ):
            await _device(
                conn,
                devices,
                device_id=f"{prefix}-{suffix}",
                site_id=site_id,
                kind=kind,
                now=installed,
                room_id=room_id,
                room="bedroom",
                resident_id=rid if personal else None,
                resident=name,
            )
    users = [
        await _user(conn, "admin", Role.ADMIN, "all sites"),
        await _user(conn, "staff-sunrise", Role.STAFF, "sunrise", site_ids=("sunrise",)),
        await _user(
            conn,
            "staff-homes",
            Role.STAFF,
            "home-17 home-18 home-19",
            site_ids=("home-17", "home-18", "home-19"),
        ),
        await _user(
            conn,
            "family-home17",
            Role.FAMILY,
            "resident of home-17",
            resident_ids=(home_residents[0],),
        ),
        # the 96345 centre's operator: every site's orders, service orders, the console
        await _user(conn, "operator-96345", Role.OPERATOR, "every site (96345 centre)"),
    ]
    # the care programme (issue 15): priority residents, visitors, checklists, districts
    care = await seed_care_demo(conn, now=now, flagged_since=installed)
    users += [DemoUser(*u) for u in care]
    return DemoPopulation(devices, users)


async def _user(
    conn: Conn,
    username: str,
    role: Role,
    scope: str,
    *,
    site_ids: tuple[str, ...] = (),
    resident_ids: tuple[int, ...] = (),
) -> DemoUser:
    password, password_hash = demo_login(username)
    await create_user(
        conn,
        username=username,
        password_hash=password_hash,
        role=role,
        site_ids=site_ids,
        resident_ids=resident_ids,
    )
    return DemoUser(username, password, role.value, scope)


DEMO_ROSTER = (  # (username or None, name, kind, level, site, community)
    ("staff-sunrise", "Carer on the Sunrise day shift", "staff", 1, "sunrise", None),
    (None, "Carer on the Sunrise night shift", "staff", 1, "sunrise", None),
    ("staff-homes", "Pinghu West home-care provider", "provider", 1, None, "pinghu-west"),
    (None, "Sunrise supervisor", "supervisor", 2, "sunrise", None),
    (None, "Pinghu West supervisor", "supervisor", 2, None, "pinghu-west"),
    (None, "96345 centre", "centre", 3, None, None),
)


async def seed_demo_roster(conn: Conn, *, now: datetime, days: int = 30) -> int:
    """Responders on shift for the demo (the main job), so its orders are offered, escalated
    and re-notified as in a real site. Tests set up their own rosters."""
    for username, name, kind, level, site, community in DEMO_ROSTER:
        user_id = None
        if username is not None:
            cur = await conn.execute("SELECT user_id FROM users WHERE username = %s", (username,))
            found = await cur.fetchone()
            user_id = found["user_id"] if found else None
        responder_id = await add_responder(
            conn, name=name, kind=kind, level=level, user_id=user_id, site_id=site,
            community=community,
        )  # fmt: skip
        await add_shift(
            conn,
            responder_id=responder_id,
            start=now - timedelta(hours=1),
            end=now + timedelta(days=days),
        )
    return len(DEMO_ROSTER)
