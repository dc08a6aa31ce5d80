"""A small client of the public dashboard API (stdlib only): sign in, list alerts and orders,
accept an order. Blocking; the conformance run calls it from a worker thread."""

from __future__ import annotations

import http.client
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime

import msgspec


class ApiError(RuntimeError):
    pass


class Alert(msgspec.Struct, frozen=True):
    alert_id: int
    site_id: str
    resident_id: int | None
    resident_name: str | None
    kind: str
    colour: str
    occurred_at: datetime
    raised_at: datetime
    explanation: str
    order_id: int | None
    order_state: str | None
    incident_id: int | None = None


class _Technical(msgspec.Struct, frozen=True):
    id: int
    kind: str
    colour: str
    subject: str
    details: dict[str, object]
    raised_at: datetime


class Order(msgspec.Struct, frozen=True):
    order_id: int
    alert_id: int | None
    site_id: str
    state: str
    opened_at: datetime
    accept_deadline: datetime
    accepted_at: datetime | None
    offered_at: datetime | None = None  # when a responder was first offered it


class SimClockState(msgspec.Struct, frozen=True):
    simulated: bool
    wall_now: datetime
    detector_now: datetime
    speed: float = 1.0


class ResidentInfo(msgspec.Struct, frozen=True):
    resident_id: int
    site_id: str
    full_name: str
    care_profile: str


class _Token(msgspec.Struct):
    access_token: str


class Api:
    def __init__(self, base_url: str, *, timeout: float = 10.0) -> None:
        self.base = base_url.rstrip("/")
        self.timeout = timeout
        self.token: str | None = None

    def _call(
        self,
        method: str,
        path: str,
        *,
        form: dict[str, str] | None = None,
        json: object | None = None,
    ) -> bytes:
        data = urllib.parse.urlencode(form).encode() if form is not None else None
        if json is not None:
            data = msgspec.json.encode(json)
        req = urllib.request.Request(self.base + path, data=data, method=method)  # noqa: S310
        if json is not None:
            req.add_header("Content-Type", "application/json")
        if self.token:
            req.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:  # noqa: S310
                body: bytes = resp.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read()[:300].decode("utf-8", "replace")
            raise ApiError(f"{method} {path}: HTTP {exc.code} {detail}") from exc
        except (OSError, http.client.HTTPException) as exc:  # URLError, reset, cut short
            raise ApiError(f"{method} {path}: {exc!r}") from exc
        return body

    def login(self, username: str, password: str) -> None:
        out = self._call(
            "POST", "/api/auth/token", form={"username": username, "password": password}
        )
        self.token = msgspec.json.decode(out, type=_Token).access_token

    def alerts(self, *, since: datetime) -> list[Alert]:
        query = urllib.parse.urlencode({"since": since.isoformat(), "limit": 500})
        return msgspec.json.decode(self._call("GET", f"/api/alerts?{query}"), type=list[Alert])

    def technical_alerts(self) -> list[Alert]:
        """What the backend's dead-man's switch raised about itself (open, and cleared within
        the day), in the shape of alerts so a scorecard counts them with the rest."""
        out = self._call("GET", "/api/technical-alerts?include_cleared=true")
        return [
            Alert(
                alert_id=-t.id,  # never the id of a resident alert
                site_id=str(t.details.get("site_id", "")),
                resident_id=None,
                resident_name=None,
                kind=t.kind,
                colour=t.colour,
                occurred_at=t.raised_at,
                raised_at=t.raised_at,
                explanation=t.subject,
                order_id=None,
                order_state=None,
            )
            for t in msgspec.json.decode(out, type=list[_Technical])
        ]

    def residents(self) -> list[ResidentInfo]:
        out = self._call("GET", "/api/residents")
        return msgspec.json.decode(out, type=list[ResidentInfo])

    def orders(self, *, offset: int = 0) -> list[Order]:
        out = self._call("GET", f"/api/orders?limit=500&offset={offset}")
        return msgspec.json.decode(out, type=list[Order])

    def status_of(self, path: str) -> int:
        """The HTTP status a GET of ``path`` answers (an API that fails gives 500)."""
        try:
            self._call("GET", path)
        except ApiError as exc:
            code = str(exc).split("HTTP ", 1)[1][:3] if "HTTP " in str(exc) else "0"
            return int(code) if code.isdigit() else 0
        return 200

    def accept(self, order_id: int) -> Order:
        body = self._call("POST", f"/api/orders/{order_id}/accept", form={})
        return msgspec.json.decode(body, type=Order)

    def set_sim_clock(self, *, sim_origin: datetime, wall_origin: datetime, speed: float) -> None:
        """Make the backend's time-driven detectors evaluate at the run's simulated clock
        (refused with 409 by a backend that does not allow it)."""
        body = {"sim_origin": sim_origin, "wall_origin": wall_origin, "speed": speed}
        self._call("PUT", "/api/admin/sim-clock", json=body)

    def clear_sim_clock(self) -> SimClockState:
        out = self._call("DELETE", "/api/admin/sim-clock")
        return msgspec.json.decode(out, type=SimClockState)
