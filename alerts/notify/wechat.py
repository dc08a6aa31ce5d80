"""WeChat channels: a care station's WeChat Work (企业微信) group robot, and WeChat Official
Account (公众号) template messages to a family member's openid.

Both answer HTTP 200 with ``{"errcode": 0, "errmsg": "ok", ...}``; any other errcode is a
failed delivery whose receipt names it. Keys and tokens travel in the query string, so they
never appear in a receipt or a log line (only the error's type and the provider's errcode).

- Robot: ``POST {base}/cgi-bin/webhook/send?key=KEY`` with ``{"msgtype": "text", "text":
  {"content": ..., "mentioned_list": ["@all"]}}`` or ``{"msgtype": "markdown", "markdown":
  {"content": ...}}``. https://developer.work.weixin.qq.com/document/path/91770
- Official Account: ``GET {base}/cgi-bin/token?grant_type=client_credential&appid=&secret=``
  -> ``{"access_token", "expires_in"}`` (cached until shortly before it expires); then
  ``POST {base}/cgi-bin/message/template/send?access_token=`` with ``{"touser", "template_id",
  "url", "data": {"<key>": {"value": ...}}}`` -> ``{"errcode": 0, "msgid": ...}``. A token
  the server calls invalid or expired (40001, 40014, 42001) is fetched again once.
  https://developers.weixin.qq.com/doc/offiaccount/Message_Management/Template_Message_Interface.html
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx2

from alerts.notify.channels import DeliveryFailed, Outgoing, fill_json
from alerts.notify.policy import ChannelKind

TOKEN_REJECTED = frozenset({40001, 40014, 42001})
TEXT_MAX_BYTES = 2048  # the robot's documented limits, UTF-8 bytes
MARKDOWN_MAX_BYTES = 4096


# WeChat Work's markdown has no escape character: a message's words are shown as written by
# turning the characters that would start markup (a link, a font tag, code, emphasis, a
# heading or quote at a line's start) into their full-width look-alikes. A resident's text
# ("[确认](http://...)"), a name or a note cannot put a link or a tag in a care station's group.
_MARKUP = str.maketrans({c: chr(ord(c) + 0xFEE0) for c in "[]<>`*"})  # U+FF3B, U+FF3D, ...
_HASH = "\uff03"  # FULLWIDTH NUMBER SIGN


def _literal(text: str) -> str:
    lines = text.translate(_MARKUP).split("\n")
    return "\n".join(_HASH + line[1:] if line.startswith("#") else line for line in lines)


def _cut_utf8(text: str, limit: int) -> str:
    data = text.encode()
    if len(data) <= limit:
        return text
    return data[: limit - 3].decode(errors="ignore") + "…"


async def _post_json(client: httpx2.AsyncClient, url: str, body: dict[str, Any]) -> Any:
    """POST JSON, return the decoded answer; transport errors and non-200s fail."""
    data = json.dumps(body, ensure_ascii=False).encode()
    headers = {"Content-Type": "application/json; charset=utf-8"}
    try:
        response = await client.post(url, content=data, headers=headers)
    except (httpx2.HTTPError, httpx2.InvalidURL) as exc:
        raise DeliveryFailed(type(exc).__name__) from exc
    return _answer(response)


def _answer(response: httpx2.Response) -> Any:
    if response.status_code != 200:
        raise DeliveryFailed(f"HTTP {response.status_code}")
    try:
        return response.json()
    except ValueError as exc:
        raise DeliveryFailed(f"HTTP 200, not JSON: {response.text[:200]}") from exc


def _errcode(answer: Any) -> tuple[int, str]:
    if not isinstance(answer, dict) or not isinstance(answer.get("errcode", 0), int):
        raise DeliveryFailed(f"unexpected answer: {str(answer)[:200]}")
    return int(answer.get("errcode", 0)), str(answer.get("errmsg", ""))[:200]


@dataclass(frozen=True, slots=True)
class WeComRobotChannel:
    """``out.address`` is the site id; the robot key for it comes from settings."""

    client: httpx2.AsyncClient
    keys: Mapping[str, str]
    base_url: str = "https://qyapi.weixin.qq.com"
    msgtype: str = "markdown"
    kind: ChannelKind = ChannelKind.WECOM_ROBOT

    def body(self, out: Outgoing) -> dict[str, Any]:
        red = out.payload.get("colour") == "red"
        if self.msgtype == "text":
            text: dict[str, Any] = {"content": _cut_utf8(f"{out.subject}\n{out.text}", 2048)}
            if red:
                text["mentioned_list"] = ["@all"]
            return {"msgtype": "text", "text": text}
        colour = "warning" if red else "comment"
        content = f'### <font color="{colour}">{_literal(out.subject)}</font>\n{_literal(out.text)}'
        return {"msgtype": "markdown", "markdown": {"content": _cut_utf8(content, 4096)}}

    async def send(self, out: Outgoing) -> str:
        key = self.keys.get(out.address)
        if not key:
            raise DeliveryFailed(
                f"no robot key for site {out.address} (ELDERCARE_WECOM_ROBOT_KEYS)"
            )
        url = f"{self.base_url.rstrip('/')}/cgi-bin/webhook/send"
        answer = await _post_json(
            self.client, str(httpx2.URL(url, params={"key": key})), self.body(out)
        )
        code, message = _errcode(answer)
        if code != 0:
            raise DeliveryFailed(f"errcode={code} {message}")
        return "HTTP 200 errcode=0"


@dataclass(slots=True)
class TokenCache:
    """One Official Account access_token, fetched on first use and again ``margin_s`` before
    ``expires_in`` runs out (or when the server rejects it); one fetch at a time."""

    client: httpx2.AsyncClient
    base_url: str
    appid: str
    secret: str
    margin_s: float = 300.0
    clock: Callable[[], float] = time.monotonic
    token: str = ""
    expires_at: float = 0.0
    fetches: int = 0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def get(self, *, stale: str = "") -> str:
        async with self.lock:
            if self.token and self.token != stale and self.clock() < self.expires_at:
                return self.token
            url = f"{self.base_url.rstrip('/')}/cgi-bin/token"
            params = {"grant_type": "client_credential", "appid": self.appid, "secret": self.secret}
            try:
                response = await self.client.get(url, params=params)
            except (httpx2.HTTPError, httpx2.InvalidURL) as exc:
                raise DeliveryFailed(f"access_token: {type(exc).__name__}") from exc
            answer = _answer(response)
            code, message = _errcode(answer)
            token, expires = answer.get("access_token"), answer.get("expires_in")
            if code != 0 or not isinstance(token, str) or not isinstance(expires, int):
                raise DeliveryFailed(f"access_token: errcode={code} {message}")
            self.fetches += 1
            self.token = token
            self.expires_at = self.clock() + max(expires - self.margin_s, expires / 2)
            return token


@dataclass(frozen=True, slots=True)
class WeChatTemplateChannel:
    """``out.address`` is the family member's openid under this Official Account."""

    client: httpx2.AsyncClient
    tokens: TokenCache
    template_id: str
    data_template: str  # JSON string.Template for "data"
    link_template: str = ""  # the message's "url" ($notification_id), "" for none
    value_max: int = 20  # a template "thing" value holds at most 20 characters
    kind: ChannelKind = ChannelKind.WECHAT

    def body(self, out: Outgoing) -> dict[str, Any]:
        data = json.loads(
            fill_json(
                self.data_template,
                out,
                setting="ELDERCARE_WECHAT_OA_TEMPLATE_DATA",
                limit=self.value_max,
            )
        )
        body: dict[str, Any] = {
            "touser": out.address,
            "template_id": self.template_id,
            "data": data,
        }
        if self.link_template:
            body["url"] = fill_json(
                json.dumps(self.link_template), out, setting="ELDERCARE_WECHAT_OA_LINK"
            ).strip('"')
        return body

    async def send(self, out: Outgoing) -> str:
        if not (self.tokens.appid and self.template_id):
            raise DeliveryFailed("WeChat Official Account not configured (ELDERCARE_WECHAT_OA_*)")
        body = self.body(out)
        token = await self.tokens.get()
        code, message, answer = await self._post(token, body)
        if code in TOKEN_REJECTED:  # revoked or expired early: fetch a new one, once
            token = await self.tokens.get(stale=token)
            code, message, answer = await self._post(token, body)
        if code != 0:
            raise DeliveryFailed(f"errcode={code} {message}")
        return f"HTTP 200 msgid={answer.get('msgid')}"

    async def _post(self, token: str, body: dict[str, Any]) -> tuple[int, str, Any]:
        url = f"{self.tokens.base_url.rstrip('/')}/cgi-bin/message/template/send"
        target = str(httpx2.URL(url, params={"access_token": token}))
        answer = await _post_json(self.client, target, body)
        code, message = _errcode(answer)
        return code, message, answer
