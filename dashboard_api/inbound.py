"""Replies from residents' phones to SMS check-ins ("reply 1 if you are fine, 2 if you need
help"; issue 17 item 3), as the SMS providers call back with them:

* ``POST /api/inbound/sms/aliyun?key=...``: Aliyun SmsUp HTTP batch push, a JSON array of
  ``{phone_number, content, send_time, dest_code, sequence_id}``; answered
  ``{"code": 0, "msg": "接收成功"}`` (anything else, or a 5xx, and Aliyun retries);
* ``POST /api/inbound/sms/tencent?key=...``: Tencent Cloud SMS reply callback,
  ``{extend, mobile, nationcode, sign, text, time}``; answered ``{"result": 0, "errmsg": "OK"}``;
* ``POST /api/inbound/sms/gateway?key=...``: the generic gateway, ``{id, from, text}``.

Neither provider signs its callbacks: the URL carries ``ELDERCARE_INBOUND_SMS_TOKEN`` (set it
in the provider's console; without it the routes answer 404 to everyone), compared in
constant time, and ``ELDERCARE_INBOUND_SMS_ALLOW_NETS`` may list the provider's callback
addresses (CIDRs): a call with the right key from anywhere else is answered 404 and logged,
so a leaked URL alone cannot answer a resident's check-in. A reply is stored once per provider id (a provider's retry is no second reply)
and matched by number to the open check-in asked on that phone; the check loop then reads
it (``alerts.detection.check_in.read_reply``). A reply with no open check-in is kept
unmatched and read once by the check loop (``alerts.detection.sms_replies``): one asking for
help is a red alert at once.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from ipaddress import IPv4Network, IPv6Network, ip_address
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Body, Depends, HTTPException, Query, Request, status
from pydantic import BaseModel, ConfigDict, Field

from dashboard_api.deps import ConnDep, Now, SettingsDep
from devices.phones import mainland_digits
from devices.registry import Conn

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/inbound/sms", tags=["inbound"])
KEY_IN_URL = re.compile(r"([?&]key=)[^&\s]*")
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
ALIYUN_TIME = ZoneInfo("Asia/Shanghai")  # SmsUp's send_time is Beijing time, no offset
Key = Annotated[str, Query(max_length=200)]
Text = Annotated[str, Field(max_length=1000)]
Phone = Annotated[str, Field(min_length=3, max_length=32)]

RECORD_SQL = """
INSERT INTO check_in_replies (provider, provider_id, phone, body, sent_at, received_at, check_id)
VALUES (%(provider)s, %(pid)s, %(phone)s, %(body)s, %(sent)s, %(now)s,
        (SELECT check_id FROM detector_checks
         WHERE detector = 'check_in' AND done_at IS NULL AND event ->> 'phone' = %(phone)s
         ORDER BY created_at DESC LIMIT 1))
ON CONFLICT (provider, provider_id) DO NOTHING
RETURNING check_id
"""


class AliyunReply(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")
    phone_number: Phone
    content: Text
    send_time: str = Field(default="", max_length=40)
    dest_code: str = Field(default="", max_length=40)
    sequence_id: int | str


class TencentReply(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")
    mobile: Phone
    nationcode: str = Field(default="86", max_length=8)
    text: Text
    time: int = Field(ge=0, le=2**40)


class GatewayReply(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True)
    id: str = Field(min_length=1, max_length=200)
    sender: Phone = Field(alias="from")
    text: Text


class RedactKey(logging.Filter):
    """The access log's request line without the inbound token (``?key=...``): the providers
    can only be given a URL, and a long-lived secret must not land in shared logs."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                KEY_IN_URL.sub(r"\1***", a) if isinstance(a, str) else a for a in record.args
            )
        return True


