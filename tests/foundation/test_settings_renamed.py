"""Renamed environment variables (tinytrail/settings.py `RENAMED_ENV`): the old name is
still read for one release, with a warning line at start-up; the new one wins; a bad
value is reported under the new name. The website cache's two settings have one name in
every process that holds the cache (`WebsiteCacheSettings`)."""

from __future__ import annotations

import pytest

from collector.settings import CollectorSettings
from streams.settings import WorkerSettings
from tinytrail.settings import RENAMED_ENV, WebsiteCacheSettings, load_settings

OLD_REFRESH = "TINYTRAIL_WEBSITE_REFRESH_SECONDS"
OLD_NEGATIVE = "TINYTRAIL_WEBSITE_NEGATIVE_CACHE_SECONDS"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for old, new in RENAMED_ENV.items():
        monkeypatch.delenv(old, raising=False)
        monkeypatch.delenv(new, raising=False)


def test_the_old_names_are_read_with_a_warning(monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv(OLD_REFRESH, "3")
    monkeypatch.setenv(OLD_NEGATIVE.lower(), "0.5")  # any case, as for every variable
    s = load_settings(CollectorSettings)
    assert (s.website_refresh_interval, s.website_negative_ttl) == (3.0, 0.5)
    lines = capsys.readouterr().err.splitlines()
    assert lines == [
        f"tinytrail: warning: {OLD_REFRESH} is deprecated, use"
        " TINYTRAIL_WEBSITE_REFRESH_INTERVAL; the old name is read until the next release",
        f"tinytrail: warning: {OLD_NEGATIVE} is deprecated, use"
        " TINYTRAIL_WEBSITE_NEGATIVE_TTL; the old name is read until the next release",
    ]


def test_the_new_name_wins_and_the_warning_says_so(monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv(OLD_REFRESH, "3")
    monkeypatch.setenv("TINYTRAIL_WEBSITE_REFRESH_INTERVAL", "4")
    assert load_settings(CollectorSettings).website_refresh_interval == 4.0
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith(f"tinytrail: warning: {OLD_REFRESH} is deprecated")
    assert line.endswith("(TINYTRAIL_WEBSITE_REFRESH_INTERVAL is set too and wins)")


def test_the_new_names_alone_warn_nothing(monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("TINYTRAIL_WEBSITE_REFRESH_INTERVAL", "1")
    monkeypatch.setenv("TINYTRAIL_WEBSITE_NEGATIVE_TTL", "0")
    s = load_settings(CollectorSettings)
    assert (s.website_refresh_interval, s.website_negative_ttl) == (1.0, 0.0)
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("name", [OLD_NEGATIVE, "TINYTRAIL_WEBSITE_NEGATIVE_TTL"])
def test_a_bad_value_names_the_new_variable(monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str],
                                            name: str) -> None:
    monkeypatch.setenv(name, "6")  # over 5 s
    with pytest.raises(SystemExit) as exc:
        load_settings(CollectorSettings)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "tinytrail: invalid settings: TINYTRAIL_WEBSITE_NEGATIVE_TTL: " in err
    assert "TINYTRAIL_TINYTRAIL_" not in err


def test_settings_built_in_code_name_the_fields() -> None:
    s = CollectorSettings(website_refresh_interval=0.2, website_negative_ttl=0.5)
    assert (s.website_refresh_interval, s.website_negative_ttl) == (0.2, 0.5)


def test_both_cache_holders_read_the_same_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TINYTRAIL_WEBSITE_REFRESH_INTERVAL", "1.5")
    monkeypatch.setenv("TINYTRAIL_WEBSITE_NEGATIVE_TTL", "0.25")
    shared = {n for n in WebsiteCacheSettings.model_fields if n.startswith("website_")}
    assert shared == {"website_refresh_interval", "website_negative_ttl"}
    for cls in (CollectorSettings, WorkerSettings):
        s = cls()
        assert {n for n in cls.model_fields if n.startswith("website_")} == shared
        assert (s.website_refresh_interval, s.website_negative_ttl) == (1.5, 0.25)
