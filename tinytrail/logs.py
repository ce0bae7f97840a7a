"""Structured logging: one JSON object per line when not on a terminal, text otherwise."""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

import orjson

_RESERVED = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _RESERVED and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        # OPT_NON_STR_KEYS: an `extra` dict keyed by partition numbers must not lose the line.
        return orjson.dumps(out, default=str, option=orjson.OPT_NON_STR_KEYS).decode()


def setup_logging(fmt: str = "auto", level: str = "INFO", *, process: str = "tinytrail") -> None:
    """Configure the root logger once per process."""
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter()
        if use_json
        else logging.Formatter(f"%(asctime)s {process} %(levelname)s %(name)s: %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Tornado's access log is per request: keep it at WARNING unless debugging.
    logging.getLogger("tornado.access").setLevel("DEBUG" if level == "DEBUG" else "WARNING")
    logging.getLogger("aiokafka").setLevel("WARNING")
    logging.getLogger("faust").setLevel("WARNING" if level != "DEBUG" else "DEBUG")
