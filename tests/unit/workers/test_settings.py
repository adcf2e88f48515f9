"""Settings: names fixed, one clear line per problem, secrets never printed."""

from __future__ import annotations

import pytest

from workers.errors import ConfigError
from workers.settings import EngineSettings, load_settings

ALL = [
    "REDIS_URL",
    "CONCOURSE_URL",
    "CONCOURSE_TEAM",
    "CONCOURSE_USERNAME",
    "CONCOURSE_PASSWORD",
    "CONCOURSE_TOKEN",
    "GITHUB_TOKEN",
    "GITHUB_REPOSITORY",
    "GITHUB_API_URL",
    "GITHUB_GRAPHQL_URL",
    "DEPLOY_MONITOR_POLL_SECONDS",
    "DEPLOY_MONITOR_CHAIN",
]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    for name in ALL:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(str(tmp_path))  # no stray .env


def test_defaults() -> None:
    s = load_settings(EngineSettings)
    assert s.redis_url == "redis://localhost:6379/0"
    assert s.concourse_team == "dev"
    assert s.github_repository == "GaloyMoney/lana-bank"
    assert s.github_api_url == "https://api.github.com"
    assert s.graphql_url == "https://api.github.com/graphql"
    assert s.poll_seconds == 30.0


@pytest.mark.parametrize(
    ("api_url", "host"),
    [
        ("https://api.github.com", "github.com"),
        ("https://ghe.example.com/api/v3", "ghe.example.com"),
        ("https://GHE.example.com/api/v3/", "ghe.example.com"),
        ("https://api.octocorp.ghe.com", "octocorp.ghe.com"),
        ("http://127.0.0.1:8080", "github.com"),  # a simulator stands in for github.com
    ],
)
def test_pr_links_are_read_on_the_web_host_of_the_api(api_url: str, host: str) -> None:
    assert EngineSettings(github_api_url=api_url).github_host == host


def test_env_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEPLOY_MONITOR_POLL_SECONDS", "0.25")
    monkeypatch.setenv("GITHUB_API_URL", "https://ghe.example.com/api/v3/")
    monkeypatch.setenv("GITHUB_GRAPHQL_URL", "https://ghe.example.com/api/graphql")
    monkeypatch.setenv("REDIS_URL", "redis://localhost:6379/7")
    s = load_settings(EngineSettings)
    assert s.poll_seconds == 0.25
    assert s.github_api_url == "https://ghe.example.com/api/v3"
    assert s.graphql_url == "https://ghe.example.com/api/graphql"
    assert s.redis_url.endswith("/7")


def test_dotenv_is_read(tmp_path: object) -> None:
    with open(".env", "w") as handle:
        handle.write("CONCOURSE_TEAM=platform\n")
    assert load_settings(EngineSettings).concourse_team == "platform"


@pytest.mark.parametrize(
    ("name", "value", "needle"),
    [
        ("DEPLOY_MONITOR_POLL_SECONDS", "often", "DEPLOY_MONITOR_POLL_SECONDS"),
        ("DEPLOY_MONITOR_POLL_SECONDS", "0", "DEPLOY_MONITOR_POLL_SECONDS"),
        ("REDIS_URL", "localhost", "REDIS_URL"),
        ("CONCOURSE_URL", "ci.example.com", "CONCOURSE_URL"),
        ("GITHUB_REPOSITORY", "lana-bank", "GITHUB_REPOSITORY"),
    ],
)
def test_malformed_setting_is_one_line_naming_it(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, needle: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as caught:
        load_settings(EngineSettings)
    message = str(caught.value)
    assert message.startswith(needle) and "\n" not in message


def test_commands_require_only_what_they_use(monkeypatch: pytest.MonkeyPatch) -> None:
    s = load_settings(EngineSettings)
    with pytest.raises(ConfigError, match="CONCOURSE_URL"):
        s.require_concourse()
    monkeypatch.setenv("CONCOURSE_URL", "https://ci.example.com")
    monkeypatch.setenv("CONCOURSE_USERNAME", "bot")
    with pytest.raises(ConfigError, match="CONCOURSE_PASSWORD"):
        load_settings(EngineSettings).require_concourse()
    monkeypatch.setenv("CONCOURSE_PASSWORD", "hunter2-secret")
    load_settings(EngineSettings).require_concourse()
    with pytest.raises(ConfigError, match="GITHUB_TOKEN"):
        load_settings(EngineSettings).require_github()


def test_secrets_are_not_printed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONCOURSE_PASSWORD", "hunter2-secret")
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_verysecret")
    s = EngineSettings()
    assert "hunter2-secret" not in repr(s) and "ghp_verysecret" not in str(s)
