"""`deploy-monitor check`: is this deployment set up right? One line per check.

    OK settings: …
    OK concourse team dev: role viewer; reruns NOT allowed: … need the pipeline-operator role
    PROBLEM concourse team dev: user deploy-bot has no role in it (its teams: main)
    PROBLEM lana-bank/repo ignore_paths: live has "ci/*.yml", chain has "ci/*"

It validates the settings and the chain, then asks every dependency what the bot will need
from it: Redis (ping, version), Concourse (login, a role in the team), GitHub (token, the
repository, permission to merge), Slack when `SLACK_BOT_TOKEN` is set (auth.test and the
granted scopes against the manifest's), and finally the chain against the live pipeline
configs: every stage's jobs exist, each matched input is a `get` step of those jobs fetching
the expected resource, and the git resources' `paths`/`ignore_paths` are the ones the chain
describes (drift is reported one line per resource and field).

Lines start with OK, PROBLEM or SKIP (not checked, and why). Exit 0 when there is no problem,
1 otherwise. Nothing secret is printed: messages come from the clients, which never include
credentials.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import redis
from slack_sdk.errors import SlackApiError

from bot.logs import redact_settings
from bot.slack.client import classify, web_client
from bot.slack.payloads import AuthTest, SlackPayloadError
from bot.slack.settings import BotSettings
from workers import clients, connection
from workers.chain import Chain, GitResource, Stage
from workers.concourse import (
    RERUN_ROLE_NEEDED,
    RERUN_ROLES,
    ConcourseClient,
    PipelineConfig,
    UserInfo,
)
from workers.errors import (
    ConcourseError,
    ConcourseNotFound,
    ConfigError,
    GitHubAuthError,
    GitHubError,
    GitHubNotFound,
)
from workers.github import MERGE_PERMISSIONS, GitHubClient, RepositoryAccess
from workers.repositories import ServedRepositories, load_repositories
from workers.settings import load_settings

EXIT_OK, EXIT_PROBLEMS = 0, 1
# The bot's scopes, as manifest.yml asks for them (tests/test_check.py keeps the two equal).
REQUIRED_SLACK_SCOPES = frozenset(
    {
        "commands",
        "chat:write",
        "channels:read",
        "groups:read",
        "channels:join",
        "reactions:read",
        "reactions:write",
        "im:write",
        "channels:history",
        "groups:history",
        "im:history",
        "users:read.email",  # users.lookupByEmail: commit authors hear about their change
    }
)
# The store keeps each monitor's events in a Redis stream (XADD), new in Redis 5.
MIN_REDIS_MAJOR = 5
REDIS_TIMEOUT_SECONDS = 5.0
FILTER_FIELDS = ("paths", "ignore_paths")

Status = Literal["OK", "PROBLEM", "SKIP"]


@dataclass(frozen=True)
class Finding:
    """The outcome of one check."""

    status: Status
    subject: str
    detail: str

    @property
    def line(self) -> str:
        return f"{self.status} {self.subject}: {self.detail}"


@dataclass
class Checker:
    """Runs the checks in order, echoing each finding as it is made."""

    echo: Callable[[str], None]
    findings: list[Finding] = field(default_factory=list)

    def report(self, status: Status, subject: str, detail: str) -> bool:
        """Record and print one finding; returns whether it was OK."""
        finding = Finding(status, subject, detail)
        self.findings.append(finding)
        self.echo(finding.line)
        return status == "OK"

    @property
    def problems(self) -> int:
        return sum(f.status == "PROBLEM" for f in self.findings)

    # -- the whole run --------------------------------------------------------------------

    def run(self, load: Callable[[], BotSettings] | None = None) -> int:
        """Every check; returns the exit code."""
        try:
            settings = (load or (lambda: load_settings(BotSettings)))()
        except ConfigError as exc:
            self.report("PROBLEM", "settings", str(exc))
            return self.finish()
        redact_settings(settings)  # httpx logs requests at INFO; secrets stay out of them
        concourse_ready, github_ready = self.check_settings(settings)
        served = self.check_chains(settings)
        self.check_redis(settings)
        concourse = self.concourse_client(settings) if concourse_ready else None
        try:
            user = self.check_concourse(settings, concourse) if concourse else None
            if github_ready:
                names = served.names if served is not None else (settings.github_repository,)
                self.check_github(settings, names)
            if settings.slack_bot_token is not None:
                self.check_slack(settings)
            else:
                self.report("SKIP", "slack", "SLACK_BOT_TOKEN is not set (terminal use only)")
            if served is not None and concourse is not None and user is not None:
                configs: dict[str, PipelineConfig | None] = {}
                for repository in served:
                    self.check_pipelines(repository.chain, concourse, configs)
            elif served is not None:
                self.report("SKIP", "pipelines", "checked once the Concourse login and role work")
        finally:
            if concourse is not None:
                concourse.close()
        return self.finish()

    def finish(self) -> int:
        problems = self.problems
        if problems:
            self.echo(f"{problems} problem{'s' if problems != 1 else ''} found.")
            return EXIT_PROBLEMS
        skipped = sum(f.status == "SKIP" for f in self.findings)
        self.echo(f"No problems: {len(self.findings) - skipped} OK, {skipped} skipped.")
        return EXIT_OK

    # -- settings and chain ---------------------------------------------------------------

    def check_settings(self, settings: BotSettings) -> tuple[bool, bool]:
        """Each front end's required settings; returns (Concourse usable, GitHub usable)."""
        self.report(
            "OK",
            "settings",
            f"parsed (Concourse team {settings.concourse_team}, repository "
            f"{settings.github_repository}, poll every {settings.poll_seconds:g}s, "
            f"queue {settings.queue_name})",
        )
        concourse = self._required("concourse settings", settings.require_concourse)
        github = self._required("github settings", settings.require_github)
        if settings.slack_bot_token is not None:
            # The signing secret is for `deploy-monitor bot` over HTTP; Socket Mode needs none.
            self._required("slack settings", lambda: settings.require_slack(serving=True))
        return concourse, github

    def _required(self, subject: str, require: Callable[[], None]) -> bool:
        try:
            require()
        except ConfigError as exc:
            return self.report("PROBLEM", subject, str(exc))
        return True

    def check_chains(self, settings: BotSettings) -> ServedRepositories | None:
        """Each served repository's chain (DEPLOY_MONITOR_CHAINS, or the one chain)."""
        try:
            served = load_repositories(settings)
        except ConfigError as exc:
            self.report("PROBLEM", "chain", str(exc))
            return None
        for repository in served:
            chain = repository.chain
            pipelines = _chain_pipelines(chain)
            whose = f" for {repository.name} ({repository.source})" if served.several else ""
            self.report(
                "OK",
                f"chain {chain.name}",
                f"{_count(chain.stages, 'stage')} in {_count(pipelines, 'pipeline')} "
                f"({', '.join(pipelines)}), {_count(chain.paths, 'path')}{whose}",
            )
        return served

    # -- Redis ----------------------------------------------------------------------------

    def check_redis(self, settings: BotSettings) -> None:
        where = settings.redis_location
        conn = connection.connect(
            settings,
            socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
            socket_timeout=REDIS_TIMEOUT_SECONDS,
        )
        try:
            conn.ping()
            server = conn.info("server")
            persistence = conn.info("persistence")
            master = connection.reached(conn)
        except redis.RedisError as exc:
            self.report("PROBLEM", "redis", f"no answer from {where} ({type(exc).__name__})")
            return
        finally:
            conn.close()
        if master is not None:
            where = f"{master}, {where}"  # which server the sentinels named
        version = str(server.get("redis_version", "?"))
        major = int(version.split(".")[0]) if version.split(".")[0].isdigit() else 0
        if major < MIN_REDIS_MAJOR:
            self.report(
                "PROBLEM", "redis", f"Redis {version} at {where}; deploy-monitor needs 5 or later"
            )
            return
        aof = (
            "on"
            if persistence.get("aof_enabled")
            else "off: set appendonly yes so monitors survive a restart"
        )
        self.report("OK", "redis", f"Redis {version} at {where} (append-only file {aof})")

    # -- Concourse ------------------------------------------------------------------------

    @staticmethod
    def concourse_client(settings: BotSettings) -> ConcourseClient:
        """The client the workers use (`Engine.concourse`): the same factory."""
        return clients.concourse_client(settings)

    @staticmethod
    def github_client(settings: BotSettings, repository: str | None = None) -> GitHubClient:
        """The client the workers use (`Engine.github_for`): the same factory."""
        return clients.github_client(settings, repository)

    def check_concourse(self, settings: BotSettings, client: ConcourseClient) -> UserInfo | None:
        """Login, then the role in the team; returns who we are when both are fine."""
        how = "with CONCOURSE_TOKEN" if settings.concourse_token else "with the password grant"
        try:
            user = client.user()
        except ConcourseError as exc:
            self.report("PROBLEM", "concourse login", f"{client.base_url}: {exc}")
            return None
        version = f"Concourse {client.server_version}" if client.server_version else "Concourse"
        self.report(
            "OK",
            "concourse login",
            f"{user.user_name or 'user'} {how} at {client.base_url} ({version})",
        )
        team = settings.concourse_team
        roles = user.teams.get(team)
        if roles:
            detail = f"role {', '.join(roles)}; {_reruns(roles, admin=user.is_admin)}"
            self.report("OK", f"concourse team {team}", detail)
            return user
        if user.is_admin:
            detail = f"admin (every team is visible); {_reruns([], admin=True)}"
            self.report("OK", f"concourse team {team}", detail)
            return user
        others = ", ".join(sorted(user.teams)) or "none"
        self.report(
            "PROBLEM",
            f"concourse team {team}",
            f"user {user.user_name or '?'} has no role in it (its teams: {others}); "
            f"add it to the team (fly set-team) or set CONCOURSE_TEAM",
        )
        return None

    # -- GitHub ---------------------------------------------------------------------------

    def check_github(
        self, settings: BotSettings, repositories: Sequence[str] | None = None
    ) -> None:
        """The token, then each repository: visible, and whether the token may merge."""
        token_accepted = False
        names = tuple(repositories or (settings.github_repository,))
        for repository in names:
            with self.github_client(settings, repository) as client:
                try:
                    access = client.repository_access()
                except GitHubAuthError as exc:
                    self.report("PROBLEM", "github token", str(exc))
                    return  # the same token for every repository: no use asking again
                except GitHubNotFound as exc:
                    token_accepted = token_accepted or self._token_accepted(settings)
                    self.report("PROBLEM", f"github repository {repository}", str(exc))
                    continue
                except GitHubError as exc:
                    self.report("PROBLEM", "github", str(exc))
                    continue
            token_accepted = token_accepted or self._token_accepted(settings)
            self._check_repository(access, repository, several=len(names) > 1)

    def _token_accepted(self, settings: BotSettings) -> bool:
        return self.report("OK", "github token", f"accepted by {settings.graphql_url}")

    def _check_repository(
        self, access: RepositoryAccess, repository: str, *, several: bool = False
    ) -> None:
        branch = f"default branch {access.default_branch}" if access.default_branch else "visible"
        self.report("OK", f"github repository {access.name_with_owner}", branch)
        subject = (
            f"github merge permission on {repository}" if several else "github merge permission"
        )
        if access.can_merge is None:
            self.report(
                "SKIP",
                subject,
                "GitHub does not report it for this token; merging needs contents: write",
            )
        elif access.can_merge:
            self.report("OK", subject, f"{access.viewer_permission} (can squash-merge PRs)")
        else:
            needed = ", ".join(sorted(MERGE_PERMISSIONS))
            self.report(
                "PROBLEM",
                subject,
                f"the token has {access.viewer_permission} on {repository}; merging approved "
                f"PRs needs one of {needed}",
            )

    # -- Slack ----------------------------------------------------------------------------

    def check_slack(self, settings: BotSettings) -> None:
        client = web_client(settings)
        try:
            answer = AuthTest.parse(client.auth_test())
        except SlackApiError as exc:
            failure = classify(exc)
            self.report(
                "PROBLEM",
                "slack auth",
                f"auth.test answered {failure.error or failure.status} at "
                f"{settings.slack_api_url} (is SLACK_BOT_TOKEN the bot token, xoxb-…?)",
            )
            return
        except OSError as exc:  # urllib: refused, DNS, timeout
            self.report("PROBLEM", "slack auth", f"{settings.slack_api_url} unreachable ({exc})")
            return
        except SlackPayloadError as exc:
            self.report("PROBLEM", "slack auth", f"auth.test answered oddly ({exc})")
            return
        self.report(
            "OK",
            "slack auth",
            f"bot {answer.user} ({answer.user_id}) in workspace {answer.team} ({answer.team_id})",
        )
        granted = answer.scopes
        if granted is None:
            self.report("SKIP", "slack scopes", "Slack did not say which scopes the token has")
            return
        missing = sorted(REQUIRED_SLACK_SCOPES - granted)
        if missing:
            self.report(
                "PROBLEM",
                "slack scopes",
                f"missing {', '.join(missing)}: add them as in manifest.yml and reinstall the app",
            )
            return
        extra = sorted(granted - REQUIRED_SLACK_SCOPES)
        note = f" (also granted: {', '.join(extra)})" if extra else ""
        self.report("OK", "slack scopes", f"all {len(REQUIRED_SLACK_SCOPES)} of manifest.yml{note}")

    # -- the chain against the live pipelines ---------------------------------------------

    def check_pipelines(
        self,
        chain: Chain,
        client: ConcourseClient,
        configs: dict[str, PipelineConfig | None] | None = None,
    ) -> None:
        """The chain's stages and filters against the live pipelines. `configs`: pipelines
        read (None: not found) for an earlier chain, which share them, read and said once."""
        configs = {} if configs is None else configs
        for pipeline in _chain_pipelines(chain):
            if pipeline in configs:
                known = configs[pipeline]
                if known is not None:
                    self._check_pipeline(chain, pipeline, known)
                continue
            configs[pipeline] = None
            try:
                config = client.pipeline_config(pipeline)
            except ConcourseNotFound:
                self.report(
                    "PROBLEM",
                    f"pipeline {pipeline}",
                    f"not found in team {client.team} (or archived)",
                )
                continue
            except ConcourseError as exc:
                self.report("PROBLEM", f"pipeline {pipeline}", str(exc))
                continue
            configs[pipeline] = config
            version = f"config version {config.version}, " if config.version is not None else ""
            self.report(
                "OK",
                f"pipeline {pipeline}",
                f"{version}{_count(config.jobs, 'job')}, {_count(config.resources, 'resource')}",
            )
            self._check_pipeline(chain, pipeline, config)

    def _check_pipeline(self, chain: Chain, pipeline: str, config: PipelineConfig) -> None:
        """The chain's stages in `pipeline`, and its filters, against the live config."""
        missing_resources: set[str] = set()
        for stage in chain.stages:
            if stage.pipeline == pipeline:
                self._check_stage(stage, config, missing_resources)
        self._check_filters(chain, pipeline, config, missing_resources)

    def _check_stage(self, stage: Stage, config: PipelineConfig, missing: set[str]) -> None:
        """The stage's jobs exist and each gets the matched input from the right resource."""
        pipeline, ok = stage.pipeline, True
        for job_name in stage.jobs:
            if config.job(job_name) is None:
                ok = self.report(
                    "PROBLEM",
                    f"{pipeline}/{job_name}",
                    f"job of stage {stage.id} is not in the live pipeline",
                )
        wanted_input, wanted_resource = stage.match.input, stage.match.resource_name
        if wanted_input is not None and wanted_resource is not None:
            if config.resource(wanted_resource) is None:
                missing.add(wanted_resource)
                ok = self.report(
                    "PROBLEM",
                    f"{pipeline}/{wanted_resource}",
                    f"resource matched by stage {stage.id} is not in the live pipeline",
                )
            for job_name in stage.jobs:
                job = config.job(job_name)
                if job is None:
                    continue
                steps = [s for s in job.get_steps() if s.name == wanted_input]
                if not steps:
                    ok = self.report(
                        "PROBLEM",
                        f"{pipeline}/{job_name}",
                        f"has no input {wanted_input} (no `get: {wanted_input}` step); "
                        f"stage {stage.id} matches builds on it",
                    )
                elif all(s.resource != wanted_resource for s in steps):
                    ok = self.report(
                        "PROBLEM",
                        f"{pipeline}/{job_name}",
                        f"input {wanted_input} gets resource {steps[0].resource}, the chain "
                        f"expects {wanted_resource}",
                    )
        if ok:
            what = f"; input {wanted_input} from resource {wanted_resource}" if wanted_input else ""
            self.report(
                "OK",
                f"{pipeline} stage {stage.id}",
                f"jobs {', '.join(stage.jobs)}{what}",
            )

    def _check_filters(
        self, chain: Chain, pipeline: str, config: PipelineConfig, missing: set[str]
    ) -> None:
        """The chain's path filters of each git resource against the live `source`."""
        described = chain.pipelines.get(pipeline)
        described_resources = described.resources if described else {}
        matched = {
            s.match.resource_name
            for s in chain.stages
            if s.pipeline == pipeline and s.match.resource_name is not None
        }
        for name in [*described_resources, *sorted(matched - set(described_resources))]:
            if name in missing:
                continue  # already reported
            live = config.resource(name)
            if live is None:
                self.report(
                    "PROBLEM",
                    f"{pipeline}/{name}",
                    "resource described in the chain is not in the live pipeline",
                )
                continue
            expected = described_resources.get(name, GitResource())
            drifted = False
            for key in FILTER_FIELDS:
                drift = _drift(live.source_strings(key), getattr(expected, key))
                if drift:
                    drifted = not self.report("PROBLEM", f"{pipeline}/{name} {key}", drift)
            if not drifted:
                self.report("OK", f"{pipeline}/{name}", "paths and ignore_paths match the chain")


