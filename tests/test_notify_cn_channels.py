"""Each Chinese channel against its local emulator (tests/cn_emulators.py): the request is
checked as the provider documents it, signatures recomputed with the test secret; the
provider's error answers become failed deliveries with a receipt that names the error and
never carries a secret."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import parse_qsl

import httpx2

from alerts.notify.channels import Channel, DeliveryFailed, Outgoing
from alerts.notify.policy import ChannelKind
from alerts.notify.wiring import open_channels
from devices.settings import Settings
from tests.cn_emulators import (
    ALIYUN_ID,
    ALIYUN_SECRET,
    OA_APPID,
    OA_SECRET,
    OPENID,
    ROBOT_KEY,
    TENCENT_ID,
    TENCENT_KEY,
    aliyun,
    official_account,
    tencent_sms,
    wecom_robot,
)

T = TypeVar("T")
SECRETS = (ALIYUN_SECRET, TENCENT_KEY, OA_SECRET, ROBOT_KEY, "ACCESS_TOKEN")


def out(address: str, *, colour: str = "red", delivery_id: int = 41) -> Outgoing:
    payload = {
        "resident_name": "宋兰",
        "kind": "sos",
        "colour": colour,
        "local_time": "2026-12-03 16:05",
    }
    return Outgoing(
        delivery_id,
        address,
        "【紧急】宋兰：按下了紧急呼叫按钮",
        "宋兰按下了紧急呼叫按钮（2026-12-03 16:05）。",
        payload,
        "",
        0,
    )


def settings(**kw: Any) -> Settings:
    base: dict[str, Any] = {
        "aliyun_access_key_id": ALIYUN_ID,
        "aliyun_access_key_secret": ALIYUN_SECRET,
        "aliyun_sms_sign_name": "颐养护理站",
        "aliyun_sms_template_code": "SMS_71390007",
        "aliyun_voice_tts_code": "TTS_158490013",
        "tencent_secret_id": TENCENT_ID,
        "tencent_secret_key": TENCENT_KEY,
        "tencent_sms_sdk_app_id": "1400006666",
        "tencent_sms_sign_name": "颐养护理站",
        "tencent_sms_template_id": "449739",
        "wechat_oa_appid": OA_APPID,
        "wechat_oa_secret": OA_SECRET,
        "wechat_oa_template_id": "tpl-alert-1",
        "wechat_oa_link": "https://care.example.cn/family?n=$notification_id",
        "wecom_robot_keys": json.dumps({"site-a": ROBOT_KEY, "site-b": "revoked-key"}),
    }
    return Settings(**{**base, **kw})


def with_channel(s: Settings, kind: ChannelKind, go: Callable[[Channel], Awaitable[T]]) -> T:
    async def main() -> T:
        async with open_channels(s) as channels:
            return await go(channels[kind])

    return asyncio.run(main())


def send(s: Settings, kind: ChannelKind, *outs: Outgoing) -> list[str]:
    """Each send's receipt, or the failure's receipt prefixed with FAILED."""

    async def go(channel: Channel) -> list[str]:
        receipts = []
        for o in outs:
            try:
                receipts.append(await channel.send(o))
            except DeliveryFailed as exc:
                receipts.append("FAILED " + exc.receipt)
        return receipts

    receipts = with_channel(s, kind, go)
    assert not [r for r in receipts for secret in SECRETS if secret in r]
    return receipts


def test_wecom_robot_posts_markdown_to_the_sites_key_and_reads_errcode() -> None:
    with wecom_robot() as emu:
        s = settings(wecom_robot_api_base=emu.base)
        receipts = send(s, ChannelKind.WECOM_ROBOT, out("site-a"), out("site-b"), out("site-c"))
    assert receipts[0] == "HTTP 200 errcode=0"
    assert receipts[1].startswith("FAILED errcode=93000 invalid webhook url")  # a revoked key
    assert receipts[2].startswith("FAILED no robot key for site site-c")
    [good, revoked] = emu.requests
    assert good.problems == []
    assert revoked.problems == ["key"]
    assert (good.method, good.path, good.query) == (
        "POST",
        "/cgi-bin/webhook/send",
        {"key": ROBOT_KEY},
    )
    body = good.json()
    assert body["msgtype"] == "markdown"
    assert body["markdown"]["content"].startswith('### <font color="warning">【紧急】宋兰')


def test_wecom_robot_text_mentions_everyone_for_red_and_rate_limits_fail() -> None:
    with wecom_robot() as emu:
        s = settings(wecom_robot_api_base=emu.base, wecom_robot_msgtype="text")
        emu.script.append((200, {"errcode": 45009, "errmsg": "api freq out of limit"}))
        receipts = send(s, ChannelKind.WECOM_ROBOT, out("site-a"), out("site-a", colour="yellow"))
    assert receipts[0] == "FAILED errcode=45009 api freq out of limit"
    assert receipts[1] == "HTTP 200 errcode=0"
    assert emu.problems == []
    first, second = (r.json()["text"] for r in emu.requests)
    assert first["mentioned_list"] == ["@all"]
    assert "mentioned_list" not in second
    assert (
        first["content"]
        == "【紧急】宋兰：按下了紧急呼叫按钮\n宋兰按下了紧急呼叫按钮（2026-12-03 16:05）。"
    )


def test_wechat_template_message_fetches_a_token_once_and_sends_the_documented_body() -> None:
    with official_account() as emu:
        s = settings(wechat_oa_api_base=emu.base)
        receipts = send(s, ChannelKind.WECHAT, out(OPENID), out(OPENID, delivery_id=42))
    assert [r.split("=")[0] for r in receipts] == ["HTTP 200 msgid"] * 2
    assert emu.problems == []
    assert emu.issued == 1  # cached: one token for both messages
    token, first, _ = emu.requests
    assert (token.method, token.path) == ("GET", "/cgi-bin/token")
    assert token.query == {
        "grant_type": "client_credential",
        "appid": OA_APPID,
        "secret": OA_SECRET,
    }
    assert (first.method, first.path, first.query) == (
        "POST",
        "/cgi-bin/message/template/send",
        {"access_token": "ACCESS_TOKEN_1"},
    )
    assert first.json() == {
        "touser": OPENID,
        "template_id": "tpl-alert-1",
        "url": "https://care.example.cn/family?n=41",
        "data": {
            "thing1": {"value": "宋兰"},
            "thing2": {"value": "sos"},
            "time3": {"value": "2026-12-03 16:05"},
        },
    }


def test_wechat_refreshes_an_expired_token_once_then_gives_up() -> None:
    with official_account() as emu:
        s = settings(wechat_oa_api_base=emu.base)

        async def go(channel: Channel) -> list[str]:
            results = [await channel.send(out(OPENID))]
            emu.expire_all()  # 42001 on the next send: fetch again, send again
            results.append(await channel.send(out(OPENID)))
            emu.openids.clear()  # the member unfollowed: 40003 is not a token problem
            try:
                await channel.send(out(OPENID))
            except DeliveryFailed as exc:
                results.append("FAILED " + exc.receipt)
            return results

        results = with_channel(s, ChannelKind.WECHAT, go)
    assert results[0].startswith("HTTP 200 msgid=")
    assert results[1].startswith("HTTP 200 msgid=")
    assert results[2] == "FAILED errcode=40003 invalid openid"
    assert emu.issued == 2
    paths = [(r.path, r.query.get("access_token")) for r in emu.requests]
    assert paths == [
        ("/cgi-bin/token", None),
        ("/cgi-bin/message/template/send", "ACCESS_TOKEN_1"),
        ("/cgi-bin/message/template/send", "ACCESS_TOKEN_1"),  # answered 42001
        ("/cgi-bin/token", None),
        ("/cgi-bin/message/template/send", "ACCESS_TOKEN_2"),
        ("/cgi-bin/message/template/send", "ACCESS_TOKEN_2"),
    ]


def test_wechat_bad_secret_fails_without_showing_it() -> None:
    with official_account() as emu:
        s = settings(wechat_oa_api_base=emu.base, wechat_oa_secret="wrong-secret")
        [receipt] = send(s, ChannelKind.WECHAT, out(OPENID))
    assert receipt == "FAILED access_token: errcode=40125 invalid appsecret"
    assert "wrong-secret" not in receipt


def test_aliyun_sms_is_signed_and_posted_as_documented() -> None:
    with aliyun() as emu:
        s = settings(sms_provider="aliyun", aliyun_sms_endpoint=emu.base + "/")
        receipts = send(s, ChannelKind.SMS, out("+8613800000000"), out("13900000000"))
    assert receipts == ["HTTP 200 BizId=9006197469364984^1", "HTTP 200 BizId=9006197469364984^2"]
    assert emu.problems == []
    sent = dict(parse_qsl(emu.requests[0].body.decode()))
    assert sent["Action"] == "SendSms"
    assert sent["PhoneNumbers"] == "+8613800000000"
    assert sent["SignName"] == "颐养护理站"
    assert sent["TemplateCode"] == "SMS_71390007"
    assert json.loads(sent["TemplateParam"]) == {
        "name": "宋兰",
        "event": "sos",
        "time": "2026-12-03 16:05",
    }
    assert sent["OutId"] == "41"


def test_aliyun_errors_fail_the_delivery_with_the_code() -> None:
    with aliyun() as emu:
        s = settings(sms_provider="aliyun", aliyun_sms_endpoint=emu.base + "/")
        emu.script.append(
            (
                200,
                {
                    "Code": "isv.BUSINESS_LIMIT_CONTROL",
                    "Message": "触发小时级流控",
                    "RequestId": "R",
                },
            )
        )
        limited = send(s, ChannelKind.SMS, out("13800000000"))
        wrong = settings(
            sms_provider="aliyun",
            aliyun_sms_endpoint=emu.base + "/",
            aliyun_access_key_secret="not-the-secret",
        )
        unsigned = send(wrong, ChannelKind.SMS, out("13800000000"))
    assert limited == ["FAILED HTTP 200 Code=isv.BUSINESS_LIMIT_CONTROL 触发小时级流控"]
    assert unsigned[0].startswith("FAILED HTTP 400 Code=SignatureDoesNotMatch")
    assert emu.requests[-1].problems == ["signature"]  # the emulator really checks


def test_aliyun_voice_call_is_signed_and_reaches_a_mainland_number() -> None:
    with aliyun() as emu:
        s = settings(
            aliyun_voice_endpoint=emu.base + "/", aliyun_voice_called_show_number="057112345678"
        )
        receipts = send(s, ChannelKind.VOICE, out("+8613800000000"), out("+85291234567"))
    assert receipts[0] == "HTTP 200 CallId=116012354148^10281"
    assert receipts[1] == "FAILED voice calls reach mainland mobile numbers only"
    assert emu.problems == []
    assert len(emu.requests) == 1
    sent = dict(parse_qsl(emu.requests[0].body.decode()))
    assert (sent["Action"], sent["CalledNumber"], sent["TtsCode"]) == (
        "SingleCallByTts",
        "13800000000",
        "TTS_158490013",
    )
    assert sent["CalledShowNumber"] == "057112345678"
    assert sent["PlayTimes"] == "2"
    assert json.loads(sent["TtsParam"]) == {"name": "宋兰", "event": "sos"}


def test_tencent_sms_is_tc3_signed_with_the_documented_headers_and_body() -> None:
    with tencent_sms() as emu:
        s = settings(sms_provider="tencent", tencent_sms_endpoint=emu.base + "/")
        receipts = send(s, ChannelKind.SMS, out("13800000000"))
    assert receipts == ["HTTP 200 SerialNo=5000:104571066915705365784949960"]
    assert emu.problems == []
    [req] = emu.requests
    assert req.headers["x-tc-action"] == "SendSms"
    assert req.headers["x-tc-version"] == "2021-01-11"
    assert req.headers["authorization"].startswith(f"TC3-HMAC-SHA256 Credential={TENCENT_ID}/")
    assert "SignedHeaders=content-type;host;x-tc-action," in req.headers["authorization"]
    assert req.json() == {
        "PhoneNumberSet": ["+8613800000000"],
        "SmsSdkAppId": "1400006666",
        "SignName": "颐养护理站",
        "TemplateId": "449739",
        "TemplateParamSet": ["宋兰", "sos", "2026-12-03 16:05"],
        "SessionContext": "41",
    }


def test_tencent_errors_and_per_number_failures_fail_the_delivery() -> None:
    with tencent_sms() as emu:
        s = settings(sms_provider="tencent", tencent_sms_endpoint=emu.base + "/")
        status = {
            "SerialNo": "",
            "PhoneNumber": "+8613800000000",
            "Fee": 0,
            "SessionContext": "",
            "Code": "LimitExceeded.PhoneNumberDailyLimit",
            "Message": "单个手机号日下发短信条数超过设定的上限",
            "IsoCode": "CN",
        }
        emu.script.append((200, {"Response": {"SendStatusSet": [status], "RequestId": "r"}}))
        daily = send(s, ChannelKind.SMS, out("13800000000"))
        wrong = settings(
            sms_provider="tencent", tencent_sms_endpoint=emu.base + "/", tencent_secret_key="nope"
        )
        unsigned = send(wrong, ChannelKind.SMS, out("13800000000"))
    assert daily == [
        "FAILED HTTP 200 LimitExceeded.PhoneNumberDailyLimit 单个手机号日下发短信条数超过设定的上限"
    ]
    assert unsigned[0].startswith("FAILED HTTP 200 AuthFailure.SignatureFailure")
    assert emu.requests[-1].problems == ["AuthFailure.SignatureFailure"]


def test_an_unconfigured_provider_fails_naming_its_settings() -> None:
    bare = Settings(sms_provider="tencent")
    for kind in (ChannelKind.SMS, ChannelKind.WECHAT, ChannelKind.VOICE, ChannelKind.WECOM_ROBOT):
        [receipt] = send(bare, kind, out("13800000000"))
        assert receipt.startswith("FAILED ")
        assert "ELDERCARE_" in receipt, receipt


def test_a_provider_that_is_down_is_a_failed_delivery() -> None:
    with tencent_sms() as emu:
        base = emu.base
    s = settings(sms_provider="tencent", tencent_sms_endpoint=base + "/")
    assert send(s, ChannelKind.SMS, out("13800000000")) == ["FAILED ConnectError"]
    assert isinstance(httpx2.ConnectError("x"), httpx2.HTTPError)
