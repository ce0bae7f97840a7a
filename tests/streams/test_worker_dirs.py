"""The worker creates its data and heartbeat folders, parents included (a fresh machine
has no /tmp/tinytrail; Faust's own mkdir does not create parents)."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.settings import WorkerSettings, make_dirs


def test_data_and_heartbeat_folders_are_made_with_their_parents(tmp_path: Path) -> None:
    settings = WorkerSettings(worker_data_dir=str(tmp_path / "a" / "b" / "data"),
                              worker_heartbeat_file=str(tmp_path / "c" / "d" / "hb"))
    make_dirs(settings)
    assert (tmp_path / "a" / "b" / "data").is_dir()
    assert (tmp_path / "c" / "d").is_dir() and not (tmp_path / "c" / "d" / "hb").exists()
    make_dirs(settings)  # again: nothing to do, no error


def test_a_folder_that_cannot_be_made_is_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    settings = WorkerSettings(worker_data_dir=str(blocker / "data"),
                              worker_heartbeat_file=str(tmp_path / "hb"))
    with pytest.raises(SystemExit) as info:
        make_dirs(settings)
    assert str(info.value).startswith("tinytrail worker: cannot create ")
    assert "\n" not in str(info.value)
