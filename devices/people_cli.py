"""``python -m devices site|resident|user ...``: setting up a real site without the demo seed.

A nursing home or a home-care provider needs its sites, its residents and the accounts of its
staff, families, operators and visitors; until these commands only the demo seed made them.

* ``site add --site-id sunrise --name ... --kind nursing_home|home_care_bed``
* ``resident add --site sunrise --name ... [--birth-year --care-profile --phone]`` prints the
  resident's id (devices are then provisioned with ``--resident-id``);
* ``user add --username --role [--site ...] [--resident ...]`` prints a generated password
  once (or reads one from standard input with ``--password-stdin``); a family account names
  the residents it may see, a staff or safety account its sites;
* ``user disable --username`` ends every session of that account at once;
* ``visitor add --username --kind community_worker|volunteer --community C`` makes a visitor's
  account (monthly visits to people living alone); staff then assign residents to it on the
  care pages.
"""

from __future__ import annotations

import asyncio
import secrets
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import psycopg
import typer
from psycopg import errors
from psycopg.rows import dict_row

from devices.accounts import create_user, disable_user, hash_password
from devices.domain import CareProfile, Role, SiteKind
from devices.registry import Conn, create_resident, create_site
from devices.settings import Settings

T = TypeVar("T")

sites = typer.Typer(add_completion=False, help="Sites (a nursing home, a home-care community)")
residents = typer.Typer(add_completion=False, help="Residents of a site")
users = typer.Typer(add_completion=False, help="Sign-in accounts and what each may see")
visitors = typer.Typer(add_completion=False, help="Community workers and volunteers who visit")
VISITOR_KINDS = ("community_worker", "volunteer")

# Who must be scoped to what: a role missing its scope would see nothing (or, worse, be
# mistaken for an administrator by whoever set it up).
NEEDS_SITES = frozenset({Role.STAFF, Role.SAFETY_OFFICER})
NEEDS_RESIDENTS = frozenset({Role.FAMILY})
# These accounts work through a record of their own besides the account (a responder's roster
# entry and shifts, a visitor's community and assignments), which these commands do not make yet.
NOT_HERE = {
    Role.RESPONDER: "a responder account comes with its roster entry: "
    "`devices responder add --new-account USERNAME ...`",
    Role.VISITOR: "a visitor account comes with its community: "
    "`devices visitor add --username U --kind community_worker|volunteer --community C`",
}
MIN_PASSWORD = 12


def _run(work: Callable[[Conn], Awaitable[T]]) -> T:
    """``work`` in one transaction; a refused statement is a clear message and exit code 1."""

    async def go() -> T:
        url = Settings().database_url
        async with await psycopg.AsyncConnection.connect(url, row_factory=dict_row) as conn:
            try:
                out = await work(conn)
            except errors.UniqueViolation as exc:
                raise typer.Exit(_fail(f"already exists: {_detail(exc)}")) from None
            except errors.ForeignKeyViolation as exc:
                raise typer.Exit(_fail(f"no such site or resident: {_detail(exc)}")) from None
            except errors.CheckViolation as exc:
                raise typer.Exit(_fail(f"refused: {_detail(exc)}")) from None
            await conn.commit()
            return out

    return asyncio.run(go())


def _detail(exc: psycopg.Error) -> str:
    return (exc.diag.message_detail or exc.diag.message_primary or str(exc)).strip()


def _fail(message: str) -> int:
    typer.echo(message, err=True)
    return 1


@sites.command("add")
def site_add(
    site_id: Annotated[str, typer.Option()],
    name: Annotated[str, typer.Option()],
    kind: Annotated[SiteKind, typer.Option()],
    community: Annotated[str, typer.Option(help="the 96345 community it belongs to")] = "",
    address: Annotated[str, typer.Option()] = "",
    timezone: Annotated[str, typer.Option(help="IANA name; pages and alerts use it")] = (
        "Asia/Shanghai"
    ),
) -> None:
    """Register a site."""
    try:
        ZoneInfo(timezone)
    except (ValueError, ZoneInfoNotFoundError):
        raise typer.Exit(_fail(f"--timezone {timezone!r} is not an IANA time zone")) from None

    async def work(conn: Conn) -> str:
        return await create_site(
            conn,
            site_id=site_id,
            name=name,
            kind=kind,
            community=community,
            address=address,
            timezone=timezone,
        )

    typer.echo(f"site {_run(work)} registered")


