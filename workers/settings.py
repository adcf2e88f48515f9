"""Engine settings, read from the environment and `.env` (pydantic-settings).

Every field is optional at load time; each command asks for what it uses with `require_*`, so
`watch` never needs Slack settings and a missing setting stops start-up with one line naming it.
Secrets are `SecretStr`: they print as `**********`.
"""

from __future__ import annotations

from typing import TypeVar
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError

from workers.errors import ConfigError

S = TypeVar("S", bound="EngineSettings")

DEFAULT_SENTINEL_PORT = 26379
SENTINELS_FORMAT = "must be host:port, host:port, … (the sentinels, comma separated)"


def _env(name: str) -> AliasChoices:
    return AliasChoices(name, name.lower())


class EngineSettings(BaseSettings):
    """What the engine (workers, `watch`, `demo`) reads. Names are fixed: deployments use them."""

    # An empty value means unset, as in `.env.example` and compose's `${NAME:-}`: an empty
    # SLACK_APP_TOKEN must not switch on Socket Mode, nor an empty CONCOURSE_TEAM override "dev".
    model_config = SettingsConfigDict(
        env_file=".env", extra="ignore", populate_by_name=True, env_ignore_empty=True
    )

    redis_url: str = Field("redis://localhost:6379/0", validation_alias=_env("REDIS_URL"))
    # Redis Sentinel instead of one server (workers/connection.py): the sentinels name the
    # master; REDIS_URL then gives only its database, password and TLS (rediss://).
    redis_sentinels: str | None = Field(None, validation_alias=_env("REDIS_SENTINELS"))
    redis_sentinel_master: str = Field(
        "mymaster", min_length=1, validation_alias=_env("REDIS_SENTINEL_MASTER")
    )
    redis_sentinel_password: SecretStr | None = Field(
        None, validation_alias=_env("REDIS_SENTINEL_PASSWORD")
    )
    concourse_url: str | None = Field(None, validation_alias=_env("CONCOURSE_URL"))
    concourse_team: str = Field("dev", validation_alias=_env("CONCOURSE_TEAM"))
    concourse_username: str | None = Field(None, validation_alias=_env("CONCOURSE_USERNAME"))
    concourse_password: SecretStr | None = Field(None, validation_alias=_env("CONCOURSE_PASSWORD"))
    concourse_token: SecretStr | None = Field(None, validation_alias=_env("CONCOURSE_TOKEN"))
    github_token: SecretStr | None = Field(None, validation_alias=_env("GITHUB_TOKEN"))
    github_repository: str = Field(
        "GaloyMoney/lana-bank", validation_alias=_env("GITHUB_REPOSITORY")
    )
    github_api_url: str = Field("https://api.github.com", validation_alias=_env("GITHUB_API_URL"))
    github_graphql_url: str | None = Field(None, validation_alias=_env("GITHUB_GRAPHQL_URL"))
    poll_seconds: float = Field(30.0, gt=0, validation_alias=_env("DEPLOY_MONITOR_POLL_SECONDS"))
    chain: str | None = Field(None, validation_alias=_env("DEPLOY_MONITOR_CHAIN"))
    # Several repositories, each with its chain: a directory of chain files, or chain files
    # and bundled names separated by commas; each chain names its `repository`
    # (workers/repositories.py). Unset: GITHUB_REPOSITORY with DEPLOY_MONITOR_CHAIN.
    chains: str | None = Field(None, validation_alias=_env("DEPLOY_MONITOR_CHAINS"))
    # A tick holds the monitor's lock at most this long; a killed tick frees it after this.
    tick_timeout: float = Field(60.0, gt=0, validation_alias=_env("DEPLOY_MONITOR_TICK_TIMEOUT"))
    # How often the reaper looks for monitors whose chain of ticks broke.
    reap_seconds: float = Field(60.0, gt=0, validation_alias=_env("DEPLOY_MONITOR_REAP_SECONDS"))
    queue_name: str = Field("deploy-monitor", validation_alias=_env("DEPLOY_MONITOR_QUEUE"))
    # One request to Concourse, GitHub or Slack gives up after this long.
    http_timeout: float = Field(
        10.0, gt=0, le=60, validation_alias=_env("DEPLOY_MONITOR_HTTP_TIMEOUT")
    )
    # A job whose worker was killed is handed back to RQ this long after its timeout (RQ's
    # own margin is 60 s); a start job is then run again.
    job_grace: float = Field(60.0, ge=1, validation_alias=_env("DEPLOY_MONITOR_JOB_GRACE_SECONDS"))

    @field_validator("concourse_url", "github_api_url", "github_graphql_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None if value == "" else value
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http(s) URL")
        return value.rstrip("/")

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str) -> str:
        if not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must be a redis:// URL")
        return value

    @field_validator("redis_sentinels")
    @classmethod
    def _sentinels(cls, value: str | None) -> str | None:
        if value is None:
            return None
        return ",".join(format_address(host, port) for host, port in parse_sentinels(value))

    @field_validator("github_repository")
    @classmethod
    def _owner_repo(cls, value: str) -> str:
        parts = value.split("/")
        if len(parts) != 2 or not all(parts):
            raise ValueError("must look like owner/name")
        return value

    @property
    def sentinel_addresses(self) -> list[tuple[str, int]]:
        """REDIS_SENTINELS as (host, port) pairs; empty when Sentinel is not used."""
        return parse_sentinels(self.redis_sentinels) if self.redis_sentinels else []

    @property
    def redis_setting(self) -> str:
        """The setting to check when Redis does not answer."""
        return "REDIS_SENTINELS" if self.redis_sentinels else "REDIS_URL"

    @property
    def redis_location(self) -> str:
        """REDIS_URL without its password, or the Sentinel master and its sentinels, for
        messages."""
        if self.redis_sentinels:
            return f"master {self.redis_sentinel_master} via sentinels {self.redis_sentinels}"
        parts = urlsplit(self.redis_url)
        netloc = parts.hostname or ""
        if parts.port:
            netloc += f":{parts.port}"
        return f"{parts.scheme}://{netloc}{parts.path}"

    @property
    def github_host(self) -> str:
        """Where PR links point: github.com, or the host of a GitHub Enterprise Server
        (`https://HOST/api/v3`) or of a GHE.com tenant (`https://api.TENANT.ghe.com`)."""
        parts = urlsplit(self.github_api_url)
        host = (parts.hostname or "").lower()
        if parts.path.rstrip("/").endswith("/api/v3"):
            return host
        if host.startswith("api.") and host.endswith(".ghe.com"):
            return host.removeprefix("api.")
        return "github.com"

    @property
    def graphql_url(self) -> str:
        return self.github_graphql_url or f"{self.github_api_url}/graphql"

    def require_concourse(self) -> None:
        """Concourse needs a URL and either a token or a username and password."""
        if not self.concourse_url:
            raise ConfigError("CONCOURSE_URL is not set")
        if self.concourse_token is None:
            if not self.concourse_username:
                raise ConfigError(
                    "CONCOURSE_USERNAME (with CONCOURSE_PASSWORD) or CONCOURSE_TOKEN is not set"
                )
            if self.concourse_password is None:
                raise ConfigError("CONCOURSE_PASSWORD is not set")

    def require_github(self) -> None:
        if self.github_token is None:
            raise ConfigError("GITHUB_TOKEN is not set")


