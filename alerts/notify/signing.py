"""Request signing for the Chinese cloud providers, from their published algorithms (pure).

- Aliyun RPC-style APIs (Dysmsapi ``SendSms``, Dyvmsapi ``SingleCallByTts``), signature
  version 1.0: ``Base64(HMAC-SHA1(secret + "&", METHOD&%2F&percent(canonical query)))``
  where the canonical query is every parameter but ``Signature``, sorted by name, each name
  and value percent-encoded (RFC 3986: space %20, ``*`` %2A, ``~`` kept).
  https://help.aliyun.com/document_detail/315526.html (RPC signature mechanism)
- Tencent Cloud API 3.0, ``TC3-HMAC-SHA256``: a canonical request over method, URI ``/``,
  empty query, the signed headers and the SHA-256 of the body; a key derived by HMAC chain
  ``"TC3"+key -> date -> service -> "tc3_request"``; the ``Authorization`` header.
  https://cloud.tencent.com/document/api/382/52071 (SMS 2021-01-11 signature v3)

Both are checked in tests against the worked examples the providers publish.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from datetime import UTC, datetime
from urllib.parse import quote

TC3 = "TC3-HMAC-SHA256"


def aliyun_percent_encode(value: str) -> str:
    """RFC 3986 unreserved characters kept, everything else %XX (UTF-8, upper hex)."""
    return quote(value, safe="~")


def aliyun_canonical_query(params: Mapping[str, str]) -> str:
    return "&".join(
        f"{aliyun_percent_encode(k)}={aliyun_percent_encode(v)}"
        for k, v in sorted(params.items())
        if k != "Signature"
    )


def aliyun_string_to_sign(method: str, params: Mapping[str, str]) -> str:
    return f"{method.upper()}&%2F&{aliyun_percent_encode(aliyun_canonical_query(params))}"


def aliyun_signature(method: str, params: Mapping[str, str], secret: str) -> str:
    """The ``Signature`` parameter's value (before it is itself form/percent-encoded)."""
    mac = hmac.new(
        (secret + "&").encode(), aliyun_string_to_sign(method, params).encode(), hashlib.sha1
    )
    return base64.b64encode(mac.digest()).decode()


def aliyun_timestamp(at: datetime) -> str:
    """ISO 8601 in UTC, ``yyyy-MM-ddTHH:mm:ssZ``."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _hmac256(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def tc3_canonical_request(
    *, method: str, headers: Mapping[str, str], signed: tuple[str, ...], body: bytes
) -> str:
    """``signed`` are lower-case header names, sorted; ``headers`` gives their values."""
    lowered = {k.lower(): v for k, v in headers.items()}
    canonical_headers = "".join(f"{h}:{lowered[h].strip().lower()}\n" for h in signed)
    return "\n".join(
        [method.upper(), "/", "", canonical_headers, ";".join(signed), _sha256_hex(body)]
    )


def tc3_signature(
    *, secret_key: str, service: str, timestamp: int, canonical_request: str
) -> tuple[str, str]:
    """(credential scope, hex signature) for a canonical request at ``timestamp``."""
    date = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")
    scope = f"{date}/{service}/tc3_request"
    to_sign = "\n".join([TC3, str(timestamp), scope, _sha256_hex(canonical_request.encode())])
    key = _hmac256(("TC3" + secret_key).encode(), date)
    key = _hmac256(key, service)
    key = _hmac256(key, "tc3_request")
    return scope, hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


def tc3_authorization(
    *,
    secret_id: str,
    secret_key: str,
    service: str,
    timestamp: int,
    headers: Mapping[str, str],
    signed: tuple[str, ...],
    body: bytes,
    method: str = "POST",
) -> str:
    canonical = tc3_canonical_request(method=method, headers=headers, signed=signed, body=body)
    scope, signature = tc3_signature(
        secret_key=secret_key, service=service, timestamp=timestamp, canonical_request=canonical
    )
    return (
        f"{TC3} Credential={secret_id}/{scope}, SignedHeaders={';'.join(signed)}, "
        f"Signature={signature}"
    )
