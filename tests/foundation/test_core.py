"""Pure units of the shared core: settings, envelope, wire model, CLI help."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import uuid

import psycopg
import psycopg_pool
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from cli.main import build_parser
from cli.router import upstream_for
from tinytrail.db import database_unavailable
from tinytrail.envelope import ApiError, error, success
from tinytrail.event import EVENT_TYPES, DecodeError, RawEvent
from tinytrail.settings import CoreSettings, load_settings, parse_cidrs
from tinytrail.web import _depth


def test_settings_reject_bad_values_with_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        load_settings(CoreSettings, database_url="mysql://x", events_partitions=0)
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert "TINYTRAIL_DATABASE_URL" in err and "TINYTRAIL_EVENTS_PARTITIONS" in err


def test_settings_are_frozen() -> None:
    s = CoreSettings()
    with pytest.raises(ValidationError):
        s.topic_prefix = "other"  # type: ignore[misc]


def test_parse_cidrs_names_the_bad_entry() -> None:
    assert [str(n) for n in parse_cidrs("10.0.0.0/8, 127.0.0.1")] == ["10.0.0.0/8", "127.0.0.1/32"]
    with pytest.raises(ValueError, match="nope"):
        parse_cidrs("10.0.0.0/8,nope")


def test_envelopes() -> None:
    assert success({"a": 1}) == {"status": "success", "data": {"a": 1}}
    assert error("NOT_FOUND", "x") == {
        "status": "error",
        "error": {"code": "NOT_FOUND", "message": "x"},
    }
    assert ApiError(429, "slow down").code == "RATE_LIMITED"
    assert ApiError(400, "bad").code == "INVALID_PAYLOAD"


@pytest.mark.parametrize("exc", [
    psycopg_pool.PoolTimeout("couldn't get a connection after 10.00 sec"),
    psycopg.errors.ConnectionTimeout("connection timeout expired"),
    psycopg.OperationalError("consuming input failed: server closed the connection"),
    psycopg.OperationalError("the connection is closed"),
    psycopg.errors.lookup("08006")("connection failure"),
    psycopg.errors.lookup("08001")("unable to establish connection"),
    psycopg.errors.AdminShutdown("terminating connection due to administrator command"),
    psycopg.errors.CrashShutdown("terminating connection because of crash"),
    psycopg.errors.CannotConnectNow("the database system is starting up"),
], ids=lambda e: type(e).__name__ + (f"-{e.sqlstate}" if e.sqlstate else ""))
def test_database_unavailable_takes_outages(exc: BaseException) -> None:
    assert database_unavailable(exc)


@pytest.mark.parametrize("exc", [
    None, RuntimeError("boom"), ValueError("x"),
    psycopg.errors.QueryCanceled("statement timeout"),  # its own 503, not an outage
    psycopg.errors.DatabaseDropped("x"), psycopg.errors.IdleSessionTimeout("x"),
    psycopg.errors.TooManyConnections("x"),  # at connect: the pool retries, PoolTimeout
    psycopg.errors.NumericValueOutOfRange("x"), psycopg.errors.UniqueViolation("x"),
    psycopg.errors.UndefinedTable("x"), psycopg.errors.SyntaxError("x"),
    psycopg_pool.PoolClosed("x"), psycopg_pool.TooManyRequests("x"),
    psycopg.errors.PipelineAborted("x"), psycopg.InterfaceError("x"), psycopg.DataError("x"),
], ids=lambda e: type(e).__name__)
def test_database_unavailable_leaves_other_errors_alone(exc: BaseException | None) -> None:
    assert not database_unavailable(exc)


def test_json_depth() -> None:
    assert _depth({"a": [1, {"b": 2}]}, 10) == 4
    deep: object = 1
    for _ in range(100):
        deep = [deep]
    assert _depth(deep, 32) > 32


def test_router_sends_collection_to_collector_and_the_rest_to_api() -> None:
    assert upstream_for("/api/v1/collect", "C", "A") == "C"
    assert upstream_for("/js/tracker.js", "C", "A") == "C"
    assert upstream_for("/api/v1/reports/summary", "C", "A") == "A"
    assert upstream_for("/health", "C", "A") == "A"


# Text fields refuse control characters (Cc); properties may hold them, but not NUL.
_chars = st.characters(codec="utf-8", exclude_categories=["Cc"])
_pchars = st.characters(codec="utf-8", exclude_characters="\x00")  # jsonb cannot store NUL
_text = st.text(_chars, max_size=50)
_opt = st.none() | _text


@given(
    event_type=st.sampled_from(sorted(EVENT_TYPES)),
    ts=st.integers(min_value=1, max_value=253_402_300_799_999),  # before year 10,000
    path=_text.map(lambda s: "/" + s),
    referrer=_opt,
    width=st.none() | st.integers(0, 10000),
    props=st.none()
    | st.dictionaries(
        st.text(_pchars, max_size=10), st.integers(-(2**53), 2**53) | st.text(_pchars, max_size=50),
        max_size=4,
    ),
    utm=_opt,
    bot=st.booleans(),
)
def test_raw_event_round_trips(
    event_type: str,
    ts: int,
    path: str,
    referrer: str | None,
    width: int | None,
    props: dict | None,
    utm: str | None,
    bot: bool,
) -> None:
    ev = RawEvent(
        event_id=str(uuid.uuid4()),
        received_at_ms=ts,
        website_id=str(uuid.uuid4()),
        visitor_id="a" * 64,
        event_type=event_type,
        url="https://x.example" + path,
        path=path,
        referrer=referrer,
        screen_width=width,
        properties=props,
        utm_source=utm,
        is_bot=bot,
        name="signup" if event_type == "custom" else None,
    )
    assert RawEvent.from_bytes(ev.to_bytes()) == ev
    assert ev.key == f"{ev.website_id}:{ev.visitor_id}".encode()


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(b"not json", id="not-json"),
        pytest.param(b"[1,2]", id="not-object"),
        pytest.param(b'{"event_id": "x"}', id="missing-fields"),
        pytest.param(
            b'{"event_id":"1","received_at_ms":1,"website_id":"2","visitor_id":"v",'
            b'"event_type":"page_view","url":"u","path":"/"}',
            id="bad-uuid",
        ),
    ],
)
def test_raw_event_rejects_garbage(payload: bytes) -> None:
    with pytest.raises(DecodeError):
        RawEvent.from_bytes(payload)


def test_every_subcommand_has_help() -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    names = sorted(sub.choices)  # type: ignore[union-attr]
    assert {"migrate", "create-admin", "collector", "worker", "api", "run", "aggregate"} <= set(
        names
    )
    for name in names:
        out = subprocess.run(
            [sys.executable, "-m", "cli", name, "--help"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert out.returncode == 0, (name, out.stderr)
        assert "usage: tinytrail " + name in out.stdout


def _event(**fields: object) -> dict[str, object]:
    base: dict[str, object] = {
        "event_id": str(uuid.uuid4()),
        "received_at_ms": 1,
        "website_id": str(uuid.uuid4()),
        "visitor_id": "a" * 64,
        "event_type": "page_view",
        "url": "https://x.example/",
        "path": "/",
    }
    return base | fields


@pytest.mark.parametrize(
    "fields",
    [
        pytest.param({"path": "/a\x00b"}, id="nul-in-path"),
        pytest.param({"referrer": "\x00"}, id="nul-in-referrer"),
        pytest.param({"properties": {"k\x00": 1}}, id="nul-in-property-key"),
        pytest.param({"properties": {"k": [{"deep": "x\x00"}]}}, id="nul-nested"),
        pytest.param({"screen_width": 2**40}, id="screen-out-of-int32"),
        pytest.param({"screen_height": -1}, id="screen-negative"),
    ],
)
def test_raw_event_rejects_what_postgres_cannot_store(fields: dict[str, object]) -> None:
    with pytest.raises(DecodeError):
        RawEvent.from_dict(_event(**fields))


def test_raw_event_keeps_a_literal_backslash_u0000() -> None:
    ev = RawEvent.from_dict(_event(properties={"text": "\\u0000"}, path="/\\u0000"))
    assert ev.properties == {"text": "\\u0000"}


def _uuid_accepts(value: object) -> bool:
    try:
        uuid.UUID(value)  # type: ignore[arg-type]
    except (ValueError, TypeError, AttributeError):
        return False
    return True


@given(st.one_of(
    st.uuids().map(str),
    st.uuids().map(lambda u: str(u).upper()),
    st.uuids().map(lambda u: u.hex),
    st.uuids().map(lambda u: "{" + str(u) + "}"),
    st.uuids().map(lambda u: "urn:uuid:" + str(u)),
    st.uuids().map(lambda u: str(u)[:-1] + "g"),
    st.text(alphabet="0123456789abcdefABCDEF-{}:urn", max_size=45),
    st.text(max_size=40),
    st.integers(),
    st.none(),
))
def test_event_id_check_accepts_exactly_what_uuid_accepts(value: object) -> None:
    """The worker's choke point checks canonical ids with a regex and everything else with
    uuid.UUID: the verdict must be uuid.UUID's, whatever the input; and an id it accepts
    leaves it in canonical spelling, `str(uuid.UUID(value))` (the website cache and the
    events table know that spelling only)."""
    for name in ("event_id", "website_id"):
        if _uuid_accepts(value):
            ev = RawEvent.from_dict(_event(**{name: value}))
            assert getattr(ev, name) == str(uuid.UUID(value))  # type: ignore[arg-type]
        else:
            with pytest.raises(DecodeError):
                RawEvent.from_dict(_event(**{name: value}))


def test_a_canonical_event_decodes_to_itself() -> None:
    """The common case costs no copy: canonical ids come back as the same object."""
    ev = RawEvent(**_event())  # type: ignore[arg-type]
    assert ev.check() is ev
    upper = dataclasses.replace(ev, website_id=ev.website_id.upper())
    assert upper.check() == ev


@given(st.text(max_size=300), st.integers(1, 120), st.integers(1, 300))
def test_cut_keeps_whole_characters_within_both_caps(value: str, chars: int,
                                                     size: int) -> None:
    """`limits.cut` (issue-12 review findings 3 and 5): the longest prefix of whole code
    points within `chars` characters AND `size` UTF-8 bytes."""
    from tinytrail.limits import TextCap, cut

    value = value.encode("utf-8", "replace").decode()  # no lone surrogates
    cap = TextCap(chars=chars, bytes=size)
    out = cut(value, cap)
    assert value.startswith(out)
    assert len(out) <= chars and len(out.encode()) <= size
    if out != value:  # maximal: one more character would break a cap
        longer = value[:len(out) + 1]
        assert len(longer) > chars or len(longer.encode()) > size


def test_cut_examples() -> None:
    from tinytrail.limits import UA_FAMILY, UTM, cut

    assert cut("\u4e00" * 250, UTM) == "\u4e00" * 133  # 399 bytes
    assert cut("\U0001f600" * 150, UTM) == "\U0001f600" * 100  # 400 bytes
    assert cut("a" * 500, UTM) == "a" * 200
    assert cut("\u00e9" * 1000, UA_FAMILY) == "\u00e9" * 100
    assert cut("short", UTM) == "short"
