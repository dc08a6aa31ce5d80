"""Where a family's webhook may point: a public address, checked when it is saved and again
when a notification is sent, at the address actually connected to (so a name that resolves to
a public address at save time and to 127.0.0.1 later, DNS rebinding, still reaches nothing
internal). Hosts an admin allow-lists (``ELDERCARE_WEBHOOK_ALLOW_HOSTS``) skip the check.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Collection
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit, urlunsplit


class Refused(ValueError):
    """The address is not one the backend will call; the message says why."""


@dataclass(frozen=True, slots=True)
class Target:
    url: str  # what to connect to (the checked IP in place of the name)
    host: str  # the Host header and TLS server name
    pinned: bool


def _ip_url(parts: SplitResult, ip: str) -> str:
    host = f"[{ip}]" if ":" in ip else ip
    return urlunsplit(parts._replace(netloc=f"{host}:{parts.port}" if parts.port else host))


def is_public(ip: str) -> bool:
    addr = ipaddress.ip_address(ip)
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return addr.is_global and not addr.is_multicast


async def resolve_public(url: str, allow_hosts: Collection[str]) -> Target:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise Refused("only http and https webhooks")
    host = parts.hostname
    if not host:
        raise Refused("the webhook has no host")
    if parts.username or parts.password:
        raise Refused("no credentials in a webhook address")
    if host.lower() in {h.lower() for h in allow_hosts}:
        return Target(url, host, pinned=False)
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise Refused("the webhook's port is not a number") from exc
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise Refused(f"the webhook's host does not resolve: {host}") from exc
    ips = sorted({str(info[4][0]) for info in infos})
    if not ips:
        raise Refused(f"the webhook's host does not resolve: {host}")
    private = [ip for ip in ips if not is_public(ip)]
    if private:
        raise Refused(
            "webhooks go to public addresses only (this one is loopback, private, link-local"
            " or reserved); an administrator can allow-list an internal host"
        )
    return Target(_ip_url(parts, ips[0]), host, pinned=True)
