"""The tier guard: unmarked tests cannot reach a service, and nothing leaves loopback."""

from __future__ import annotations

import os
import socket

import pytest


def _redis_port() -> int:
    url = os.environ.get("TINYTRAIL_TEST_REDIS_URL", "redis://127.0.0.1:63799/0")
    return int(url.rsplit(":", 1)[1].split("/")[0])


def test_unmarked_test_cannot_reach_redis() -> None:
    if "TINYTRAIL_TEST_REDIS_URL" not in os.environ:
        pytest.fail("run the suite through infra/test.sh so the service ports are known")
    s = socket.socket()
    try:
        with pytest.raises(OSError, match="without @pytest.mark.redis"):
            s.connect(("127.0.0.1", _redis_port()))
    finally:
        s.close()


def test_non_loopback_addresses_are_refused() -> None:
    s = socket.socket()
    try:
        with pytest.raises(OSError, match="only connect to loopback"):
            s.connect(("192.0.2.1", 80))  # TEST-NET-1: never routed
    finally:
        s.close()


@pytest.mark.redis
def test_marked_test_reaches_redis(redis_url: str) -> None:
    s = socket.create_connection(("127.0.0.1", _redis_port()), timeout=5)
    s.close()
