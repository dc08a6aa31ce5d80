"""Channel adapters behind one small Protocol: webhook, e-mail over SMTP, an HTTP SMS gateway
(the Chinese providers are in ``wechat.py`` and ``cn_sms.py``).

``send`` returns the other side's receipt (HTTP status, SMTP reply, gateway message id) or
raises :class:`DeliveryFailed` with what went wrong; nothing else escapes.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import smtplib
import ssl
import string
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any, Protocol

import httpx2

from alerts.notify.egress import Refused, resolve_public
from alerts.notify.policy import ChannelKind

SIGNATURE_HEADER = "X-Eldercare-Signature"
TIMESTAMP_HEADER = "X-Eldercare-Timestamp"
DELIVERY_HEADER = "X-Eldercare-Delivery"


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One notification on its way to one address."""

    delivery_id: int  # the outbox row: the receiver's idempotency key
    address: str
    subject: str
    text: str
    payload: dict[str, Any]
    secret: str  # the recipient's webhook HMAC key
    timestamp: int  # unix seconds, signed with the body


class DeliveryFailed(Exception):
    """The channel did not take the message; ``receipt`` says what it answered."""

    def __init__(self, receipt: str) -> None:
        super().__init__(receipt)
        self.receipt = receipt


class Channel(Protocol):
    @property
    def kind(self) -> ChannelKind: ...

    async def send(self, out: Outgoing) -> str: ...


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """``sha256=<hex HMAC-SHA256 of "<timestamp>." + body>`` (see docs/notifications.md)."""
    mac = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def template_values(out: Outgoing, *, limit: int | None = None) -> dict[str, str]:
    """The variables a provider template may use: ``$to $text $subject $resident $event
    $time $colour $notification_id $alert_id``; each cut to ``limit`` characters when given."""
    values = {
        "to": out.address,
        "text": out.text,
        "subject": out.subject,
        "resident": str(out.payload.get("resident_name", "")),
        "event": str(out.payload.get("kind", "")),
        "time": str(out.payload.get("local_time", "")),
        "colour": str(out.payload.get("colour", "")),
        "notification_id": str(out.delivery_id),
        "alert_id": str(out.payload.get("alert_id") or ""),
    }
    if limit is not None:
        values = {k: v if len(v) <= limit else v[: limit - 1] + "…" for k, v in values.items()}
    return values


def fill_json(template: str, out: Outgoing, *, setting: str, limit: int | None = None) -> str:
    """Fill a JSON ``string.Template`` with the (JSON-escaped) template values; a template
    that does not fill, or does not give JSON, fails the delivery naming its setting."""
    values = template_values(out, limit=limit)
    escaped = {k: json.dumps(v, ensure_ascii=False)[1:-1] for k, v in values.items()}
    try:
        filled = string.Template(template).substitute(escaped)
        json.loads(filled)
    except (KeyError, ValueError) as exc:
        raise DeliveryFailed(f"bad {setting} template: {exc!r}") from exc
    return filled


def _status_receipt(response: httpx2.Response) -> str:
    return f"HTTP {response.status_code} {response.text[:200]}".strip()


@dataclass(frozen=True, slots=True)
class WebhookChannel:
    """A family's own URL: only public addresses (checked at the address connected to) unless
    allow-listed, no redirects, and the receipt is the status only: the other side's body is
    never shown back to the family."""

    client: httpx2.AsyncClient
    allow_hosts: frozenset[str] = frozenset()
    kind: ChannelKind = ChannelKind.WEBHOOK

    async def send(self, out: Outgoing) -> str:
        body = json.dumps(out.payload, ensure_ascii=False, sort_keys=True).encode()
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            TIMESTAMP_HEADER: str(out.timestamp),
            SIGNATURE_HEADER: sign(out.secret, out.timestamp, body),
            DELIVERY_HEADER: str(out.delivery_id),
        }
        try:
            target = await resolve_public(out.address, self.allow_hosts)
        except Refused as exc:
            raise DeliveryFailed(f"refused: {exc}") from exc
        extensions: dict[str, object] = {}
        if target.pinned:
            headers["Host"] = target.host
            extensions["sni_hostname"] = target.host
        try:
            response = await self.client.post(
                target.url, content=body, headers=headers, extensions=extensions
            )
        except (httpx2.HTTPError, httpx2.InvalidURL) as exc:
            raise DeliveryFailed(type(exc).__name__) from exc
        receipt = f"HTTP {response.status_code}"
        if not response.is_success:
            raise DeliveryFailed(receipt)
        return receipt


