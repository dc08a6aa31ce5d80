"""The demo users' passwords, made once per process with their hashes.

argon2 spends about 0.1-0.4 s of CPU on each hash here, and the test suite seeds the demo
population (nine users) over a hundred times: hashed afresh each time, that was minutes of
the suite's CPU on a two-core machine. One process (the main job, one test worker) keeps one
password per demo user; every new process draws new ones.
"""

from __future__ import annotations

import functools
import secrets

from devices.accounts import hash_password


@functools.cache
def demo_login(username: str) -> tuple[str, str]:
    """``(password, argon2 hash)`` of a demo user, the same for the life of this process."""
    password = secrets.token_urlsafe(9)
    return password, hash_password(password)
