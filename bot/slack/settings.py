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


_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> float:
    """`90`, `90s`, `30m`, `1h`, `2d` → seconds."""
    value = text.strip().lower()
    unit = _UNIT_SECONDS.get(value[-1:], 0)
    number = value[:-1] if unit else value
    try:
        return float(number) * (unit or 1)
    except ValueError:
        raise ValueError("must be seconds, or a number with s, m, h or d (e.g. 1h)") from None


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

    # The digest of what waits on main (bot/slack/digest.py): posted once a day, during this
    # UTC hour, in every subscribed channel; unset: no digest.
    digest_hour: int | None = Field(
        None, ge=0, le=23, validation_alias=_env("DEPLOY_MONITOR_DIGEST_HOUR")
    )
    # A commit is listed once it has waited this long (seconds, or `90s`, `30m`, `1h`, `2d`).
    digest_min_age: float = Field(
        3600.0, ge=0, validation_alias=_env("DEPLOY_MONITOR_DIGEST_MIN_AGE")
    )

    @field_validator("digest_min_age", mode="before")
    @classmethod
    def _duration(cls, value: object) -> object:
        return parse_duration(value) if isinstance(value, str) else value

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