@dataclass(frozen=True, slots=True)
class SmtpConfig:
    host: str
    port: int
    sender: str
    starttls: bool = False
    username: str = ""
    password: str = ""
    timeout_s: float = 10.0


def _smtp_send(cfg: SmtpConfig, message: EmailMessage, to: str) -> str:
    with smtplib.SMTP(cfg.host, cfg.port, timeout=cfg.timeout_s) as smtp:
        smtp.ehlo()
        if cfg.starttls:
            smtp.starttls(context=ssl.create_default_context())
            smtp.ehlo()
        if cfg.username:
            smtp.login(cfg.username, cfg.password)
        code, reply = smtp.mail(cfg.sender)
        if code != 250:
            raise smtplib.SMTPSenderRefused(code, reply, cfg.sender)
        code, reply = smtp.rcpt(to)
        if code not in (250, 251):
            raise smtplib.SMTPRecipientsRefused({to: (code, reply)})
        code, reply = smtp.data(message.as_bytes())  # raises SMTPDataError unless 250
        return f"SMTP {code} {reply.decode(errors='replace')}"


@dataclass(frozen=True, slots=True)
class EmailChannel:
    config: SmtpConfig
    kind: ChannelKind = ChannelKind.EMAIL

    async def send(self, out: Outgoing) -> str:
        message = EmailMessage()
        message["From"] = self.config.sender
        message["To"] = out.address
        message["Subject"] = out.subject
        message["Message-ID"] = make_msgid(idstring=f"eldercare-{out.delivery_id}")
        message.set_content(out.text)
        try:
            return await asyncio.to_thread(_smtp_send, self.config, message, out.address)
        except smtplib.SMTPResponseException as exc:
            raise DeliveryFailed(f"SMTP {exc.smtp_code} {exc.smtp_error!r}") from exc
        except (smtplib.SMTPException, OSError, UnicodeError) as exc:
            raise DeliveryFailed(f"{type(exc).__name__}: {exc}") from exc


@dataclass(frozen=True, slots=True)
class SmsGatewayChannel:
    """A generic HTTP SMS gateway: POST ``body_template`` (JSON, ``string.Template``
    placeholders ``$to $text $subject $resident $event $time``) to ``url``; the gateway's
    message id is read from ``id_field`` of the JSON answer."""

    client: httpx2.AsyncClient
    url: str
    body_template: str
    id_field: str = "message_id"
    auth_header: str = ""
    kind: ChannelKind = ChannelKind.SMS

    def render(self, out: Outgoing) -> bytes:
        return fill_json(self.body_template, out, setting="ELDERCARE_SMS_GATEWAY_BODY").encode()

    async def send(self, out: Outgoing) -> str:
        if not self.url:
            raise DeliveryFailed("no SMS gateway configured (ELDERCARE_SMS_GATEWAY_URL)")
        headers = {"Content-Type": "application/json; charset=utf-8"}
        if self.auth_header:
            headers["Authorization"] = self.auth_header
        body = self.render(out)
        try:
            response = await self.client.post(self.url, content=body, headers=headers)
        except (httpx2.HTTPError, httpx2.InvalidURL) as exc:
            raise DeliveryFailed(f"{type(exc).__name__}: {exc}") from exc
        if not response.is_success:
            raise DeliveryFailed(_status_receipt(response))
        try:
            answer = response.json()
        except ValueError as exc:
            raise DeliveryFailed(f"gateway answer is not JSON: {response.text[:200]}") from exc
        message_id = answer.get(self.id_field) if isinstance(answer, dict) else None
        if message_id is None:
            raise DeliveryFailed(f"gateway gave no {self.id_field}: {response.text[:200]}")
        return f"HTTP {response.status_code} id={message_id}"
