"""Failed authentication, limited per client IP (docs/RULES.md "Accounts, users, keys").

Every `401 invalid API key` counts one failure for the client's address (an IPv6
client by its /64, `tinytrail.ratelimit.client_bucket`) in a fixed window of
`api_auth_fail_window` seconds. Once a client has `api_auth_fail_limit` failures in
the current window, every request of its that carries a key is answered 429 with
`Retry-After` (seconds to the window's end) *before* the key is looked up, so keys
cannot be guessed at database speed. Worked example, limit 20 per 60 s: failures at
t = 0…19 s fill window 0 (t ∈ [0, 60)); a request at t = 25 s gets 429 with
Retry-After 35, even with a valid key; at t = 60 s a new window starts.

Redis keys hold a keyed hash of the address, never the address:
`tt:rl:authfail:<HMAC-SHA256(secret_key, "authfail|" + bucket)[:32]>:<window>`, with a
TTL of two windows. The window, counter, Retry-After and fail-open rule are those of
`tinytrail.ratelimit.FixedWindowLimiter` (scope "auth"): a failure is a `hit`, the
check before the key lookup a `peek` (refused once the window holds `limit` failures).
If Redis does not answer, the check fails open (the request goes on to the usual key
lookup) and `tinytrail_ratelimit_fail_open_total{scope="auth"}` counts it: the API
keeps serving without Redis.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable

import redis.asyncio as aioredis

from tinytrail.ratelimit import FixedWindowLimiter, client_bucket

SCOPE = "auth"


class AuthFailureLimit(FixedWindowLimiter):
    """Counts failed authentications per client and says when one must wait."""

    def __init__(self, redis: aioredis.Redis, secret: str, limit: int, window_seconds: int,
                 clock: Callable[[], float]) -> None:
        super().__init__(redis, SCOPE, limit, window_seconds, clock)
        self._secret = hashlib.sha256(b"tinytrail-authfail|" + secret.encode()).digest()

    def key(self, identity: str, window: int) -> str:
        """The counter of client address `identity` (keyed hash of its bucket)."""
        ident = hmac.new(self._secret, f"authfail|{client_bucket(identity)}".encode(),
                         hashlib.sha256).hexdigest()[:32]
        return f"tt:rl:authfail:{ident}:{window}"

    async def retry_after(self, ip: str) -> int | None:
        """Seconds the client `ip` must wait (it failed too often), or None to go on.
        One Redis GET; None when Redis does not answer (fail open, counted)."""
        verdict = await self.peek(ip)
        return None if verdict.allowed else verdict.retry_after

    async def failed(self, ip: str) -> None:
        """Count one failed authentication of `ip` (INCR + EXPIRE, one round trip)."""
        await self.hit(ip)