def _allowed(request: Request, settings: SettingsDep, key: Key = "") -> None:
    """Before the body is read: a caller without the token, or (where the installation lists
    its provider's callback addresses) from another address, learns nothing (404)."""
    token = settings.inbound_sms_token.get_secret_value()
    if not token:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "inbound SMS is not enabled")
    if not hmac.compare_digest(key.encode(), token.encode()):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "inbound SMS is not enabled")
    nets = settings.inbound_sms_allow_nets
    if nets and not _from(request.client.host if request.client else "", nets):
        log.warning(
            "inbound SMS callback with the right key from an address not allowed",
            extra={"address": request.client.host if request.client else None},
        )
        raise HTTPException(status.HTTP_404_NOT_FOUND, "inbound SMS is not enabled")


def _from(host: str, nets: Sequence[IPv4Network | IPv6Network]) -> bool:
    try:
        address = ip_address(host)
    except ValueError:  # no address (a test client, a unix socket): not one of the listed
        return False
    return any(address in net for net in nets)


Allowed = Annotated[None, Depends(_allowed)]


def _number(phone: str, nationcode: str = "86") -> str:
    """The number as check-ins store it: mainland digits; anything else as given, digits only."""
    digits = mainland_digits(phone if nationcode in ("", "86") else f"+{nationcode}{phone}")
    return digits or re.sub(r"\D", "", f"{nationcode}{phone}")[:32]


def _aliyun_time(text: str) -> datetime | None:
    for fmt in ("%Y-%m-%d %H:%M:%S", "%Y%m%d%H%M%S"):
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=ALIYUN_TIME).astimezone(UTC)
        except ValueError:
            continue
    return None


async def record_reply(
    conn: Conn,
    *,
    provider: str,
    provider_id: str,
    phone: str,
    body: str,
    sent_at: datetime | None,
    now: datetime,
) -> bool:
    """Store one reply (control characters blanked); True if it answers an open check-in."""
    cur = await conn.execute(
        RECORD_SQL,
        {
            "provider": provider,
            "pid": provider_id[:200],
            "phone": phone,
            "body": CONTROL.sub(" ", body),
            "sent": sent_at,
            "now": now,
        },
    )
    row = await cur.fetchone()
    return row is not None and row["check_id"] is not None


class AliyunAnswer(BaseModel):
    code: int = 0
    msg: str = "接收成功"


class TencentAnswer(BaseModel):
    result: int = 0
    errmsg: str = "OK"


class GatewayAnswer(BaseModel):
    matched: int


@router.post("/aliyun", response_model=AliyunAnswer)
async def aliyun(
    replies: Annotated[list[AliyunReply], Body(max_length=100)],
    _: Allowed,
    conn: ConnDep,
    now: Now,
) -> AliyunAnswer:
    async with conn.transaction():
        for r in replies:
            await record_reply(
                conn,
                provider="aliyun",
                provider_id=f"{r.dest_code}:{r.sequence_id}",
                phone=_number(r.phone_number),
                body=r.content,
                sent_at=_aliyun_time(r.send_time),
                now=now,
            )
    return AliyunAnswer()


@router.post("/tencent", response_model=TencentAnswer)
async def tencent(reply: TencentReply, _: Allowed, conn: ConnDep, now: Now) -> TencentAnswer:
    phone = _number(reply.mobile, reply.nationcode)
    # Tencent gives no id: the same number, time and text is the same reply (its retry)
    digest = hashlib.sha256(f"{phone}|{reply.time}|{reply.text}".encode()).hexdigest()[:32]
    async with conn.transaction():
        await record_reply(
            conn,
            provider="tencent",
            provider_id=digest,
            phone=phone,
            body=reply.text,
            sent_at=datetime.fromtimestamp(reply.time, UTC),
            now=now,
        )
    return TencentAnswer()


@router.post("/gateway", response_model=GatewayAnswer)
async def gateway(reply: GatewayReply, _: Allowed, conn: ConnDep, now: Now) -> GatewayAnswer:
    async with conn.transaction():
        matched = await record_reply(
            conn,
            provider="gateway",
            provider_id=reply.id,
            phone=_number(reply.sender),
            body=reply.text,
            sent_at=None,
            now=now,
        )
    return GatewayAnswer(matched=int(matched))
