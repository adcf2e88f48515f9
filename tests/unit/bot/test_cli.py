"""The `deploy-monitor` command line: usage and configuration errors exit 2 with one clear
line naming the problem, and never print a secret."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from bot.cli import main

SETTINGS = (
    "REDIS_URL",
    "REDIS_SENTINELS",
    "REDIS_SENTINEL_PASSWORD",
    "CONCOURSE_URL",
    "CONCOURSE_USERNAME",
    "CONCOURSE_PASSWORD",
    "CONCOURSE_TOKEN",
    "GITHUB_TOKEN",
    "SLACK_BOT_TOKEN",
    "SLACK_SIGNING_SECRET",
    "SLACK_APP_TOKEN",
    "DEPLOY_MONITOR_POLL_SECONDS",
    "DEPLOY_MONITOR_CHAIN",
)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in SETTINGS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env


@pytest.fixture
def configured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONCOURSE_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("CONCOURSE_USERNAME", "bot")
    monkeypatch.setenv("CONCOURSE_PASSWORD", "pw-secret-123456")
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_secret_123456")


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def test_watch_without_concourse_settings_names_the_missing_one() -> None:
    code, out = run("watch", "1234")
    assert code == 2
    assert "CONCOURSE_URL is not set" in out
    assert len(out.strip().splitlines()) == 1


def test_watch_with_a_malformed_setting(monkeypatch: pytest.MonkeyPatch, configured: None) -> None:
    monkeypatch.setenv("DEPLOY_MONITOR_POLL_SECONDS", "soon")
    code, out = run("watch", "1234")
    assert code == 2 and out.startswith("deploy-monitor: DEPLOY_MONITOR_POLL_SECONDS")


def test_watch_with_a_bad_target_exits_2_with_usage(configured: None) -> None:
    code, out = run("watch", "not a target")
    assert code == 2
    assert "Give one of" in out
    assert "pw-secret-123456" not in out and "ghp_secret_123456" not in out


def test_watch_with_a_chain_that_does_not_load(
    monkeypatch: pytest.MonkeyPatch, configured: None, tmp_path: Path
) -> None:
    bad = tmp_path / "chain.yaml"
    bad.write_text("name: x\nstages: []\npaths: []\n")
    monkeypatch.setenv("DEPLOY_MONITOR_CHAIN", str(bad))
    code, out = run("watch", "1234")
    assert code == 2 and "DEPLOY_MONITOR_CHAIN" in out


def test_bot_needs_slack_settings(configured: None) -> None:
    code, out = run("bot")
    assert code == 2 and "SLACK_BOT_TOKEN is not set" in out


def test_bot_needs_a_signing_secret_in_http_mode(
    monkeypatch: pytest.MonkeyPatch, configured: None
) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-secret-123456")
    code, out = run("bot")
    assert code == 2 and "SLACK_SIGNING_SECRET" in out and "xoxb-secret-123456" not in out


def test_demo_rejects_a_nonsense_speed() -> None:
    code, out = run("demo", "--speed", "0")
    assert code == 2 and "--speed must be positive" in out


def test_unreachable_redis_is_one_line_without_the_password(
    monkeypatch: pytest.MonkeyPatch, configured: None
) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://:hunter2-redis@127.0.0.1:9/3")
    code, out = run("watch", "1234")
    assert code == 2
    assert "Redis is not reachable at redis://127.0.0.1:9/3" in out
    assert "hunter2-redis" not in out and "Traceback" not in out


def test_where_and_status_without_settings_exit_2_naming_the_missing_one() -> None:
    for args in (("where", "1234"), ("status",)):
        code, out = run(*args)
        assert code == 2, args
        assert "CONCOURSE_URL is not set" in out


def test_where_with_a_bad_target_exits_2_with_usage(configured: None) -> None:
    code, out = run("where", "not a target")
    assert code == 2
    assert "Give one target" in out and "a commit SHA" in out


def test_where_prints_its_json_schema_without_any_setting() -> None:
    import json

    code, out = run("where", "--schema")
    assert code == 0
    schema = json.loads(out)
    assert schema["title"] == "WhereAnswer"
    assert {"sha", "path", "deployed", "stages"} <= set(schema["required"])


def test_unreachable_sentinels_are_one_line_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch, configured: None
) -> None:
    monkeypatch.setenv("REDIS_SENTINELS", "127.0.0.1:9")
    monkeypatch.setenv("REDIS_SENTINEL_PASSWORD", "hunter2-sentinel")
    code, out = run("watch", "1234")
    assert code == 2
    assert "Redis is not reachable at master mymaster via sentinels 127.0.0.1:9" in out
    assert "check REDIS_SENTINELS" in out
    assert "hunter2-sentinel" not in out and "Traceback" not in out


WIDGETS_CHAIN = Path(__file__).parents[2] / "data" / "chains" / "widgets.yaml"


def test_the_terminal_takes_the_repository_forms_and_refuses_an_unserved_one(
    monkeypatch: pytest.MonkeyPatch, configured: None
) -> None:
    monkeypatch.setenv("DEPLOY_MONITOR_CHAINS", f"lana-bank,{WIDGETS_CHAIN}")
    code, out = run("where", "other/repo#3")
    assert code == 2
    assert "I don't follow “other/repo”" in out and "acme/widgets" in out
    assert "owner/repo#1234" in out  # the usage names the repository forms
    code, out = run("status", "other/repo")
    assert code == 2 and "other/repo is not served" in out and "GaloyMoney/lana-bank" in out
    # A bad chain directory stops it with one line naming the setting.
    monkeypatch.setenv("DEPLOY_MONITOR_CHAINS", "/no/such/dir")
    code, out = run("status")
    assert code == 2 and "DEPLOY_MONITOR_CHAINS" in out and "Traceback" not in out
