"""User accounts (argon2-hashed passwords) and opaque API tokens (only their hash is stored)."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from devices.domain import Role
from devices.registry import Conn

_hasher = PasswordHasher()


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling, and what they may see."""

    user_id: int
    username: str
    role: Role
    site_ids: frozenset[str]
    resident_ids: frozenset[int]
    locale: str | None = None  # the user's own language; None follows the site's


async def set_locale(conn: Conn, *, user_id: int, locale: str | None) -> None:
    await conn.execute("UPDATE users SET locale = %s WHERE user_id = %s", (locale, user_id))


def hash_password(password: str) -> str:
    """What ``users.password_hash`` keeps of a password (argon2id, tens of milliseconds of CPU
    and 64 MiB of memory: run it off an event loop that serves others)."""
    return _hasher.hash(password)


async def create_user(
    conn: Conn,
    *,
    username: str,
    password_hash: str,
    role: Role,
    display_name: str = "",
    site_ids: tuple[str, ...] = (),
    resident_ids: tuple[int, ...] = (),
) -> int:
    cur = await conn.execute(
        "INSERT INTO users (username, password_hash, role, display_name) VALUES (%s, %s, %s, %s) "
        "RETURNING user_id",
        (username, password_hash, role.value, display_name),
    )
    row = await cur.fetchone()
    assert row is not None
    user_id = int(row["user_id"])
    for site_id in site_ids:
        await conn.execute(
            "INSERT INTO user_sites (user_id, site_id) VALUES (%s, %s)", (user_id, site_id)
        )
    for resident_id in resident_ids:
        await conn.execute(
            "INSERT INTO family_links (user_id, resident_id) VALUES (%s, %s)",
            (user_id, resident_id),
        )
    return user_id


def _token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def _verify(password_hash: str, password: str) -> bool:
    """argon2 costs tens of milliseconds of CPU: run in a worker thread, off the event loop
    (16 parallel sign-ins had raised /healthz from 3 ms to 918 ms)."""
    try:
        return bool(_hasher.verify(password_hash, password))
    except (VerificationError, InvalidHashError):
        return False


async def issue_token(
    conn: Conn, *, username: str, password: str, now: datetime, ttl: timedelta
) -> tuple[str, datetime] | None:
    """A new token for valid credentials, else None (same answer for unknown user and bad password)."""
    cur = await conn.execute(
        "SELECT user_id, password_hash FROM users WHERE username = %s AND disabled_at IS NULL",
        (username,),
    )
    row = await cur.fetchone()
    if row is None:
        await asyncio.to_thread(_hasher.hash, password)  # spend the same time as a real check
        return None
    if not await asyncio.to_thread(_verify, row["password_hash"], password):
        return None
    token = secrets.token_urlsafe(32)
    expires = now + ttl
    await conn.execute(
        "INSERT INTO api_tokens (token_hash, user_id, created_at, expires_at) VALUES (%s,%s,%s,%s)",
        (_token_hash(token), row["user_id"], now, expires),
    )
    return token, expires


async def principal_for_token(conn: Conn, *, token: str, now: datetime) -> Principal | None:
    return await principal_for_token_hash(conn, token_hash=_token_hash(token), now=now)


def token_hash(token: str) -> bytes:
    """What the database keeps of a bearer token (SHA-256)."""
    return _token_hash(token)


async def principal_for_token_hash(
    conn: Conn, *, token_hash: bytes, now: datetime
) -> Principal | None:
    cur = await conn.execute(
        "SELECT u.user_id, u.username, u.role, u.locale, "
        "  ARRAY(SELECT site_id FROM user_sites s WHERE s.user_id = u.user_id) AS site_ids, "
        "  ARRAY(SELECT resident_id FROM family_links f WHERE f.user_id = u.user_id) AS resident_ids "
        "FROM api_tokens t JOIN users u USING (user_id) "
        "WHERE t.token_hash = %s AND t.revoked_at IS NULL AND t.expires_at > %s "
        "AND u.disabled_at IS NULL",
        (token_hash, now),
    )
    row = await cur.fetchone()
    if row is None:
        return None
    return Principal(
        row["user_id"],
        row["username"],
        Role(row["role"]),
        frozenset(row["site_ids"]),
        frozenset(int(r) for r in row["resident_ids"]),
        row["locale"],
    )


REVOKED_CHANNEL = "api_token_revoked"


def token_fingerprint(token: str) -> str:
    """What a revocation announces (never the token itself): its SHA-256, hex."""
    return _token_hash(token).hex()


async def revoke_token(conn: Conn, *, token: str, now: datetime) -> None:
    """Revoke, and tell every API process at commit, so an open live stream ends at once."""
    await conn.execute(
        "UPDATE api_tokens SET revoked_at = %s WHERE token_hash = %s", (now, _token_hash(token))
    )
    await conn.execute("SELECT pg_notify(%s, %s)", (REVOKED_CHANNEL, token_fingerprint(token)))


async def disable_user(conn: Conn, *, username: str, now: datetime) -> int | None:
    """Disable an enabled account and revoke its tokens, telling every API process at commit
    (its live streams end). Returns how many sessions ended, or None if no enabled account has
    that name. The caller commits."""
    cur = await conn.execute(
        "UPDATE users SET disabled_at = %s WHERE username = %s AND disabled_at IS NULL "
        "RETURNING user_id",
        (now, username),
    )
    row = await cur.fetchone()
    if row is None:
        return None
    cur = await conn.execute(
        "UPDATE api_tokens SET revoked_at = %s WHERE user_id = %s AND revoked_at IS NULL "
        "RETURNING token_hash",
        (now, row["user_id"]),
    )
    revoked = await cur.fetchall()
    for r in revoked:  # what revoke_token announces: the token's SHA-256, hex
        await conn.execute(
            "SELECT pg_notify(%s, %s)", (REVOKED_CHANNEL, bytes(r["token_hash"]).hex())
        )
    return len(revoked)