def parse_sentinels(text: str) -> list[tuple[str, int]]:
    """`host:port,host:port` (the port defaults to Sentinel's 26379; IPv6 as `[::1]:26379`)."""
    addresses: list[tuple[str, int]] = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        parts = urlsplit(f"//{item}")
        try:
            port = DEFAULT_SENTINEL_PORT if parts.port is None else parts.port
        except ValueError:  # not a number, or out of range
            port = 0
        if not parts.hostname or not port or parts.username or parts.path or parts.query:
            raise ValueError(SENTINELS_FORMAT)
        addresses.append((parts.hostname, port))
    if not addresses:
        raise ValueError(SENTINELS_FORMAT)
    return addresses


def format_address(host: str, port: int) -> str:
    """host:port, with an IPv6 host in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def load_settings(cls: type[S]) -> S:
    """Load settings, turning a validation error into one line that names the setting."""
    try:
        return cls()
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc)) from None
    except SettingsError as exc:
        # pydantic-settings names the field in lower case: "error parsing value for field "x""
        raise ConfigError(str(exc).split(" from source")[0]) from None


def describe_validation_error(exc: ValidationError) -> str:
    """`NAME: problem` for the first invalid setting; never echoes the value (it may be secret)."""
    first = exc.errors()[0]
    field = str(first["loc"][0]) if first["loc"] else "settings"
    return f"{field.upper()}: {first['msg']}"