@residents.command("add")
def resident_add(
    site: Annotated[str, typer.Option()],
    name: Annotated[str, typer.Option(help="full name")],
    birth_year: Annotated[int | None, typer.Option()] = None,
    care_profile: Annotated[CareProfile, typer.Option()] = CareProfile.INDEPENDENT,
    phone: Annotated[str, typer.Option(help="the resident's own phone (SMS check-ins)")] = "",
) -> None:
    """Admit a resident; prints the resident's id (for ``provision --resident-id``)."""
    if birth_year is not None and not 1900 <= birth_year <= datetime.now(UTC).year:
        raise typer.Exit(_fail(f"birth year {birth_year} is not a year of birth"))

    async def work(conn: Conn) -> int:
        return await create_resident(
            conn,
            site_id=site,
            full_name=name,
            birth_year=birth_year,
            care_profile=care_profile,
            phone=phone,
        )

    typer.echo(f"resident {_run(work)} admitted to site {site}")


@users.command("add")
def user_add(
    username: Annotated[str, typer.Option()],
    role: Annotated[Role, typer.Option()],
    site: Annotated[list[str] | None, typer.Option(help="a site it may see (repeat)")] = None,
    resident: Annotated[
        list[int] | None, typer.Option(help="a resident a family account may see (repeat)")
    ] = None,
    display_name: Annotated[str, typer.Option()] = "",
    password_stdin: Annotated[
        bool, typer.Option(help="read the password from standard input instead")
    ] = False,
) -> None:
    """Create an account; prints a generated password once (only its hash is kept)."""
    site_ids, resident_ids = tuple(site or ()), tuple(resident or ())
    if role in NOT_HERE:
        raise typer.Exit(_fail(f"not from this command: {NOT_HERE[role]}"))
    if role in NEEDS_SITES and not site_ids:
        raise typer.Exit(_fail(f"a {role.value} account needs at least one --site"))
    if role in NEEDS_RESIDENTS and not resident_ids:
        raise typer.Exit(_fail("a family account needs at least one --resident"))
    if resident_ids and role not in NEEDS_RESIDENTS:
        raise typer.Exit(_fail("--resident is for family accounts only"))
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
        if len(password) < MIN_PASSWORD:
            raise typer.Exit(_fail(f"a password needs at least {MIN_PASSWORD} characters"))
    else:
        password = secrets.token_urlsafe(12)
    password_hash = hash_password(password)

    async def work(conn: Conn) -> int:
        return await create_user(
            conn,
            username=username,
            password_hash=password_hash,
            role=role,
            display_name=display_name,
            site_ids=site_ids,
            resident_ids=resident_ids,
        )

    user_id = _run(work)
    shown = "" if password_stdin else f", password {password} (shown once)"
    typer.echo(f"user {username} ({role.value}, id {user_id}) created{shown}")


@users.command("disable")
def user_disable(username: Annotated[str, typer.Option()]) -> None:
    """Disable an account: it can no longer sign in, and its open sessions and live streams
    end now."""

    async def work(conn: Conn) -> int:
        ended = await disable_user(conn, username=username, now=datetime.now(UTC))
        if ended is None:
            raise typer.Exit(_fail(f"no enabled account {username!r}"))
        return ended

    typer.echo(f"user {username} disabled; {_run(work)} sessions ended")


@visitors.command("add")
def visitor_add(
    username: Annotated[str, typer.Option()],
    kind: Annotated[str, typer.Option(help="community_worker or volunteer")],
    community: Annotated[str, typer.Option(help="the community whose residents it visits")],
    display_name: Annotated[str, typer.Option()] = "",
) -> None:
    """Create a visitor's account; prints its password once. It sees only the residents
    assigned to it (assigned on the care pages)."""
    if kind not in VISITOR_KINDS:
        raise typer.Exit(_fail(f"--kind is one of {', '.join(VISITOR_KINDS)}"))
    password = secrets.token_urlsafe(12)
    password_hash = hash_password(password)

    async def work(conn: Conn) -> int:
        user_id = await create_user(
            conn,
            username=username,
            password_hash=password_hash,
            role=Role.VISITOR,
            display_name=display_name,
        )
        await conn.execute(
            "INSERT INTO care_visitors (user_id, kind, community) VALUES (%s, %s, %s)",
            (user_id, kind, community),
        )
        return user_id

    user_id = _run(work)
    typer.echo(
        f"visitor {username} ({kind}, {community}, id {user_id}) created, password "
        f"{password} (shown once)"
    )
