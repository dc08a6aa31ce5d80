"""``python -m devices responder add|shift``: who is offered a site's orders, and when.

An order is offered only to a responder on shift (``shifts``) who covers its site (a nursing
home's carers, ``--site``) or its community (a home-care provider, ``--community``); level 2
(supervisor) and 3 (the 96345 centre) are the escalation chain's later steps. Until these
commands only the demo seed made a roster.

* ``responder add --name ... --kind staff|provider|supervisor|centre --level 1|2|3
  (--site S | --community C) [--phone P] [--username U | --new-account U]`` prints the
  responder's id. ``--username`` links an existing account (a carer's staff account);
  ``--new-account`` makes a responder account (it sees only the orders offered to it) and
  prints its password once.
* ``responder shift --responder-id N --start ISO --end ISO``: times with their UTC offset
  (``2026-12-05T08:00+08:00``); overlapping shifts of one responder are refused.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Annotated

import typer
from psycopg import errors

from devices.accounts import create_user, hash_password
from devices.domain import Role
from devices.people_cli import _fail, _run
from devices.registry import Conn
from devices.roster import add_responder, add_shift

responders = typer.Typer(add_completion=False, help="Responders and their shifts")

KINDS = ("staff", "provider", "supervisor", "centre")


@responders.command("add")
def responder_add(
    name: Annotated[str, typer.Option()],
    kind: Annotated[str, typer.Option(help="staff, provider, supervisor or centre")],
    level: Annotated[int, typer.Option(help="1 front line, 2 supervisor, 3 the centre")],
    site: Annotated[str | None, typer.Option(help="the site it covers")] = None,
    community: Annotated[str | None, typer.Option(help="the community it covers")] = None,
    phone: Annotated[str, typer.Option()] = "",
    username: Annotated[str | None, typer.Option(help="link an existing account")] = None,
    new_account: Annotated[
        str | None, typer.Option(help="make a responder account with this username")
    ] = None,
) -> None:
    """Add a responder to the roster; prints its id (for ``responder shift``)."""
    if kind not in KINDS:
        raise typer.Exit(_fail(f"--kind is one of {', '.join(KINDS)}"))
    if not 1 <= level <= 3:
        raise typer.Exit(_fail("--level is 1, 2 or 3"))
    if level < 3 and not (site or community):
        raise typer.Exit(_fail("a level 1 or 2 responder covers a --site or a --community"))
    if username and new_account:
        raise typer.Exit(_fail("--username or --new-account, not both"))
    password = secrets.token_urlsafe(12) if new_account else None

    async def work(conn: Conn) -> int:
        user_id = None
        if username:
            cur = await conn.execute(
                "SELECT user_id FROM users WHERE username = %s AND disabled_at IS NULL",
                (username,),
            )
            row = await cur.fetchone()
            if row is None:
                raise typer.Exit(_fail(f"no enabled account {username!r}"))
            user_id = row["user_id"]
        elif new_account and password:
            user_id = await create_user(
                conn,
                username=new_account,
                password_hash=hash_password(password),
                role=Role.RESPONDER,
                display_name=name,
            )
        return await add_responder(
            conn,
            name=name,
            kind=kind,
            level=level,
            user_id=user_id,
            site_id=site,
            community=community,
            phone=phone,
        )

    responder_id = _run(work)
    shown = f"; account {new_account}, password {password} (shown once)" if password else ""
    typer.echo(f"responder {responder_id} ({name}, level {level}) added{shown}")


def _instant(text: str, option: str) -> datetime:
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise typer.Exit(_fail(f"{option} {text!r} is not an ISO-8601 time")) from None
    if at.tzinfo is None:
        raise typer.Exit(_fail(f"{option} needs its UTC offset, e.g. {text}+08:00"))
    return at


@responders.command("shift")
def responder_shift(
    responder_id: Annotated[int, typer.Option()],
    start: Annotated[str, typer.Option(help="ISO-8601 with offset")],
    end: Annotated[str, typer.Option(help="ISO-8601 with offset")],
) -> None:
    """Put a responder on shift from ``--start`` to ``--end``."""
    t0, t1 = _instant(start, "--start"), _instant(end, "--end")
    if t1 <= t0:
        raise typer.Exit(_fail("--end must be after --start"))

    async def work(conn: Conn) -> None:
        try:
            await add_shift(conn, responder_id=responder_id, start=t0, end=t1)
        except errors.ExclusionViolation:
            raise typer.Exit(_fail("that responder already has a shift overlapping it")) from None

    _run(work)
    typer.echo(f"responder {responder_id} on shift {t0.isoformat()} - {t1.isoformat()}")
