"""Chinese SMS and voice providers, signed per their published algorithms (``signing.py``).

Carriers only send pre-approved templates under a registered signature (签名/模板审核), so
each provider gets a template id and a JSON ``string.Template`` that fills the template's
variables from the notification (``$resident $event $time $subject $text $colour``).

- Aliyun SMS ``SendSms`` (Dysmsapi 2017-05-25) and Aliyun voice ``SingleCallByTts``
  (Dyvmsapi 2017-05-25): RPC style, ``POST /`` with a form body of common + action
  parameters and ``Signature``; success is ``"Code": "OK"`` with ``BizId`` / ``CallId``.
- Tencent Cloud SMS ``SendSms`` (2021-01-11): ``POST /`` JSON body, TC3-HMAC-SHA256
  ``Authorization``; success is a ``SendStatusSet`` entry with ``"Code": "Ok"``.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx2

from alerts.notify.channels import DeliveryFailed, Outgoing, fill_json
from alerts.notify.policy import ChannelKind
from alerts.notify.signing import aliyun_signature, aliyun_timestamp, tc3_authorization
from devices.phones import e164, mainland_digits

TENCENT_SIGNED = ("content-type", "host", "x-tc-action")
JSON_TYPE = "application/json; charset=utf-8"
FORM_TYPE = "application/x-www-form-urlencoded"


def _json_answer(response: httpx2.Response) -> dict[str, Any]:
    try:
        answer = response.json()
    except ValueError as exc:
        raise DeliveryFailed(
            f"HTTP {response.status_code}, not JSON: {response.text[:200]}"
        ) from exc
    if not isinstance(answer, dict):
        raise DeliveryFailed(f"HTTP {response.status_code}, unexpected: {response.text[:200]}")
    return answer


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class AliyunRpc:
    """An Aliyun RPC endpoint and AccessKey; ``call`` signs, posts and checks ``Code``."""

    client: httpx2.AsyncClient
    endpoint: str
    access_key_id: str
    access_key_secret: str
    region_id: str = "cn-hangzhou"
    clock: Callable[[], datetime] = _now
    nonce: Callable[[], str] = field(default=lambda: uuid.uuid4().hex)

    async def call(self, action: str, version: str, params: dict[str, str]) -> dict[str, Any]:
        if not (self.access_key_id and self.access_key_secret):
            raise DeliveryFailed("no Aliyun AccessKey (ELDERCARE_ALIYUN_ACCESS_KEY_*)")
        signed = {
            "AccessKeyId": self.access_key_id,
            "Action": action,
            "Format": "JSON",
            "RegionId": self.region_id,
            "SignatureMethod": "HMAC-SHA1",
            "SignatureNonce": self.nonce(),
            "SignatureVersion": "1.0",
            "Timestamp": aliyun_timestamp(self.clock()),
            "Version": version,
            **params,
        }
        signed["Signature"] = aliyun_signature("POST", signed, self.access_key_secret)
        try:
            response = await self.client.post(
                self.endpoint,
                content=urlencode(signed).encode(),
                headers={"Content-Type": FORM_TYPE},
            )
        except (httpx2.HTTPError, httpx2.InvalidURL) as exc:
            raise DeliveryFailed(type(exc).__name__) from exc
        answer = _json_answer(response)
        if response.status_code != 200 or answer.get("Code") != "OK":
            code, message = answer.get("Code"), str(answer.get("Message", ""))[:200]
            raise DeliveryFailed(f"HTTP {response.status_code} Code={code} {message}")
        return answer


@dataclass(frozen=True, slots=True)
class AliyunSmsChannel:
    rpc: AliyunRpc
    sign_name: str
    template_code: str
    template_param: str  # JSON string.Template for TemplateParam
    kind: ChannelKind = ChannelKind.SMS

    def params(self, out: Outgoing) -> dict[str, str]:
        return {
            "PhoneNumbers": out.address,
            "SignName": self.sign_name,
            "TemplateCode": self.template_code,
            "TemplateParam": fill_json(
                self.template_param, out, setting="ELDERCARE_ALIYUN_SMS_TEMPLATE_PARAM", limit=35
            ),
            "OutId": str(out.delivery_id),
        }

    async def send(self, out: Outgoing) -> str:
        if not (self.sign_name and self.template_code):
            raise DeliveryFailed("Aliyun SMS not configured (ELDERCARE_ALIYUN_SMS_*)")
        answer = await self.rpc.call("SendSms", "2017-05-25", self.params(out))
        return f"HTTP 200 BizId={answer.get('BizId')}"


@dataclass(frozen=True, slots=True)
class AliyunVoiceChannel:
    """A text-to-speech call (``SingleCallByTts``) to a mainland number."""

    rpc: AliyunRpc
    tts_code: str
    tts_param: str  # JSON string.Template for TtsParam
    called_show_number: str = ""  # the caller id bought with the voice service; "" = pool
    play_times: int = 2
    kind: ChannelKind = ChannelKind.VOICE

    def params(self, out: Outgoing) -> dict[str, str]:
        number = mainland_digits(out.address)
        if number is None:
            raise DeliveryFailed("voice calls reach mainland mobile numbers only")
        params = {
            "CalledNumber": number,
            "TtsCode": self.tts_code,
            "TtsParam": fill_json(
                self.tts_param, out, setting="ELDERCARE_ALIYUN_VOICE_TTS_PARAM", limit=20
            ),
            "PlayTimes": str(self.play_times),
            "OutId": str(out.delivery_id),
        }
        if self.called_show_number:
            params["CalledShowNumber"] = self.called_show_number
        return params

    async def send(self, out: Outgoing) -> str:
        if not self.tts_code:
            raise DeliveryFailed("voice calls not configured (ELDERCARE_ALIYUN_VOICE_TTS_CODE)")
        answer = await self.rpc.call("SingleCallByTts", "2017-05-25", self.params(out))
        return f"HTTP 200 CallId={answer.get('CallId')}"


@dataclass(frozen=True, slots=True)
class TencentSmsChannel:
    client: httpx2.AsyncClient
    endpoint: str
    secret_id: str
    secret_key: str
    region: str
    sdk_app_id: str
    sign_name: str
    template_id: str
    template_params: str  # JSON string.Template giving an array of strings
    clock: Callable[[], datetime] = _now
    kind: ChannelKind = ChannelKind.SMS

    def body(self, out: Outgoing) -> bytes:
        params = json.loads(
            fill_json(self.template_params, out, setting="ELDERCARE_TENCENT_SMS_TEMPLATE_PARAMS")
        )
        if not (isinstance(params, list) and all(isinstance(p, str) for p in params)):
            raise DeliveryFailed(
                "ELDERCARE_TENCENT_SMS_TEMPLATE_PARAMS must give an array of strings"
            )
        body = {
            "PhoneNumberSet": [e164(out.address)],
            "SmsSdkAppId": self.sdk_app_id,
            "SignName": self.sign_name,
            "TemplateId": self.template_id,
            "TemplateParamSet": params,
            "SessionContext": str(out.delivery_id),
        }
        return json.dumps(body, ensure_ascii=False).encode()

    def headers(self, body: bytes, timestamp: int) -> dict[str, str]:
        headers = {
            "Content-Type": JSON_TYPE,
            "Host": urlsplit(self.endpoint).netloc,
            "X-TC-Action": "SendSms",
            "X-TC-Version": "2021-01-11",
            "X-TC-Timestamp": str(timestamp),
            "X-TC-Region": self.region,
        }
        headers["Authorization"] = tc3_authorization(
            secret_id=self.secret_id,
            secret_key=self.secret_key,
            service="sms",
            timestamp=timestamp,
            headers=headers,
            signed=TENCENT_SIGNED,
            body=body,
        )
        return headers

    async def send(self, out: Outgoing) -> str:
        if not (self.secret_id and self.secret_key and self.sdk_app_id and self.template_id):
            raise DeliveryFailed("Tencent Cloud SMS not configured (ELDERCARE_TENCENT_*)")
        body = self.body(out)
        headers = self.headers(body, int(self.clock().timestamp()))
        try:
            response = await self.client.post(self.endpoint, content=body, headers=headers)
        except (httpx2.HTTPError, httpx2.InvalidURL) as exc:
            raise DeliveryFailed(type(exc).__name__) from exc
        answer = _json_answer(response).get("Response")
        if not isinstance(answer, dict):
            raise DeliveryFailed(f"HTTP {response.status_code}, no Response: {response.text[:200]}")
        error = answer.get("Error")
        if isinstance(error, dict):
            raise DeliveryFailed(
                f"HTTP {response.status_code} {error.get('Code')} {str(error.get('Message'))[:200]}"
            )
        statuses = answer.get("SendStatusSet")
        status = statuses[0] if isinstance(statuses, list) and statuses else None
        if not isinstance(status, dict) or status.get("Code") != "Ok":
            detail = status if isinstance(status, dict) else {}
            raise DeliveryFailed(
                f"HTTP {response.status_code} {detail.get('Code')} {str(detail.get('Message'))[:200]}"
            )
        return f"HTTP {response.status_code} SerialNo={status.get('SerialNo')}"
