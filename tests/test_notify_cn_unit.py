"""Signing against the providers' published worked examples, phone formats, and the pure
voice-ladder decisions."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from alerts.notify.channels import DeliveryFailed, Outgoing, fill_json
from alerts.notify.policy import (
    AwaitRead,
    ChannelKind,
    Retry,
    after_delivery,
    targets_for,
    undelivered_jump,
)
from alerts.notify.signing import (
    aliyun_percent_encode,
    aliyun_signature,
    aliyun_string_to_sign,
    tc3_canonical_request,
    tc3_signature,
)
from alerts.notify.wechat import WeComRobotChannel
from devices.domain import Colour
from devices.phones import e164, mainland_digits
from tests.cn_emulators import aliyun_expected_signature, pct

# Aliyun's SMS worked example (RPC signature, GET): parameters, string to sign, signature.
ALIYUN_SMS_EXAMPLE = {
    "AccessKeyId": "testId",
    "Action": "SendSms",
    "Format": "XML",
    "OutId": "123",
    "PhoneNumbers": "15300000001",
    "RegionId": "cn-hangzhou",
    "SignName": "阿里云短信测试专用",
    "SignatureMethod": "HMAC-SHA1",
    "SignatureNonce": "45e25e9b-0a6f-4070-8c85-2956eda1b466",
    "SignatureVersion": "1.0",
    "TemplateCode": "SMS_71390007",
    "TemplateParam": '{"customer":"test"}',
    "Timestamp": "2017-07-12T02:42:19Z",
    "Version": "2017-05-25",
}
# Aliyun's general RPC example (ECS DescribeRegions, key "testsecret").
ALIYUN_ECS_EXAMPLE = {
    "AccessKeyId": "testid",
    "Action": "DescribeRegions",
    "Format": "XML",
    "SignatureMethod": "HMAC-SHA1",
    "SignatureNonce": "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf",
    "SignatureVersion": "1.0",
    "Timestamp": "2016-02-23T12:46:24Z",
    "Version": "2014-05-26",
}
# Tencent Cloud's TC3-HMAC-SHA256 worked example (CVM DescribeInstances, 1551113065).
TC3_BODY = (
    b'{"Limit": 1, "Filters": [{"Values": ["\\u672a\\u547d\\u540d"], "Name": "instance-name"}]}'
)
NOW = datetime(2026, 12, 3, 8, 0, tzinfo=UTC)


def test_aliyun_signature_matches_the_published_sms_example() -> None:
    to_sign = aliyun_string_to_sign("GET", ALIYUN_SMS_EXAMPLE)
    assert to_sign.startswith("GET&%2F&AccessKeyId%3DtestId%26Action%3DSendSms%26Format%3DXML")
    assert "SignName%3D%25E9%2598%25BF%25E9%2587%258C" in to_sign  # UTF-8, encoded twice
    assert "Timestamp%3D2017-07-12T02%253A42%253A19Z" in to_sign
    assert aliyun_signature("GET", ALIYUN_SMS_EXAMPLE, "testSecret") == (
        "zJDF+Lrzhj/ThnlvIToysFRq6t4="
    )


def test_aliyun_signature_matches_the_published_rpc_example() -> None:
    assert aliyun_signature("GET", ALIYUN_ECS_EXAMPLE, "testsecret") == (
        "OLeaidS1JvxuMvnyHOwuJ+uX5qY="
    )
    # the Signature parameter itself is never signed
    with_sig = {**ALIYUN_ECS_EXAMPLE, "Signature": "anything"}
    assert aliyun_signature("GET", with_sig, "testsecret") == "OLeaidS1JvxuMvnyHOwuJ+uX5qY="
    assert aliyun_signature("POST", ALIYUN_ECS_EXAMPLE, "testsecret") != (
        "OLeaidS1JvxuMvnyHOwuJ+uX5qY="
    )


def test_the_emulators_own_aliyun_check_agrees_with_the_published_examples() -> None:
    assert aliyun_expected_signature("GET", ALIYUN_SMS_EXAMPLE, "testSecret") == (
        "zJDF+Lrzhj/ThnlvIToysFRq6t4="
    )
    assert aliyun_expected_signature("GET", ALIYUN_ECS_EXAMPLE, "testsecret") == (
        "OLeaidS1JvxuMvnyHOwuJ+uX5qY="
    )


@given(st.text())
def test_percent_encoding_agrees_with_an_independent_byte_encoder(value: str) -> None:
    assert aliyun_percent_encode(value) == pct(value)


def test_percent_encoding_rules() -> None:
    assert aliyun_percent_encode("a b*c~d+/") == "a%20b%2Ac~d%2B%2F"


def test_tc3_signature_matches_the_published_example() -> None:
    headers = {"Content-Type": "application/json; charset=utf-8", "Host": "cvm.tencentcloudapi.com"}
    canonical = tc3_canonical_request(
        method="POST", headers=headers, signed=("content-type", "host"), body=TC3_BODY
    )
    assert canonical.endswith(
        "content-type;host\n35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064"
    )
    scope, signature = tc3_signature(
        secret_key="Gu5t9xGARNpq86cd98joQYCN3EXAMPLE",
        service="cvm",
        timestamp=1551113065,
        canonical_request=canonical,
    )
    assert scope == "2019-02-25/cvm/tc3_request"  # the UTC date, not Beijing's 02-26
    assert signature == "72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168"


def test_phone_numbers_for_each_provider() -> None:
    for given_number in ("13800000000", "+8613800000000", "8613800000000", "008613800000000"):
        assert mainland_digits(given_number) == "13800000000"
        assert e164(given_number) == "+8613800000000"
    assert mainland_digits("+85291234567") is None
    assert e164("+85291234567") == "+85291234567"
    assert e164("85291234567") == "+85291234567"


def _out(**payload: object) -> Outgoing:
    return Outgoing(
        7, "13800000000", "【紧急】宋兰：按下了紧急呼叫按钮", "正文", dict(payload), "", 0
    )


def test_templates_fill_json_escaped_and_cut() -> None:
    out = _out(resident_name='宋"兰', kind="sos", local_time="2026-12-03 16:00")
    filled = fill_json('{"n": "$resident", "id": "$notification_id"}', out, setting="X")
    assert json.loads(filled) == {"n": '宋"兰', "id": "7"}
    cut = json.loads(fill_json('{"s": "$subject"}', out, setting="X", limit=6))
    assert cut == {"s": "【紧急】宋…"}
    for bad in ('{"n": "$nobody"}', '{"n": $resident}'):
        try:
            fill_json(bad, out, setting="ELDERCARE_X")
        except DeliveryFailed as exc:
            assert "ELDERCARE_X" in exc.receipt
        else:
            raise AssertionError(f"{bad} should not fill")


LIST = [
    {"kind": "wechat", "address": "o" * 28},
    {"kind": "sms", "address": "13800000000"},
    {"kind": "voice", "address": "13800000000"},
    {"kind": "wecom_robot", "address": "site-a"},
]


def test_voice_is_for_red_only_and_robots_for_sites_only() -> None:
    red = [t["kind"] for t in targets_for(LIST, colour=Colour.RED, site_id=None)]
    assert red == ["wechat", "sms", "voice"]
    yellow = [t["kind"] for t in targets_for(LIST, colour=Colour.YELLOW, site_id=None)]
    assert yellow == ["wechat", "sms"]
    site = targets_for(LIST, colour=Colour.RED, site_id="site-a")
    assert site == [{"kind": ChannelKind.WECOM_ROBOT.value, "address": "site-a"}]


def test_a_delivered_red_text_waits_to_be_read_before_the_call() -> None:
    kinds = ["wechat", "sms", "voice"]
    wait = timedelta(seconds=120)
    assert after_delivery(
        NOW, colour=Colour.RED, kinds=kinds, channel_index=0, voice_after=wait
    ) == AwaitRead(NOW + wait, 2)
    assert (
        after_delivery(NOW, colour=Colour.YELLOW, kinds=kinds, channel_index=0, voice_after=wait)
        is None
    )
    assert (
        after_delivery(NOW, colour=Colour.RED, kinds=kinds, channel_index=2, voice_after=wait)
        is None
    )
    assert (
        after_delivery(NOW, colour=Colour.RED, kinds=["sms"], channel_index=0, voice_after=wait)
        is None
    )
    off = timedelta(0)
    assert (
        after_delivery(NOW, colour=Colour.RED, kinds=kinds, channel_index=0, voice_after=off)
        is None
    )


def test_an_undelivered_red_text_goes_to_voice_after_the_bound() -> None:
    wait = timedelta(seconds=120)

    def jump(colour: Colour, age: timedelta, index: int = 0) -> Retry | None:
        return undelivered_jump(
            NOW,
            colour=colour,
            created_at=NOW - age,
            kinds=["wechat", "sms", "voice"],
            channel_index=index,
            voice_after=wait,
        )

    assert jump(Colour.RED, wait / 2) is None  # still within the bound: retry the text
    assert jump(Colour.RED, wait) == Retry(NOW, 2, 0)
    assert jump(Colour.RED, wait, index=1) == Retry(NOW, 2, 0)
    assert jump(Colour.RED, wait, index=2) is None  # the call itself failing: normal retry
    assert jump(Colour.YELLOW, 2 * wait) is None


@given(st.text(max_size=80), st.text(max_size=200), st.booleans())
def test_a_group_robots_markdown_shows_words_as_written_and_no_markup_from_them(
    subject: str, text: str, red: bool
) -> None:
    """A resident's text ("[确认](http://...)"), a name or a note is shown in a care station's
    group as written: no link, font tag, code, emphasis, heading or quote comes from it."""
    robot = WeComRobotChannel(client=None, keys={})  # type: ignore[arg-type]  # body() only
    colour = "red" if red else "yellow"
    out = Outgoing(1, "site-a", subject, text, {"colour": colour}, "", 0)
    content = robot.body(out)["markdown"]["content"]
    head = f'### <font color="{"warning" if red else "comment"}">'
    assert content.startswith(head)
    words = content[len(head) :].replace("</font>\n", "", 1)
    assert not set(words) & set("[]<>`*")
    assert not any(line.startswith(("#", ">")) for line in words.split("\n"))


def test_a_link_in_a_residents_text_reaches_the_group_as_plain_words() -> None:
    robot = WeComRobotChannel(client=None, keys={})  # type: ignore[arg-type]
    out = Outgoing(1, "site-a", "更新", "回复：“[确认](http://x.cn)”\n# 标题", {}, "", 0)
    content = robot.body(out)["markdown"]["content"]
    assert "\uff3b确认\uff3d(http://x.cn)" in content  # fullwidth brackets: no link
    assert "\n\uff03 标题" in content
