"""The digest of what waits on main: which commits, in which order, on which day."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.slack.settings import BotSettings, parse_duration
from workers.digest import digest_day, waiting_commits
from workers.errors import ConfigError
from workers.github import DatedCommit
from workers.settings import load_settings

NOW = datetime(2026, 3, 4, 9, 30, tzinfo=UTC).timestamp()
HOUR = 3600


def commit(sha: str, age: float, *, login: str | None = "ann", name: str = "Ann") -> DatedCommit:
    return DatedCommit.model_validate(
        {
            "sha": sha,
            "commit": {
                "message": f"{sha}: headline\n\nbody",
                "committer": {"date": datetime.fromtimestamp(NOW - age, UTC).isoformat()},
                "author": {"name": name},
            },
            "author": {"login": login} if login else None,
        }
    )


def test_only_commits_older_than_the_min_age_oldest_first() -> None:
    commits = [commit("b", 2 * HOUR), commit("a", 5 * HOUR), commit("c", 10 * 60)]
    waiting = waiting_commits(commits, NOW, HOUR)
    assert [w.sha for w in waiting] == ["a", "b"]
    assert waiting[0].headline == "a: headline"
    assert waiting[0].committed_at == int(NOW - 5 * HOUR)


def test_exactly_the_min_age_counts_as_waiting() -> None:
    assert [w.sha for w in waiting_commits([commit("a", HOUR)], NOW, HOUR)] == ["a"]


def test_author_is_the_login_else_the_git_name() -> None:
    waiting = waiting_commits(
        [commit("a", 3 * HOUR), commit("b", 2 * HOUR, login=None, name="Bo")], NOW, HOUR
    )
    assert [w.author for w in waiting] == ["ann", "Bo"]


def test_nothing_when_nothing_is_old_enough_or_staging_is_current() -> None:
    assert waiting_commits([commit("a", 60)], NOW, HOUR) == []
    assert waiting_commits([], NOW, HOUR) == []


def test_equal_dates_keep_githubs_order() -> None:
    commits = [commit("x", 2 * HOUR), commit("y", 2 * HOUR)]
    assert [w.sha for w in waiting_commits(commits, NOW, 0)] == ["x", "y"]


def test_due_only_during_the_configured_utc_hour() -> None:
    assert digest_day(NOW, 9) == "2026-03-04"
    assert digest_day(NOW, 10) is None
    assert digest_day(NOW, None) is None


@pytest.mark.parametrize(
    ("text", "seconds"), [("90", 90), ("90s", 90), ("30m", 1800), ("1h", 3600), ("2d", 172800)]
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


def test_digest_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load_settings(BotSettings)
    assert settings.digest_hour is None
    assert settings.digest_min_age == 3600
    monkeypatch.setenv("DEPLOY_MONITOR_DIGEST_HOUR", "7")
    monkeypatch.setenv("DEPLOY_MONITOR_DIGEST_MIN_AGE", "30m")
    settings = load_settings(BotSettings)
    assert (settings.digest_hour, settings.digest_min_age) == (7, 1800)


@pytest.mark.parametrize(
    ("name", "value"),
    [("DEPLOY_MONITOR_DIGEST_HOUR", "24"), ("DEPLOY_MONITOR_DIGEST_MIN_AGE", "soon")],
)
def test_bad_digest_settings_name_the_setting(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=name):
        load_settings(BotSettings)
