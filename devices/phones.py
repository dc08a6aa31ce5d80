"""Phone numbers as the SMS providers and the residents' records write them."""

from __future__ import annotations

import re

MAINLAND = re.compile(r"^(?:\+?86|0086)?(1[0-9]{10})$")


def mainland_digits(phone: str) -> str | None:
    """``13800000000`` from ``+8613800000000``, ``008613800000000``, ``86 138 0000 0000`` or
    ``13800000000``; None for anything that is not a mainland mobile number."""
    match = MAINLAND.match(re.sub(r"[\s-]", "", phone))
    return match.group(1) if match else None


def e164(phone: str) -> str:
    """Tencent wants E.164: a mainland mobile gets ``+86``; anything else needs its ``+``."""
    digits = mainland_digits(phone)
    if digits:
        return "+86" + digits
    return phone if phone.startswith("+") else "+" + phone