def _reruns(roles: Sequence[str], *, admin: bool) -> str:
    """Whether the Rerun button (and `--on-failure rerun`) will work with these roles."""
    if admin or any(role in RERUN_ROLES for role in roles):
        return "reruns allowed (the Rerun button works)"
    return (
        f"reruns NOT allowed: the Rerun button and --on-failure rerun need the "
        f"{RERUN_ROLE_NEEDED} role or above (member, owner); fly set-team can give it"
    )


def _chain_pipelines(chain: Chain) -> list[str]:
    """The pipelines a chain uses, in the order its stages (then its descriptions) name them."""
    names = [stage.pipeline for stage in chain.stages] + list(chain.pipelines)
    return list(dict.fromkeys(names))


def _drift(live: Iterable[str], chain: Iterable[str]) -> str | None:
    """`live has "a", chain has "b"` for the patterns only one side has; None when equal."""
    live_list, chain_list = list(live), list(chain)
    live_only = [p for p in live_list if p not in chain_list]
    chain_only = [p for p in chain_list if p not in live_list]
    if not live_only and not chain_only:
        return None
    quoted = ", ".join
    if live_only and chain_only:
        return (
            f"live has {quoted(map(_quote, live_only))}, "
            f"chain has {quoted(map(_quote, chain_only))}"
        )
    if live_only:
        return f"live has {quoted(map(_quote, live_only))}, the chain does not"
    return f"chain has {quoted(map(_quote, chain_only))}, live does not"


def _count(items: Sequence[Any], noun: str) -> str:
    return f"{len(items)} {noun}{'' if len(items) == 1 else 's'}"


def _quote(pattern: str) -> str:
    return f'"{pattern}"'


def run_checks(echo: Callable[[str], None], load: Callable[[], BotSettings] | None = None) -> int:
    """Run every check, printing one line each; returns the exit code (0 = no problem)."""
    return Checker(echo).run(load)
