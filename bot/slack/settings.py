"""Settings of the Slack face, on top of the engine's (`workers.settings`)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import NoDecode

from workers.errors import ConfigError
from workers.settings import EngineSettings, _env


def _ids(value: object) -> frozenset[str]:
    """`U1,U2` or `U1 U2` → {"U1", "U2"}; empty → nobody listed."""
    if isinstance(value, frozenset | set | list | tuple):
        return frozenset(str(v).strip() for v in value if str(v).strip())
    text = str(value or "").replace(",", " ")
    return frozenset(part for part in text.split() if part)


class BotSettings(EngineSettings):
    """Everything `deploy-monitor bot` and a Slack-posting worker read."""

    slack_bot_token: SecretStr | None = Field(None, validation_alias=_env("SLACK_BOT_TOKEN"))
    slack_signing_secret: SecretStr | None = Field(
        None, validation_alias=_env("SLACK_SIGNING_SECRET")
    )
    slack_app_token: SecretStr | None = Field(None, validation_alias=_env("SLACK_APP_TOKEN"))
    slack_api_url: str = Field("https://slack.com/api/", validation_alias=_env("SLACK_API_URL"))
    port: int = Field(3000, ge=1, le=65535, validation_alias=_env("PORT"))
    # Slack user ids; empty = anyone may trigger a merge.
    mergers: Annotated[frozenset[str], NoDecode] = Field(
        frozenset(), validation_alias=_env("DEPLOY_MONITOR_MERGERS")
    )
    # Slack user ids who may decide continue/stop for anyone's monitor.
    admins: Annotated[frozenset[str], NoDecode] = Field(
        frozenset(), validation_alias=_env("DEPLOY_MONITOR_ADMINS")
    )
    dm_requester: bool = Field(True, validation_alias=_env("DEPLOY_MONITOR_DM_REQUESTER"))
    # How long the work behind one /deploy-monitor (approval check, merge, first post) may take.
    start_timeout: float = Field(60.0, ge=5, validation_alias=_env("DEPLOY_MONITOR_START_TIMEOUT"))

    @field_validator("mergers", "admins", mode="before")
    @classmethod
    def _split_ids(cls, value: object) -> frozenset[str]:
        return _ids(value)

    @field_validator("slack_api_url")
    @classmethod
    def _api_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http(s) URL")
        return value if value.endswith("/") else value + "/"

    @property
    def socket_mode(self) -> bool:
        return self.slack_app_token is not None

    def require_slack(self, *, serving: bool = False) -> None:
        """Posting needs the bot token; serving HTTP also needs the signing secret."""
        if self.slack_bot_token is None:
            raise ConfigError("SLACK_BOT_TOKEN is not set")
        if serving and not self.socket_mode and self.slack_signing_secret is None:
            raise ConfigError(
                "SLACK_SIGNING_SECRET is not set (or set SLACK_APP_TOKEN for Socket Mode)"
            )

    @property
    def slack_enabled(self) -> bool:
        return self.slack_bot_token is not None

    def may_merge(self, user_id: str) -> bool:
        return not self.mergers or user_id in self.mergers
