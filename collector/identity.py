"""Visitor ids, rate-limit identities and event ids: keyed hashes of the IP, never the IP.

visitor_id = HMAC-SHA256(daily_salt, ip + "|" + user_agent + "|" + website_id), hex
(docs/RULES.md "Identity"). The rate limiter's Redis key uses a different keyed
hash of the IP alone ("rl|" + ip) so that the key is per client IP, shared by all
replicas (same salt), and cannot be reversed by hashing the 2^32 IPv4 addresses
without the salt.

Speed: `hmac.new(salt, ...)` derives the inner and outer key pads on every call; the
keyed object is built once per salt (a new salt a day) and copied per message, which
gives the same digest for about two thirds of the cost.
"""

from __future__ import annotations

import hashlib
import hmac
from functools import lru_cache

from tinytrail.ids import new_uuid4


@lru_cache(maxsize=4)  # today's salt, yesterday's, a fallback: a handful at most
def _keyed(salt: bytes) -> hmac.HMAC:
    return hmac.new(salt, digestmod=hashlib.sha256)


def _hmac_hex(salt: bytes, msg: bytes) -> str:
    mac = _keyed(salt).copy()
    mac.update(msg)
    return mac.hexdigest()


def visitor_id(salt: bytes, ip: str, user_agent: str, website_id: str) -> str:
    return _hmac_hex(salt, f"{ip}|{user_agent}|{website_id}".encode())


def ratelimit_identity(salt: bytes, ip: str) -> str:
    # 128 bits are plenty to keep clients apart and keep keys short.
    return _hmac_hex(salt, f"rl|{ip}".encode())[:32]


event_id = new_uuid4  # a random (version 4) UUID string (tinytrail.ids)
