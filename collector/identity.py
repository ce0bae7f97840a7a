"""Visitor ids and rate-limit identities: keyed hashes of the client IP, never the IP.

visitor_id = HMAC-SHA256(daily_salt, ip + "|" + user_agent + "|" + website_id), hex
(DECISIONS.md "Identity"). The rate limiter's Redis key uses a different keyed
hash of the IP alone ("rl|" + ip) so that the key is per client IP, shared by all
replicas (same salt), and cannot be reversed by hashing the 2^32 IPv4 addresses
without the salt.
"""

from __future__ import annotations

import hashlib
import hmac


def visitor_id(salt: bytes, ip: str, user_agent: str, website_id: str) -> str:
    msg = f"{ip}|{user_agent}|{website_id}".encode()
    return hmac.new(salt, msg, hashlib.sha256).hexdigest()


def ratelimit_identity(salt: bytes, ip: str) -> str:
    # 128 bits are plenty to keep clients apart and keep keys short.
    return hmac.new(salt, f"rl|{ip}".encode(), hashlib.sha256).hexdigest()[:32]
