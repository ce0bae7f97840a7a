"""The restart schedule of `tinytrail run` (cli/supervisor.py), as a pure unit:
processes are stand-ins whose exit the test decides, time is a number the test sets.
`tests/system/test_local_run.py` kills a real child with SIGKILL and sees it serve again."""

from __future__ import annotations

from typing import Any

import pytest

from tinytrail import supervisor


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
