"""The collect path: one request from its body to the raw topic, as named steps.

`STEPS` runs in order on one `Collect` (the request's state). A step either goes on
(returns None), ends the request quietly (returns an outcome: 204, e.g.
"unknown_website"), or refuses it (raises `Refused(outcome, ApiError)`: 4xx/5xx in
the envelope). Size (413) is checked by the handler before the body is read
(collector/handlers.py); then:

  client_address  the client IP (X-Forwarded-For only from trusted proxies)
  rate_limit      daily salt, then the per-client fixed window (429; IPv6 by /64)
  validate        JSON + field rules (400; collector/validate.py)
  website         the website cache, re-checked in Postgres on a miss
                  (unknown: 204; Postgres unreachable: 503)
  verdicts        user agent, bot and excluded verdicts, country code
                  (collector/country.py, before the address is hashed and forgotten)
  identify        visitor id = keyed hash of IP, user agent and website (never the IP)
  encode          the wire bytes (tinytrail/event.py)
  publish         send and wait for Kafka's ack (503 on failure)
  answer          202 "accepted", or 204 for bot and excluded traffic (published
                  all the same)

Outcomes are counted by the handler (`tinytrail_collector_requests_total{outcome}`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from collector.clientip import client_ip
from collector.deps import CollectorDeps
from collector.identity import event_id, ratelimit_identity, visitor_id
from collector.publisher import Unavailable
from collector.validate import CollectPayload, validate
from collector.websites import LookupUnavailable, Website
from tinytrail import limits
from tinytrail.bots import is_bot
from tinytrail.envelope import ApiError
from tinytrail.event import encode, event_key
from tinytrail.ratelimit import client_bucket


class Refused(Exception):
    """The request is answered with `error`; `outcome` labels the metric."""

    def __init__(self, outcome: str, error: ApiError) -> None:
        super().__init__(outcome)
        self.outcome, self.error = outcome, error


@dataclass(slots=True)
class Collect:
    """One collect request as the steps fill it in."""

    deps: CollectorDeps
    received_at_ms: int  # server receive time, epoch ms (the event time)
    remote_ip: str
    forwarded_for: str | None
    user_agent_header: str
    parse_body: Callable[[], Any]  # the request's JSON body (ApiError 400 when not JSON)
    ip: str = ""
    salt: bytes = b""
    payload: CollectPayload | None = None
    site: Website | None = None
    user_agent: str = ""
    bot: bool = False
    excluded: bool = False
    country: str | None = None
    visitor: str = ""
    value: bytes = b""


def _unavailable(c: Collect, message: str) -> Refused:
    return Refused("unavailable", ApiError(
        503, message, code="SERVICE_UNAVAILABLE",
        headers={"Retry-After": str(c.deps.settings.retry_after_seconds)}))


async def client_address(c: Collect) -> str | None:
    c.ip = client_ip(c.remote_ip, c.forwarded_for, c.deps.trusted)
    return None


async def rate_limit(c: Collect) -> str | None:
    salts = c.deps.salts
    c.salt = salts.cached() or await salts.get()
    verdict = await c.deps.limiter.hit(ratelimit_identity(c.salt, client_bucket(c.ip)))
    if not verdict.allowed:
        raise Refused("rate_limited", ApiError(
            429, "rate limit exceeded", headers={"Retry-After": str(verdict.retry_after)}))
    return None


async def validate_body(c: Collect) -> str | None:
    try:
        c.payload = validate(c.parse_body())
    except ApiError as exc:
        raise Refused("invalid", exc) from None
    return None


async def website(c: Collect) -> str | None:
    assert c.payload is not None
    websites = c.deps.websites
    site = websites.get(c.payload.website_id)
    if site is None:  # maybe created a moment ago: ask Postgres before any 204
        try:
            site = await websites.lookup(c.payload.website_id)
        except LookupUnavailable:
            raise _unavailable(c, "cannot check the website now; retry later") from None
        if site is None:
            return "unknown_website"
    c.site = site
    return None


async def verdicts(c: Collect) -> str | None:
    assert c.site is not None
    # A header: cut (chars and bytes, at a code-point boundary), never refused.
    c.user_agent = limits.cut(c.user_agent_header, limits.USER_AGENT)
    c.bot = is_bot(c.user_agent)
    c.excluded = c.site.is_excluded(c.ip)
    c.country = c.deps.country_of(c.ip)  # before the address is hashed and forgotten
    return None


async def identify(c: Collect) -> str | None:
    assert c.payload is not None
    c.visitor = visitor_id(c.salt, c.ip, c.user_agent, c.payload.website_id)
    return None


async def encode_event(c: Collect) -> str | None:
    p = c.payload
    assert p is not None
    c.value = encode(
        event_id=event_id(), received_at_ms=c.received_at_ms, website_id=p.website_id,
        visitor_id=c.visitor, event_type=p.event_type, url=p.url, path=p.path,
        referrer=p.referrer, user_agent=c.user_agent, screen_width=p.screen_width,
        screen_height=p.screen_height, name=p.name, properties=p.properties,
        utm_source=p.utm_source, utm_medium=p.utm_medium, utm_campaign=p.utm_campaign,
        is_bot=c.bot, is_excluded=c.excluded, country=c.country)
    return None


async def publish(c: Collect) -> str | None:
    assert c.payload is not None
    try:
        await c.deps.publisher.publish(event_key(c.payload.website_id, c.visitor), c.value)
    except Unavailable:
        raise _unavailable(c, "event store is unavailable; retry later") from None
    return None


async def answer(c: Collect) -> str | None:
    return "bot" if c.bot else "excluded" if c.excluded else "accepted"


Step = Callable[[Collect], Awaitable[str | None]]
STEPS: tuple[tuple[str, Step], ...] = (
    ("client_address", client_address),
    ("rate_limit", rate_limit),
    ("validate", validate_body),
    ("website", website),
    ("verdicts", verdicts),
    ("identify", identify),
    ("encode", encode_event),
    ("publish", publish),
    ("answer", answer),
)


async def run(c: Collect) -> str:
    """Run `STEPS` on `c`; returns the outcome ("accepted": 202; any other: 204).
    Raises `Refused` for an answer in the envelope."""
    for _name, step in STEPS:
        outcome = await step(c)
        if outcome is not None:
            return outcome
    raise AssertionError("the answer step always ends the request")
