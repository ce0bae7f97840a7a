"""The restart schedule of `tinytrail run` (cli/supervisor.py), as a pure unit:
processes are stand-ins whose exit the test decides, time is a number the test sets.
`tests/system/test_local_run.py` kills a real child with SIGKILL and sees it serve again."""

from __future__ import annotations

from typing import Any

import pytest

from cli import supervisor


class FakeProc:
    """Stands in for `subprocess.Popen`: `poll()` is None until `exit(code)`."""

    def __init__(self) -> None:
        self.code: int | None = None

    def poll(self) -> int | None:
        return self.code


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Any:
    now = [0.0]
    spawned: list[FakeProc] = []

    def spawn(name: str, args: list[str], env: dict[str, str]) -> FakeProc:
        spawned.append(FakeProc())
        return spawned[-1]

    monkeypatch.setattr(supervisor, "_spawn", spawn)
    monkeypatch.setattr(supervisor.time, "monotonic", lambda: now[0])
    return now, spawned


def _run_until(child: supervisor.Child, now: list[float], until: float) -> None:
    """Check the child every 0.1 s of the fake clock up to `until`."""
    while now[0] < until:
        now[0] = round(now[0] + 0.1, 1)
        child.check(now[0])


def test_backoff_doubles_and_resets_after_a_stable_run(clock: Any,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    """The worked example of the module docstring: crashes at t = 0, 5 and 9 are
    restarted at 1, 7 and 13; after 10 minutes up, the next crash waits 1 s again."""
    now, spawned = clock
    child = supervisor.Child("worker-0", ["worker"], {})
    child.start()
    restarts: list[float] = []

    def crash_at(t: float) -> None:
        _run_until(child, now, t)
        spawned[-1].code = 1
        before = len(spawned)
        child.check(now[0])  # the exit is noticed at once
        while len(spawned) == before:
            now[0] = round(now[0] + 0.1, 1)
            child.check(now[0])
        restarts.append(now[0])

    for t in (0.0, 5.0, 9.0):
        crash_at(t)
    assert restarts == [1.0, 7.0, 13.0]
    crash_at(13.0 + 600)
    assert restarts[-1] == pytest.approx(614.0)
    assert child.restarts == 4
    out = capsys.readouterr().out
    assert "worker-0 exited with code 1; restarting in 1s" in out
    assert "restarting in 4s" in out


def test_backoff_is_capped(clock: Any) -> None:
    now, spawned = clock
    child = supervisor.Child("api", ["api"], {})
    child.start()
    waits = []
    for _ in range(8):
        spawned[-1].code = 1
        child.check(now[0])
        assert child.restart_at is not None
        waits.append(child.restart_at - now[0])
        now[0] = child.restart_at
        child.check(now[0])
    assert waits == [1, 2, 4, 8, 16, 30, 30, 30]


def test_the_grace_period_outlasts_every_childs_own_shutdown_bound(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue-12 review finding 4: `tinytrail run` SIGKILLed the worker after 15 s, before
    the worker's own 20 s watchdog. The grace is derived from the children's bounds (the
    HTTP processes' SHUTDOWN_SECONDS, the worker's setting as the environment sets it)
    plus a margin: 25 s with the defaults, within the 25-30 s a pod has."""
    from streams.settings import WorkerSettings
    from tinytrail.shutdown import SHUTDOWN_SECONDS

    monkeypatch.delenv("TINYTRAIL_WORKER_SHUTDOWN_TIMEOUT", raising=False)
    default = WorkerSettings.model_fields["worker_shutdown_timeout"].default
    assert supervisor.grace_seconds() == supervisor.GRACE_SECONDS == 25.0
    assert max(default, SHUTDOWN_SECONDS) < supervisor.GRACE_SECONDS
    monkeypatch.setenv("TINYTRAIL_WORKER_SHUTDOWN_TIMEOUT", "40")
    assert supervisor.grace_seconds() == 43.0  # follows the worker's setting
    monkeypatch.setenv("TINYTRAIL_WORKER_SHUTDOWN_TIMEOUT", "nonsense")
    assert supervisor.grace_seconds() == 25.0  # the worker would not start: the default


def test_stop_all_waits_the_grace_it_is_given(monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    """The SIGKILL comes after the grace `stop_all` is given, not after a constant."""
    import signal

    sent: list[int] = []
    waited: list[float] = []

    class Stubborn:
        pid = 4242

        def poll(self) -> None:
            return None

        def wait(self, timeout: float | None = None) -> int:
            if timeout is not None:
                waited.append(timeout)
                raise supervisor.subprocess.TimeoutExpired("worker", timeout)
            return -9

    monkeypatch.setattr(supervisor.os, "killpg", lambda pid, sig: sent.append(sig))
    monkeypatch.setattr(supervisor.time, "monotonic", lambda: 100.0)
    supervisor.stop_all({"worker-0": Stubborn()}, grace=43.0)  # type: ignore[dict-item]
    assert sent == [signal.SIGTERM, signal.SIGKILL]
    assert waited == [43.0]
    assert "worker-0 did not stop in 43s; killing" in capsys.readouterr().out
