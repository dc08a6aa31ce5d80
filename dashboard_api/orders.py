"""Order routes: the queue for staff, hotline operators and responders.

Staff and admins see the orders of their sites, create service orders and may move any of
them; a responder (role ``responder``) sees only orders offered to them or that they
accepted, and moves only the ones they accepted. A 96345 centre operator (role ``operator``)
sees every site's orders and creates service orders anywhere, but moves none.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Path, status

from alerts.dispatch.orders import (
    Actor,
    OrderError,
    accept_order,
    arrive,
    cancel_order,
    resolve_order,
    start_route,
)
from alerts.dispatch.policy import policy_from_settings
from alerts.dispatch.service_orders import create_service_order
from dashboard_api import queries
from dashboard_api.deps import (
    ConnDep,
    HotlineUser,
    Now,
    OrderReader,
    OrderUser,
    SettingsDep,
    SitePageDep,
    StaffUser,
)
from dashboard_api.errors import ApiError
from dashboard_api.schemas import (
    CancelIn,
    OrderOut,
    Problem,
    ResolveIn,
    ServiceOrderIn,
    TransitionOut,
)
from devices.accounts import Principal
from devices.domain import Colour, OrderKind, OrderState, Role

router = APIRouter(prefix="/api/orders", tags=["orders"])
OrderId = Annotated[int, Path(ge=1, le=2**62)]
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": Problem}}
CONFLICT: dict[int | str, dict[str, Any]] = {404: {"model": Problem}, 409: {"model": Problem}}


def actor(user: Principal) -> Actor:
    return Actor(user.username, user.user_id, holder_only=user.role is Role.RESPONDER)


@router.get("", response_model=list[OrderOut])
async def orders(
    conn: ConnDep,
    user: OrderReader,
    page: SitePageDep,
    open_only: bool = False,
    state: OrderState | None = None,
    colour: Colour | None = None,
    kind: OrderKind | None = None,
    offered_to_me: bool = False,
) -> list[OrderOut]:
    rows = await queries.list_orders(
        conn,
        principal=user,
        page=page,
        open_only=open_only,
        state=state,
        colour=colour,
        kind=kind,
        offered_to_me=offered_to_me,
    )
    return [OrderOut(**r) for r in rows]


@router.post("", response_model=OrderOut, status_code=201, responses=CONFLICT)
async def create_service(
    conn: ConnDep, user: HotlineUser, settings: SettingsDep, at: Now, body: ServiceOrderIn
) -> OrderOut:
    """A hotline operator's service order (meal, cleaning, bathing, escort, ...)."""
    everywhere = user.role in (Role.ADMIN, Role.OPERATOR)
    in_scope = everywhere or body.site_id in user.site_ids
    if not in_scope or not await queries.site_exists(conn, site_id=body.site_id):
        raise ApiError(status.HTTP_404_NOT_FOUND, "error.no_such_site")
    if body.colour is Colour.RED:
        raise ApiError(status.HTTP_409_CONFLICT, "error.service_colour")
    policy = policy_from_settings(settings)
    try:
        order_id = await create_service_order(
            conn,
            site_id=body.site_id,
            resident_id=body.resident_id,
            category=body.category,
            colour=body.colour,
            note=body.note,
            actor=actor(user),
            now=at,
            policy=policy,
        )
    except OrderError as exc:
        await conn.rollback()
        raise ApiError(status.HTTP_409_CONFLICT, "error.order_conflict", reason=str(exc)) from exc
    await conn.commit()
    return await _order_or_404(conn, user, order_id)


async def _order_or_404(conn: ConnDep, user: Principal, order_id: int) -> OrderOut:
    row = await queries.get_order(conn, principal=user, order_id=order_id)
    if row is None:
        raise ApiError(status.HTTP_404_NOT_FOUND, "error.no_such_order")
    return OrderOut(**row)


@router.get("/{order_id}", response_model=OrderOut, responses=NOT_FOUND)
async def order(conn: ConnDep, user: OrderReader, order_id: OrderId) -> OrderOut:
    return await _order_or_404(conn, user, order_id)


@router.get("/{order_id}/trail", response_model=list[TransitionOut], responses=NOT_FOUND)
async def trail(conn: ConnDep, user: OrderReader, order_id: OrderId) -> list[TransitionOut]:
    await _order_or_404(conn, user, order_id)
    return [TransitionOut(**r) for r in await queries.order_trail(conn, order_id=order_id)]


async def _apply(
    conn: ConnDep, user: Principal, order_id: int, change: Callable[[], Awaitable[None]]
) -> OrderOut:
    """Run one order transition: 404 outside the caller's scope, 409 if the state forbids it."""
    await _order_or_404(conn, user, order_id)
    try:
        await change()
    except OrderError as exc:
        await conn.rollback()
        raise ApiError(status.HTTP_409_CONFLICT, "error.order_conflict", reason=str(exc)) from exc
    await conn.commit()
    return await _order_or_404(conn, user, order_id)


@router.post("/{order_id}/accept", response_model=OrderOut, responses=CONFLICT)
async def accept(conn: ConnDep, user: OrderUser, at: Now, order_id: OrderId) -> OrderOut:
    return await _apply(
        conn,
        user,
        order_id,
        lambda: accept_order(conn, order_id=order_id, actor=actor(user), now=at),
    )


@router.post("/{order_id}/en-route", response_model=OrderOut, responses=CONFLICT)
async def en_route(conn: ConnDep, user: OrderUser, at: Now, order_id: OrderId) -> OrderOut:
    return await _apply(
        conn,
        user,
        order_id,
        lambda: start_route(conn, order_id=order_id, actor=actor(user), now=at),
    )


@router.post("/{order_id}/on-site", response_model=OrderOut, responses=CONFLICT)
async def on_site(conn: ConnDep, user: OrderUser, at: Now, order_id: OrderId) -> OrderOut:
    return await _apply(
        conn, user, order_id, lambda: arrive(conn, order_id=order_id, actor=actor(user), now=at)
    )


@router.post("/{order_id}/resolve", response_model=OrderOut, responses=CONFLICT)
async def resolve(
    conn: ConnDep, user: OrderUser, at: Now, order_id: OrderId, body: ResolveIn
) -> OrderOut:
    return await _apply(
        conn,
        user,
        order_id,
        lambda: resolve_order(
            conn,
            order_id=order_id,
            actor=actor(user),
            outcome=body.outcome,
            note=body.note,
            now=at,
        ),
    )


@router.post("/{order_id}/cancel", response_model=OrderOut, responses=CONFLICT)
async def cancel(
    conn: ConnDep, user: StaffUser, at: Now, order_id: OrderId, body: CancelIn
) -> OrderOut:
    """Cancel an order (staff and admins only), with the reason kept in the trail."""
    return await _apply(
        conn,
        user,
        order_id,
        lambda: cancel_order(conn, order_id=order_id, actor=actor(user), note=body.reason, now=at),
    )
