"""Local emulators of the Chinese notification providers, on 127.0.0.1 free ports.

Each checks a request as the provider documents it (method, path, headers, body, and the
signature recomputed here with the known test secret, by code written apart from
``alerts/notify/signing.py``) and answers as the provider does, success or error. Every
request is kept with what was wrong with it (``problems``), so a test can insist on none.

- WeChat Work robot: https://developer.work.weixin.qq.com/document/path/91770
- WeChat Official Account token and template message:
  https://developers.weixin.qq.com/doc/offiaccount/Basic_Information/Get_access_token.html
  https://developers.weixin.qq.com/doc/offiaccount/Message_Management/Template_Message_Interface.html
- Aliyun RPC signature (SendSms, SingleCallByTts): https://help.aliyun.com/document_detail/315526.html
- Tencent Cloud SMS SendSms 2021-01-11 and TC3-HMAC-SHA256:
  https://cloud.tencent.com/document/api/382/55981, https://cloud.tencent.com/document/api/382/52071
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

ALIYUN_ID, ALIYUN_SECRET = "testId", "testSecret"
TENCENT_ID, TENCENT_KEY = "AKIDtestEXAMPLE", "tencentTestKeyEXAMPLE"
OA_APPID, OA_SECRET = "wx0123456789abcdef", "oa-test-secret"
ROBOT_KEY = "693a91f6-7xxx-4bc4-97a0-0ec2sifa5aaa"
OPENID = "oXyz_0123456789abcdefghijk"


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # names lower-cased
    body: bytes
    problems: list[str] = field(default_factory=list)

    def json(self) -> Any:
        return json.loads(self.body)


Handler = Callable[[Request], tuple[int, dict[str, Any]]]


@dataclass
class Emulator:
    port: int = 0
    requests: list[Request] = field(default_factory=list)
    # Scripted answers, used (and removed) before the normal checks: (status, body).
    script: list[tuple[int, dict[str, Any]]] = field(default_factory=list)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def problems(self) -> list[str]:
        return [p for r in self.requests for p in r.problems]


@contextmanager
def serve(emulator: Emulator, handle: Handler) -> Iterator[None]:
    lock = threading.Lock()

    class H(BaseHTTPRequestHandler):
        def _any(self) -> None:
            parts = urlsplit(self.path)
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            req = Request(
                self.command,
                parts.path,
                dict(parse_qsl(parts.query, keep_blank_values=True)),
                {k.lower(): v for k, v in self.headers.items()},
                body,
            )
            with lock:
                emulator.requests.append(req)
                scripted = emulator.script.pop(0) if emulator.script else None
                status, answer = handle(req)
                if scripted is not None and status == 200 and not req.problems:
                    status, answer = scripted
            out = json.dumps(answer, ensure_ascii=False).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        do_GET = do_POST = _any

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), H)
    emulator.port = int(server.server_address[1])
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _expect(req: Request, ok: bool, problem: str) -> bool:
    if not ok:
        req.problems.append(problem)
    return ok


# --- WeChat Work group robot -------------------------------------------------------------


@contextmanager
def wecom_robot() -> Iterator[Emulator]:
    emu = Emulator()

    def handle(req: Request) -> tuple[int, dict[str, Any]]:
        if not _expect(req, (req.method, req.path) == ("POST", "/cgi-bin/webhook/send"), "path"):
            return 404, {"errcode": 404, "errmsg": "not found"}
        if req.query.get("key") != ROBOT_KEY:
            req.problems.append("key")
            return 200, {"errcode": 93000, "errmsg": "invalid webhook url, hint: [1]"}
        _expect(req, req.headers.get("content-type", "").startswith("application/json"), "type")
        try:
            body = req.json()
        except ValueError:
            req.problems.append("json")
            return 200, {"errcode": 40033, "errmsg": "invalid charset"}
        msgtype = body.get("msgtype")
        part = body.get(msgtype) if msgtype in ("text", "markdown") else None
        if not isinstance(part, dict) or not isinstance(part.get("content"), str):
            req.problems.append("msgtype")
            return 200, {"errcode": 40008, "errmsg": "invalid message type"}
        limit = 2048 if msgtype == "text" else 4096
        if not part["content"] or len(part["content"].encode()) > limit:
            req.problems.append("content length")
            return 200, {"errcode": 40058, "errmsg": "content exceed max length"}
        mentions = part.get("mentioned_list", [])
        _expect(req, isinstance(mentions, list) and all(isinstance(m, str) for m in mentions), "@")
        _expect(req, set(body) == {"msgtype", msgtype}, f"unexpected fields {sorted(body)}")
        return 200, {"errcode": 0, "errmsg": "ok"}

    with serve(emu, handle):
        yield emu


# --- WeChat Official Account -------------------------------------------------------------


@dataclass
class OfficialAccount(Emulator):
    tokens: dict[str, float] = field(default_factory=dict)  # token -> expires (monotonic)
    issued: int = 0
    openids: set[str] = field(default_factory=lambda: {OPENID})
    template_id: str = "tpl-alert-1"

    def expire_all(self) -> None:
        """As if every token outlived ``expires_in`` (the server says 42001)."""
        for token in self.tokens:
            self.tokens[token] = 0.0


@contextmanager
def official_account() -> Iterator[OfficialAccount]:
    emu = OfficialAccount()
    counter = itertools.count(1)

    def token(req: Request) -> tuple[int, dict[str, Any]]:
        q = req.query
        _expect(req, q.get("grant_type") == "client_credential", "grant_type")
        if q.get("appid") != OA_APPID:
            return 200, {"errcode": 40013, "errmsg": "invalid appid"}
        if q.get("secret") != OA_SECRET:
            req.problems.append("secret")
            return 200, {"errcode": 40125, "errmsg": "invalid appsecret"}
        value = f"ACCESS_TOKEN_{next(counter)}"
        emu.tokens[value] = time.monotonic() + 7200
        emu.issued += 1
        return 200, {"access_token": value, "expires_in": 7200}

    def send(req: Request) -> tuple[int, dict[str, Any]]:
        given = req.query.get("access_token", "")
        if given not in emu.tokens:
            return 200, {"errcode": 40001, "errmsg": "invalid credential, access_token is invalid"}
        if emu.tokens[given] < time.monotonic():
            return 200, {"errcode": 42001, "errmsg": "access_token expired"}
        body = req.json()
        if body.get("touser") not in emu.openids:
            return 200, {"errcode": 40003, "errmsg": "invalid openid"}
        if body.get("template_id") != emu.template_id:
            return 200, {"errcode": 40037, "errmsg": "invalid template_id"}
        data = body.get("data")
        good = (
            isinstance(data, dict)
            and data
            and all(
                isinstance(v, dict)
                and set(v) <= {"value", "color"}
                and isinstance(v.get("value"), str)
                and 0 < len(v["value"]) <= 20
                for v in data.values()
            )
        )
        if not _expect(req, bool(good), f"data {data!r}"):
            return 200, {"errcode": 47003, "errmsg": "argument invalid! data.thing1.value invalid"}
        _expect(
            req,
            set(body) <= {"touser", "template_id", "url", "miniprogram", "data", "client_msg_id"},
            f"fields {sorted(body)}",
        )
        return 200, {"errcode": 0, "errmsg": "ok", "msgid": 200228332 + len(emu.requests)}

    def handle(req: Request) -> tuple[int, dict[str, Any]]:
        if (req.method, req.path) == ("GET", "/cgi-bin/token"):
            return token(req)
        if (req.method, req.path) == ("POST", "/cgi-bin/message/template/send"):
            return send(req)
        req.problems.append(f"{req.method} {req.path}")
        return 404, {"errcode": 404, "errmsg": "not found"}

    with serve(emu, handle):
        yield emu


# --- Aliyun RPC (SendSms, SingleCallByTts) -----------------------------------------------

UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~")


def pct(value: str) -> str:
    """RFC 3986 percent-encoding, byte by byte (written apart from the code under test)."""
    return "".join(chr(b) if b in UNRESERVED else f"%{b:02X}" for b in value.encode())


def aliyun_expected_signature(method: str, params: dict[str, str], secret: str) -> str:
    pairs = sorted((k, v) for k, v in params.items() if k != "Signature")
    canonical = "&".join(pct(k) + "=" + pct(v) for k, v in pairs)
    to_sign = method + "&" + pct("/") + "&" + pct(canonical)
    digest = hmac.new(f"{secret}&".encode(), to_sign.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


ALIYUN_ACTIONS = {
    "SendSms": {"PhoneNumbers", "SignName", "TemplateCode"},
    "SingleCallByTts": {"CalledNumber", "TtsCode"},
}
STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


@contextmanager
def aliyun() -> Iterator[Emulator]:
    emu = Emulator()
    nonces: set[str] = set()

    def handle(req: Request) -> tuple[int, dict[str, Any]]:
        rid = f"REQ-{len(emu.requests)}"
        if not _expect(req, (req.method, req.path) == ("POST", "/"), "method/path"):
            return 404, {"Code": "InvalidAction.NotFound", "Message": "", "RequestId": rid}
        _expect(
            req,
            req.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"),
            "content-type",
        )
        p = dict(parse_qsl(req.body.decode(), keep_blank_values=True, strict_parsing=True))
        for k, v in {
            "Format": "JSON",
            "Version": "2017-05-25",
            "SignatureMethod": "HMAC-SHA1",
            "SignatureVersion": "1.0",
            "RegionId": "cn-hangzhou",
        }.items():
            _expect(req, p.get(k) == v, f"{k}={p.get(k)!r}")
        stamp = p.get("Timestamp", "")
        if not _expect(req, bool(STAMP.match(stamp)), "Timestamp format"):
            return 400, {"Code": "InvalidTimeStamp.Format", "Message": stamp, "RequestId": rid}
        skew = abs(
            datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()
            - time.time()
        )
        if not _expect(req, skew < 900, "Timestamp expired"):
            return 400, {"Code": "InvalidTimeStamp.Expired", "Message": stamp, "RequestId": rid}
        nonce = p.get("SignatureNonce", "")
        if not _expect(req, bool(nonce) and nonce not in nonces, "nonce reused"):
            return 400, {"Code": "SignatureNonceUsed", "Message": nonce, "RequestId": rid}
        nonces.add(nonce)
        if p.get("AccessKeyId") != ALIYUN_ID:
            req.problems.append("AccessKeyId")
            return 404, {"Code": "InvalidAccessKeyId.NotFound", "Message": "", "RequestId": rid}
        if p.get("Signature") != aliyun_expected_signature("POST", p, ALIYUN_SECRET):
            req.problems.append("signature")
            return 400, {
                "Code": "SignatureDoesNotMatch",
                "Message": "Specified signature is not matched with our calculation.",
                "RequestId": rid,
            }
        action = p.get("Action", "")
        missing = ALIYUN_ACTIONS.get(action, {"Action"}) - set(p)
        if not _expect(req, not missing, f"missing {sorted(missing)}"):
            return 400, {"Code": "MissingParameter", "Message": str(missing), "RequestId": rid}
        param = p.get("TemplateParam" if action == "SendSms" else "TtsParam", "{}")
        values = json.loads(param)
        _expect(
            req,
            isinstance(values, dict) and all(isinstance(v, str) for v in values.values()),
            "template param",
        )
        if action == "SendSms":
            return 200, {
                "Code": "OK",
                "Message": "OK",
                "BizId": f"9006197469364984^{len(nonces)}",
                "RequestId": rid,
            }
        _expect(req, bool(re.fullmatch(r"1\d{10}", p["CalledNumber"])), "CalledNumber")
        return 200, {
            "Code": "OK",
            "Message": "OK",
            "CallId": f"116012354148^1028{len(nonces)}",
            "RequestId": rid,
        }

    with serve(emu, handle):
        yield emu


# --- Tencent Cloud SMS -------------------------------------------------------------------

AUTH = re.compile(
    r"^TC3-HMAC-SHA256 Credential=(?P<id>[^/]+)/(?P<date>\d{4}-\d\d-\d\d)/(?P<service>[a-z]+)"
    r"/tc3_request, SignedHeaders=(?P<signed>[a-z0-9;-]+), Signature=(?P<sig>[0-9a-f]{64})$"
)


def tc3_expected(
    headers: dict[str, str], signed: list[str], body: bytes, date: str, timestamp: str, secret: str
) -> str:
    canonical_headers = "".join(h + ":" + headers[h].strip().lower() + "\n" for h in signed)
    request = (
        "POST\n/\n\n"
        + canonical_headers
        + "\n"
        + ";".join(signed)
        + "\n"
        + hashlib.sha256(body).hexdigest()
    )
    to_sign = (
        "TC3-HMAC-SHA256\n"
        + timestamp
        + "\n"
        + date
        + "/sms/tc3_request\n"
        + hashlib.sha256(request.encode()).hexdigest()
    )
    key = ("TC3" + secret).encode()
    for part in (date, "sms", "tc3_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


@contextmanager
def tencent_sms() -> Iterator[Emulator]:
    emu = Emulator()

    def error(req: Request, code: str, message: str) -> tuple[int, dict[str, Any]]:
        req.problems.append(code)
        return 200, {
            "Response": {
                "Error": {"Code": code, "Message": message},
                "RequestId": f"req-{len(emu.requests)}",
            }
        }

    def handle(req: Request) -> tuple[int, dict[str, Any]]:
        h = req.headers
        if (req.method, req.path) != ("POST", "/"):
            return error(req, "UnsupportedOperation", f"{req.method} {req.path}")
        if h.get("content-type") != "application/json; charset=utf-8":
            return error(req, "InvalidParameter", "Content-Type")
        for name, value in {
            "x-tc-action": "SendSms",
            "x-tc-version": "2021-01-11",
            "x-tc-region": "ap-guangzhou",
        }.items():
            if h.get(name) != value:
                return error(req, "InvalidParameter", f"{name}={h.get(name)!r}")
        stamp = h.get("x-tc-timestamp", "")
        if not stamp.isdigit() or abs(int(stamp) - time.time()) > 300:
            return error(req, "AuthFailure.SignatureExpire", "timestamp")
        match = AUTH.match(h.get("authorization", ""))
        if match is None:
            return error(req, "AuthFailure.InvalidAuthorization", "Authorization")
        signed = match["signed"].split(";")
        day = datetime.fromtimestamp(int(stamp), UTC).strftime("%Y-%m-%d")
        if match["id"] != TENCENT_ID:
            return error(req, "AuthFailure.SecretIdNotFound", "SecretId")
        if (
            (match["date"], match["service"]) != (day, "sms")
            or not {"content-type", "host"} <= set(signed)
            or signed != sorted(signed)
        ):
            return error(req, "AuthFailure.InvalidAuthorization", "credential scope")
        if match["sig"] != tc3_expected(h, signed, req.body, day, stamp, TENCENT_KEY):
            return error(
                req,
                "AuthFailure.SignatureFailure",
                "The provided credentials could not be validated.",
            )
        body = req.json()
        phones = body.get("PhoneNumberSet")
        if not (
            isinstance(phones, list)
            and phones
            and all(isinstance(n, str) and re.fullmatch(r"\+\d{6,15}", n) for n in phones)
        ):
            return error(req, "InvalidParameterValue.IncorrectPhoneNumber", str(phones))
        for name in ("SmsSdkAppId", "SignName", "TemplateId"):
            if not isinstance(body.get(name), str) or not body[name]:
                return error(req, "MissingParameter", name)
        params = body.get("TemplateParamSet", [])
        if not (isinstance(params, list) and all(isinstance(v, str) for v in params)):
            return error(req, "InvalidParameterValue.TemplateParameterFormatError", str(params))
        statuses = [
            {
                "SerialNo": f"5000:10457106691570536578494996{i}",
                "PhoneNumber": n,
                "Fee": 1,
                "SessionContext": body.get("SessionContext", ""),
                "Code": "Ok",
                "Message": "send success",
                "IsoCode": "CN",
            }
            for i, n in enumerate(phones)
        ]
        return 200, {
            "Response": {"SendStatusSet": statuses, "RequestId": f"req-{len(emu.requests)}"}
        }

    with serve(emu, handle):
        yield emu
