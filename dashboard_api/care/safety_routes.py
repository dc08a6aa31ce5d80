"""Safety-round routes (机构安全巡检): a site's checklist, a round from a phone, findings
with owner and deadline until closed. Staff and safety officers of the site, and admins."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, status
from pydantic import BaseModel, Field

from alerts.care.messages import finding_text
from dashboard_api.care import safety
from dashboard_api.deps import ConnDep, CurrentUser, Limit, Now, SiteFilter
from dashboard_api.errors import ApiError
from dashboard_api.i18n import LocaleDep
from dashboard_api.queries import site_exists
from dashboard_api.schemas import FreeText, Problem
from devices.accounts import Principal
from devices.domain import Role
from devices.i18n import Locale
from devices.registry import Conn

router = APIRouter(prefix="/api/safety", tags=["safety"])
SiteId = Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
FindingId = Annotated[int, Path(ge=1, le=2**62)]
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": Problem}}
CONFLICT: dict[int | str, dict[str, Any]] = {404: {"model": Problem}, 409: {"model": Problem}}


async def _safety_user(principal: CurrentUser) -> Principal:
    if principal.role not in (Role.ADMIN, Role.STAFF, Role.SAFETY_OFFICER):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "care staff and safety officers only")
    return principal


SafetyUser = Annotated[Principal, Depends(_safety_user)]


class ItemOut(BaseModel):
    item_key: str
    label: str


class ItemIn(BaseModel):
    item_key: str = Field(pattern=r"^[a-z0-9_]{1,64}$")
    label: FreeText = Field(min_length=1, max_length=200)


class ResultIn(BaseModel):
    item_key: str = Field(pattern=r"^[a-z0-9_]{1,64}$")
    ok: bool
    note: FreeText = Field(default="", max_length=2000)


class RoundIn(BaseModel):
    results: list[ResultIn] = Field(min_length=1, max_length=200)
    note: FreeText = Field(default="", max_length=2000)
    owner: FreeText = Field(default="", max_length=200)  # who fixes what this round found
    deadline: datetime | None = None
    # when the round was walked (default: now); at most 35 days back, never in the future
    done_at: datetime | None = None


class RoundOut(BaseModel):
    round_id: int
    finding_ids: list[int]
    done_at: datetime  # when it was walked; its findings are opened then
    recorded_at: datetime  # when it was entered (by the caller)


class RoundSummaryOut(BaseModel):
    round_id: int
    done_at: datetime
    recorded_at: datetime
    inspector: str  # who entered it
    failed_items: int


class FindingOut(BaseModel):
    finding_id: int
    site_id: str
    source: str
    round_id: int | None
    device_id: str | None
    item_key: str
    kind: str
    description: str  # as stored: the inspector's note, or a device finding in both languages
    text: str  # in the reader's language: a device finding's catalogue message, else as stored
    owner: str
    deadline: datetime
    opened_at: datetime
    closed_at: datetime | None
    closure_note: str


def _finding_out(row: dict[str, Any], locale: Locale) -> FindingOut:
    text = str(row["description"])
    if row["source"] == "device":
        text = finding_text(str(row["kind"]), row["params"], locale)
    return FindingOut(**row, text=text)


class FindingIn(BaseModel):
    owner: FreeText | None = Field(default=None, max_length=200)
    deadline: datetime | None = None


class CloseIn(BaseModel):
    note: FreeText = Field(min_length=1, max_length=2000)
    # when it was fixed (default: now); not before it was opened, at most 35 days back
    closed_at: datetime | None = None


def _past(given: datetime | None, now: datetime, not_before: datetime | None = None) -> datetime:
    try:
        return safety.past_time(given, now=now, not_before=not_before)
    except ValueError as exc:
        raise ApiError(422, str(exc), days=safety.BACKDATE_LIMIT.days) from exc


async def _site(conn: ConnDep, user: Principal, site_id: str) -> None:
    if not safety.may_see_site(user, site_id) or not await site_exists(conn, site_id=site_id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such site")


@router.get("/sites/{site_id}/checklist", response_model=list[ItemOut], responses=NOT_FOUND)
async def get_checklist(conn: ConnDep, user: SafetyUser, site_id: SiteId) -> list[ItemOut]:
    await _site(conn, user, site_id)
    return [ItemOut(**r) for r in await safety.checklist(conn, site_id=site_id)]


@router.post("/sites/{site_id}/checklist", status_code=204, responses=NOT_FOUND)
async def post_item(conn: ConnDep, user: SafetyUser, site_id: SiteId, body: ItemIn) -> None:
    """Add (or relabel) a site's own checklist item."""
    await _site(conn, user, site_id)
    await safety.add_item(conn, site_id=site_id, item_key=body.item_key, label=body.label)
    await conn.commit()


