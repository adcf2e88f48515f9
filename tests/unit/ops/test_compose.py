"""compose.yaml and .env.example: every variable passed to a deploy-monitor container is a real
setting, every setting reaches the containers and is in the template, and the simulated profile
gives the processes what simulators/stack.py serves."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import click
import pytest
import yaml
from pydantic import AliasChoices

from bot.cli import main as cli
from bot.slack.settings import BotSettings
from simulators import stack

ROOT = Path(__file__).resolve().parents[3]
# Read outside pydantic-settings, by bot/logs.py before any settings are loaded.
OTHER_SETTINGS = {"LOG_LEVEL"}


def setting_names() -> set[str]:
    """The environment names of the pydantic-settings fields (the bot's include the engine's)."""
    names: set[str] = set()
    for field in BotSettings.model_fields.values():
        alias = field.validation_alias
        assert isinstance(alias, AliasChoices), field
        names.update(c for c in alias.choices if isinstance(c, str) and c.isupper())
    return names


def option_env_names() -> set[str]:
    """Environment variables that `deploy-monitor` command options read (e.g. the metrics port)."""
    assert isinstance(cli, click.Group)
    return {
        env
        for command in cli.commands.values()
        for param in command.params
        if isinstance(param, click.Option)
        for env in ([param.envvar] if isinstance(param.envvar, str) else param.envvar or [])
    }


def compose() -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "compose.yaml").read_text())
    assert isinstance(data, dict)
    return data


def services() -> dict[str, dict[str, Any]]:
    result = compose()["services"]
    assert isinstance(result, dict)
    return result


def ours() -> dict[str, dict[str, Any]]:
    """The services run from the project's image (built from its Dockerfile)."""
    return {name: s for name, s in services().items() if s.get("build") == "."}


def env_example() -> dict[str, str]:
    pairs = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, sep, value = line.partition("=")
            assert sep, f"not NAME=value: {line!r}"
            pairs[name] = value
    return pairs


def readme_settings() -> set[str]:
    """The settings named in the README's tables (first column, upper case)."""
    names: set[str] = set()
    for line in (ROOT / "README.md").read_text().splitlines():
        if match := re.match(r"\| ((?:`[A-Z][A-Z0-9_]*`(?:, )?)+) \|", line):
            names.update(re.findall(r"`([A-Z0-9_]+)`", match.group(1)))
    return names


def test_the_settings_are_found() -> None:
    assert {"REDIS_URL", "SLACK_BOT_TOKEN", "DEPLOY_MONITOR_JOB_GRACE_SECONDS"} <= setting_names()
    assert "DEPLOY_MONITOR_METRICS_PORT" in option_env_names()
    assert "LOG_LEVEL" in (ROOT / "bot" / "logs.py").read_text()
    assert readme_settings() >= {"SLACK_APP_TOKEN", "CONCOURSE_USERNAME", "CONCOURSE_PASSWORD"}


def test_every_variable_passed_to_a_deploy_monitor_container_is_a_setting() -> None:
    known = setting_names() | option_env_names() | OTHER_SETTINGS
    assert set(ours()) >= {"bot", "worker-1", "worker-2", "simulated-bot", "simulators"}
    for name, service in ours().items():
        unknown = set(service.get("environment") or {}) - known
        assert not unknown, f"{name} passes {sorted(unknown)}, which deploy-monitor never reads"


def test_every_setting_reaches_the_live_containers_under_its_own_name() -> None:
    for name in ("bot", "worker-1", "worker-2"):
        environment = services()[name]["environment"]
        missing = (setting_names() | OTHER_SETTINGS) - set(environment)
        assert not missing, f"{name} does not pass {sorted(missing)} from .env"
        for variable, value in environment.items():
            if variable == "DEPLOY_MONITOR_METRICS_PORT":
                continue
            assert re.fullmatch(rf"\$\{{{variable}:-[^}}]*\}}", value), (variable, value)


def test_env_example_lists_every_setting_with_secrets_empty() -> None:
    example = env_example()
    assert set(example) >= setting_names() | readme_settings() | OTHER_SETTINGS
    unknown = set(example) - setting_names() - OTHER_SETTINGS - {"COMPOSE_PROFILES"}
    assert not unknown, f".env.example names {sorted(unknown)}, which are not settings"
    # Empty = the setting's default, so the template decides nothing but the profile.
    assert {k: v for k, v in example.items() if v} == {"COMPOSE_PROFILES": "live"}


def test_empty_values_mean_the_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in setting_names():
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    defaults = BotSettings()
    for name in setting_names():
        monkeypatch.setenv(name, "")
    from_empty = BotSettings()
    assert from_empty == defaults
    assert from_empty.slack_app_token is None  # not Socket Mode with an empty token
    assert from_empty.concourse_team == "dev"
    monkeypatch.delenv("SLACK_APP_TOKEN")
    (tmp_path / ".env").write_text((ROOT / ".env.example").read_text())
    assert BotSettings() == defaults  # the template as it is changes nothing


def test_profiles_redis_and_the_bot() -> None:
    by_profile: dict[str, set[str]] = {}
    for name, service in services().items():
        for profile in service.get("profiles", ["(always)"]):
            by_profile.setdefault(profile, set()).add(name)
    assert by_profile["(always)"] == {"redis"}
    assert by_profile["live"] == {"bot", "worker-1", "worker-2"}
    assert by_profile["simulated"] == {
        "simulators",
        "simulated-bot",
        "simulated-worker-1",
        "simulated-worker-2",
    }
    assert by_profile["dashboard"] == {"rq-dashboard"}

    redis = services()["redis"]
    assert redis["command"][1:3] == ["--appendonly", "yes"]
    volume = redis["volumes"][0].split(":")[0]
    assert volume in compose()["volumes"]  # a named volume, not a bind mount

    bot = services()["bot"]
    assert bot["command"] == ["bot"]
    assert bot["ports"] == ["${PORT:-3000}:${PORT:-3000}"]
    assert "/healthz" in " ".join(bot["healthcheck"]["test"])
    for worker in ("worker-1", "worker-2"):
        assert services()[worker]["command"] == ["worker"]
    dashboard = services()["rq-dashboard"]["environment"]["RQ_DASHBOARD_REDIS_URL"]
    assert dashboard == services()["bot"]["environment"]["REDIS_URL"].split(":-")[1].rstrip("}")


def test_the_simulated_processes_get_what_the_simulators_serve() -> None:
    assert services()["simulators"]["entrypoint"] == ["python", "-m", "simulators.stack"]
    for name in ("simulated-bot", "simulated-worker-1", "simulated-worker-2"):
        service = services()[name]
        assert service["network_mode"] == "service:simulators"  # 127.0.0.1 is the simulators'
        environment = dict(service["environment"])
        assert environment.pop("REDIS_URL") == "redis://redis:6379/0"
        environment.pop("LOG_LEVEL")
        environment.pop("DEPLOY_MONITOR_METRICS_PORT", None)
        assert environment == stack.SETTINGS
    published = services()["simulators"]["ports"][0].split(":")
    assert published[-1] == stack.SETTINGS["PORT"]
