"""streams/consumer.py overrides Faust internals (private consumer attributes, the
recovery's `perform_seek` call, the worker's shutdown hook). They were written and
tested against `FAUST_WRITTEN_FOR`; on any other faust-streaming this fails loudly,
so an upgrade re-reads the overrides before anything ships."""

from __future__ import annotations

import importlib.metadata

import pytest

from streams.consumer import FAUST_WRITTEN_FOR, check_faust_version, faust_version


def test_installed_faust_is_the_one_the_overrides_were_written_for() -> None:
    installed = importlib.metadata.version("faust-streaming")
    first, end = FAUST_WRITTEN_FOR
    assert first <= faust_version() < end, (
        f"faust-streaming {installed} is outside {first}..{end}: re-read"
        " streams/consumer.py's overrides against it, then widen FAUST_WRITTEN_FOR"
    )
    check_faust_version()  # the same check, as the worker would run it


def test_the_check_refuses_another_version(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importlib.metadata, "version", lambda _name: "0.16.0")
    with pytest.raises(RuntimeError, match="0.16.0"):
        check_faust_version()


def test_the_overridden_internals_still_exist() -> None:
    from faust.transport.consumer import Consumer
    from faust.transport.drivers import aiokafka as faust_kafka

    for name in ("perform_seek", "seek_wait", "_wait_next_records", "_to_message",
                 "_commit", "wait_first", "highwater", "topic_partitions"):
        assert hasattr(faust_kafka.Consumer, name) or hasattr(Consumer, name), name
    import faust

    assert hasattr(faust.Worker, "_schedule_shutdown")
    assert hasattr(faust.App, "_new_transport")