@router.post(
    "/sites/{site_id}/rounds", response_model=RoundOut, status_code=201, responses=CONFLICT
)
async def post_round(
    conn: ConnDep, user: SafetyUser, at: Now, site_id: SiteId, body: RoundIn
) -> RoundOut:
    await _site(conn, user, site_id)
    done_at = _past(body.done_at, at)
    try:
        round_id, findings = await safety.record_round(
            conn,
            principal=user,
            site_id=site_id,
            results=[r.model_dump() for r in body.results],
            note=body.note,
            owner=body.owner,
            deadline=body.deadline,
            done_at=done_at,
            now=at,
        )
    except ValueError as exc:
        await conn.rollback()
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
    await conn.commit()
    return RoundOut(round_id=round_id, finding_ids=findings, done_at=done_at, recorded_at=at)


@router.get("/sites/{site_id}/rounds", response_model=list[RoundSummaryOut], responses=NOT_FOUND)
async def get_rounds(
    conn: ConnDep,
    user: SafetyUser,
    site_id: SiteId,
    limit: Annotated[int, Query(ge=1, le=200)] = 20,
) -> list[RoundSummaryOut]:
    """A site's rounds, latest walked first."""
    await _site(conn, user, site_id)
    return [
        RoundSummaryOut(**r) for r in await safety.list_rounds(conn, site_id=site_id, limit=limit)
    ]


@router.get("/findings", response_model=list[FindingOut])
async def findings(
    conn: ConnDep,
    user: SafetyUser,
    locale: LocaleDep,
    site_id: SiteFilter = None,
    open_only: bool = False,
    limit: Limit = 100,
) -> list[FindingOut]:
    rows = await safety.list_findings(
        conn, principal=user, site_id=site_id, open_only=open_only, limit=limit
    )
    return [_finding_out(r, locale) for r in rows]


async def _finding(conn: ConnDep, user: Principal, finding_id: int) -> dict[str, Any]:
    row = await safety.get_finding(conn, finding_id=finding_id)
    if row is None or not safety.may_see_site(user, row["site_id"]):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such finding")
    return row


@dataclass(frozen=True, slots=True)
class FindingEdit:
    """A change to one finding by the signed-in user, at the request's time; the finding's
    route gives it (``FindingEditDep``), the body says what changes."""

    conn: Conn
    user: Principal
    at: datetime
    locale: Locale
    finding_id: int

    async def apply(self, **change: Any) -> FindingOut:
        conn, finding_id = self.conn, self.finding_id
        row = await _finding(conn, self.user, finding_id)
        if "closed_at" in change:
            change["closed_at"] = _past(change["closed_at"], self.at, not_before=row["opened_at"])
        if not await safety.update_finding(
            conn, finding_id=finding_id, principal=self.user, now=self.at, **change
        ):
            await conn.rollback()
            raise HTTPException(status.HTTP_409_CONFLICT, "finding already closed")
        await conn.commit()
        after = await safety.get_finding(conn, finding_id=finding_id)
        assert after is not None
        return _finding_out(after, self.locale)


async def _finding_edit(
    conn: ConnDep, user: SafetyUser, at: Now, locale: LocaleDep, finding_id: FindingId
) -> FindingEdit:
    return FindingEdit(conn, user, at, locale, finding_id)


FindingEditDep = Annotated[FindingEdit, Depends(_finding_edit)]


@router.patch("/findings/{finding_id}", response_model=FindingOut, responses=CONFLICT)
async def patch_finding(edit: FindingEditDep, body: FindingIn) -> FindingOut:
    """Give an open finding its owner and deadline."""
    return await edit.apply(owner=body.owner, deadline=body.deadline, close_note=None)


@router.post("/findings/{finding_id}/close", response_model=FindingOut, responses=CONFLICT)
async def close_finding(edit: FindingEditDep, body: CloseIn) -> FindingOut:
    """Close with a note; ``closed_at`` when it was fixed, if that was before now."""
    return await edit.apply(
        owner=None, deadline=None, close_note=body.note, closed_at=body.closed_at
    )
