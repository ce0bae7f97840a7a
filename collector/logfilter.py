"""A logging filter that removes IP addresses from log lines.

Our own code never logs a client IP, but Tornado's loggers do ("Malformed HTTP
message from 203.0.113.9", the access log). The filter rewrites every record's
message with IPv4 and IPv6 addresses replaced by `<ip>` before any handler
formats it, so that no raw IP reaches stderr.
"""

from __future__ import annotations

import ipaddress
import logging
import re

# Candidates: runs of hex digits, dots and colons; each is checked with `ipaddress`
# so that "10:30:00" stays while "2001:db8::7" and "::ffff:10.0.0.1" go.
_CANDIDATE = re.compile(r"(?<![\w.:])[0-9A-Fa-f.:]*[.:][0-9A-Fa-f.:]*(?![\w.:])")


def _replace(match: re.Match[str]) -> str:
    text = match.group(0)
    core = text.rstrip(".:")  # "from 203.0.113.9: bad request"
    try:
        ipaddress.ip_address(core)
    except ValueError:
        return text
    return "<ip>" + text[len(core):]


def redact(text: str) -> str:
    return _CANDIDATE.sub(_replace, text)


class RedactIPFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:
            return True
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        return True


def install(logger: logging.Logger | None = None) -> RedactIPFilter:
    """Attach the filter to every handler of `logger` (root by default)."""
    flt = RedactIPFilter()
    for handler in (logger or logging.getLogger()).handlers:
        handler.addFilter(flt)
    return flt
