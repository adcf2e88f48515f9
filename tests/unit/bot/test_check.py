"""`deploy-monitor check` against the simulators: all OK on a healthy setup, then one PROBLEM
line (and exit 1) for each thing that can be wrong: pipeline drift, a missing job or input, bad
credentials, no team role, a missing Slack scope, an unreachable Redis."""

from __future__ import annotations

import copy
import re
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml
from click.testing import CliRunner
from pydantic import ValidationError

from bot.check import EXIT_OK, EXIT_PROBLEMS, REQUIRED_SLACK_SCOPES, Checker, run_checks
from bot.cli import main
from bot.slack.settings import BotSettings
from simulators.concourse import ConcourseSimulator
from simulators.env import simulated_env
from simulators.github import GitHubSimulator
from simulators.lana_bank import EDGE_IMAGES, RESOURCE_FILTERS, TESTS, LanaBankCI
from simulators.slack import SlackSimulator
from tests.conftest import CONCOURSE_PASSWORD, CONCOURSE_USER, GITHUB_TOKEN, REPOSITORY
from workers.chain import load_chain
from workers.concourse import JobConfig
from workers.errors import ConfigError
from workers.settings import describe_validation_error

SLACK_TOKEN = "xoxb-check-bot-token-0123456789"
SIGNING_SECRET = "check-signing-secret-0123456789"
MANIFEST = Path(__file__).resolve().parents[3] / "manifest.yml"


def git(
    name: str, repo: str, paths: list[str] | None = None, ignore: list[str] | None = None
) -> dict[str, Any]:
    """A git resource as the config API returns it (`((vars))` unresolved)."""
    source: dict[str, Any] = {
        "uri": f"git@github.com:GaloyMoney/{repo}.git",
        "branch": "main",
        "private_key": "((github-key))",
    }
    if paths:
        source["paths"] = list(paths)
    if ignore:
        source["ignore_paths"] = list(ignore)
    return {"name": name, "type": "git", "source": source}


def lana_bank_config() -> dict[str, Any]:
    """The lana-bank pipeline as `fly get-pipeline` would show it (JSON), with the simulated
    CI's path filters and `get` steps nested the ways real pipelines nest them."""
    resources = [
        git(name, "lana-bank", paths, ignore) for name, (paths, ignore) in RESOURCE_FILTERS.items()
    ]
    resources.append(git("pipeline-tasks", "lana-bank"))
    resources.append(
        {"name": "edge-image", "type": "registry-image", "source": {"repository": "x"}}
    )

    def test_job(name: str) -> dict[str, Any]:
        return {
            "name": name,
            "plan": [
                {
                    "in_parallel": {
                        "steps": [{"get": "repo", "trigger": True}, {"get": "pipeline-tasks"}]
                    }
                },
                {"task": name, "file": "pipeline-tasks/ci/tasks/test.yml"},
            ],
        }

    jobs = [test_job(name) for name in TESTS]
    jobs.append(
        {
            "name": "build-rc",
            "plan": [
                {"do": [{"get": "repo", "trigger": True, "passed": list(TESTS)}]},
                {"task": "build"},
            ],
        }
    )
    jobs.append(
        {
            "name": "open-promote-rc-pr",
            "plan": [{"try": {"get": "repo", "trigger": True, "passed": ["build-rc"]}}],
            "on_failure": {"put": "slack"},
        }
    )
    for resource, job in EDGE_IMAGES.items():
        jobs.append(
            {
                "name": job,
                "plan": [
                    {"get": resource, "trigger": True, "attempts": 2},
                    {"put": "edge-image", "params": {"image": "image/image.tar"}},
                ],
            }
        )
    jobs.append({"name": "release", "plan": [{"get": "repo", "passed": ["build-rc"]}]})
    jobs.append({"name": "bump-image-in-chart", "plan": [{"task": "bump"}]})
    return {"groups": [], "resources": resources, "jobs": jobs}


def charts_config() -> dict[str, Any]:
    return {
        "resources": [git("charts-repo", "charts")],
        "jobs": [
            {
                "name": "lana-bank-testflight",
                "plan": [{"get": "charts-repo", "trigger": True}],
                "ensure": {"task": "cleanup"},
            }
        ],
    }


def staging_config() -> dict[str, Any]:
    return {
        "resources": [git("lana-repo", "lana-bank")],
        "jobs": [
            {
                "name": "galoy-staging-lana-bank",
                "plan": [
                    {
                        "in_parallel": [  # the YAML shorthand: a bare list of steps
                            {"get": "lana-repo", "trigger": True},
                        ]
                    },
                    {"put": "deploy", "on_success": {"get": "smoke-inputs"}},
                ],
            }
        ],
    }


@dataclass
class Deployment:
    """Simulated Concourse (with pipeline configs), GitHub and Slack, and settings for them."""

    concourse: ConcourseSimulator
    github: GitHubSimulator
    slack: SlackSimulator
    env: dict[str, str]
    lines: list[str] = field(default_factory=list)

    def check(self, **overrides: str | None) -> int:
        env = {k: v for k, v in {**self.env, **overrides}.items() if v is not None}
        self.lines = []

        def load() -> BotSettings:
            try:
                return BotSettings.model_validate(env)
            except ValidationError as exc:  # as load_settings reports it
                raise ConfigError(describe_validation_error(exc)) from None

        return run_checks(self.lines.append, load=load)

    def problems(self) -> list[str]:
        return [line for line in self.lines if line.startswith("PROBLEM")]

    def set_lana_bank(self, config: dict[str, Any]) -> None:
        self.concourse.set_config("lana-bank", config)


@pytest.fixture
def deployment(redis_conn: redis.Redis, tmp_path: Path) -> Iterator[Deployment]:
    from tests.conftest import TEST_REDIS_URL

    concourse = ConcourseSimulator(team="dev", users={CONCOURSE_USER: CONCOURSE_PASSWORD})
    github = GitHubSimulator(repository=REPOSITORY, token=GITHUB_TOKEN)
    slack = SlackSimulator(token=SLACK_TOKEN, scopes=sorted(REQUIRED_SLACK_SCOPES))
    concourse.start()
    github.start()
    slack.start()
    LanaBankCI(concourse)  # the three pipelines, as the journeys use them
    concourse.set_config("lana-bank", lana_bank_config())
    concourse.set_config("private-charts", charts_config())
    concourse.set_config("galoy-staging", staging_config())
    env = {
        "REDIS_URL": TEST_REDIS_URL,
        **simulated_env(
            concourse, github, username=CONCOURSE_USER, queue="dm-check", poll_seconds=30
        ),
        "SLACK_BOT_TOKEN": SLACK_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": slack.api_url,
    }
    yield Deployment(concourse=concourse, github=github, slack=slack, env=env)
    slack.stop()
    github.stop()
    concourse.stop()


def without(config: dict[str, Any], job: str) -> dict[str, Any]:
    changed = copy.deepcopy(config)
    changed["jobs"] = [j for j in changed["jobs"] if j["name"] != job]
    return changed


def test_a_healthy_setup_is_all_ok(deployment: Deployment) -> None:
    code = deployment.check()
    out = "\n".join(deployment.lines)
    assert code == EXIT_OK, out
    assert deployment.problems() == []
    assert out.splitlines()[-1] == "No problems: 26 OK, 0 skipped."
    for needle in (
        "OK settings: parsed",
        "OK chain lana-bank: 8 stages in 3 pipelines",
        "OK redis: Redis ",
        f"OK concourse login: {CONCOURSE_USER} with the password grant",
        "(Concourse 7.11.2)",
        "OK concourse team dev: role member",
        "OK github token: accepted",
        f"OK github repository {REPOSITORY}: default branch main",
        "OK github merge permission: WRITE",
        "OK slack auth: bot deploy-monitor (U0BOT)",
        f"OK slack scopes: all {len(REQUIRED_SLACK_SCOPES)} of manifest.yml",
        "OK pipeline lana-bank: config version 1, 10 jobs, 6 resources",
        "OK lana-bank stage tests: jobs test-integration, test-bats, flake-check; input repo from "
        "resource repo",
        "OK lana-bank/repo: paths and ignore_paths match the chain",
        "OK lana-bank/dagster-src: paths and ignore_paths match the chain",
        "OK pipeline private-charts: config version 1, 1 job, 1 resource",
        "OK private-charts stage testflight: jobs lana-bank-testflight",
        "OK galoy-staging stage staging: jobs galoy-staging-lana-bank; input lana-repo",
        "OK galoy-staging/lana-repo: paths and ignore_paths match the chain",
    ):
        assert needle in out, f"{needle!r} not in:\n{out}"
    assert all(re.match(r"^(OK|SKIP) ", line) for line in deployment.lines[:-1])
    for secret in (GITHUB_TOKEN, CONCOURSE_PASSWORD, SLACK_TOKEN, SIGNING_SECRET):
        assert secret not in out


def test_a_resource_without_source_and_a_job_without_plan_are_fine(
    deployment: Deployment,
) -> None:
    """Real Concourse sends them as `"source": null` and `"plan": null`."""
    config = lana_bank_config()
    config["resources"].append({"name": "nightly", "type": "time", "source": None})
    config["jobs"].append({"name": "placeholder", "plan": None})
    deployment.set_lana_bank(config)
    assert deployment.check() == EXIT_OK, "\n".join(deployment.lines)
    assert "OK pipeline lana-bank: config version 2, 11 jobs, 7 resources" in deployment.lines


def test_path_filter_drift_is_reported_line_by_line(deployment: Deployment) -> None:
    config = lana_bank_config()
    for resource in config["resources"]:
        if resource["name"] == "repo":
            resource["source"]["ignore_paths"] = ["apps/**/*", "ci/*.yml"]
        if resource["name"] == "dagster-src":
            resource["source"]["paths"] = ["dagster/*", "dagster.yaml"]
        if resource["name"] == "admin-panel-src":
            resource["source"]["paths"].remove("pnpm-lock.yaml")
    deployment.set_lana_bank(config)
    assert deployment.check() == EXIT_PROBLEMS
    assert deployment.problems() == [
        'PROBLEM lana-bank/repo ignore_paths: live has "ci/*.yml", chain has "ci/*"',
        'PROBLEM lana-bank/admin-panel-src paths: chain has "pnpm-lock.yaml", live does not',
        'PROBLEM lana-bank/dagster-src paths: live has "dagster.yaml", the chain does not',
    ]
    assert "OK lana-bank/customer-portal-src: paths and ignore_paths match" in "\n".join(
        deployment.lines
    )
    assert deployment.lines[-1] == "3 problems found."


def test_a_filter_on_a_resource_the_chain_does_not_describe_is_drift(
    deployment: Deployment,
) -> None:
    config = staging_config()
    config["resources"][0]["source"]["paths"] = ["core/**"]
    deployment.concourse.set_config("galoy-staging", config)
    assert deployment.check() == EXIT_PROBLEMS
    assert deployment.problems() == [
        'PROBLEM galoy-staging/lana-repo paths: live has "core/**", the chain does not'
    ]


def test_a_missing_job_and_a_missing_input(deployment: Deployment) -> None:
    config = without(lana_bank_config(), "test-bats")
    build_rc = next(j for j in config["jobs"] if j["name"] == "build-rc")
    build_rc["plan"][0]["do"][0] = {"get": "source", "resource": "repo", "trigger": True}
    deployment.set_lana_bank(config)
    assert deployment.check() == EXIT_PROBLEMS
    assert deployment.problems() == [
        "PROBLEM lana-bank/test-bats: job of stage tests is not in the live pipeline",
        "PROBLEM lana-bank/build-rc: has no input repo (no `get: repo` step); "
        "stage build-rc matches builds on it",
    ]


def test_an_input_fetching_another_resource_and_a_missing_resource(
    deployment: Deployment,
) -> None:
    config = lana_bank_config()
    config["resources"] = [r for r in config["resources"] if r["name"] != "dagster-src"]
    job = next(j for j in config["jobs"] if j["name"] == "open-promote-rc-pr")
    job["plan"][0]["try"]["resource"] = "pipeline-tasks"
    deployment.set_lana_bank(config)
    assert deployment.check() == EXIT_PROBLEMS
    assert deployment.problems() == [
        "PROBLEM lana-bank/open-promote-rc-pr: input repo gets resource pipeline-tasks, "
        "the chain expects repo",
        "PROBLEM lana-bank/dagster-src: resource matched by stage dagster-image is not in the "
        "live pipeline",
    ]


def test_a_pipeline_that_is_not_there(deployment: Deployment, tmp_path: Path) -> None:
    data = load_chain().model_dump(mode="json")
    for stage in data["stages"]:
        if stage["pipeline"] == "private-charts":
            stage["pipeline"] = "charts-renamed"
    chain = tmp_path / "renamed.yaml"
    chain.write_text(yaml.safe_dump(data))
    assert deployment.check(DEPLOY_MONITOR_CHAIN=str(chain)) == EXIT_PROBLEMS
    assert deployment.problems() == [
        "PROBLEM pipeline charts-renamed: not found in team dev (or archived)"
    ]


def test_bad_credentials_are_problems_and_stay_secret(deployment: Deployment) -> None:
    wrong_github, wrong_password = "ghs_wrong_token_999999", "wrong-password-999999"
    code = deployment.check(GITHUB_TOKEN=wrong_github, CONCOURSE_PASSWORD=wrong_password)
    assert code == EXIT_PROBLEMS
    problems = deployment.problems()
    assert problems[0].startswith("PROBLEM concourse login: http://127.0.0.1:")
    assert "invalid username or password" in problems[0]
    assert problems[1].startswith("PROBLEM github token: GitHub refused the token (401")
    assert len(problems) == 2
    assert "SKIP pipelines: checked once the Concourse login and role work" in deployment.lines
    out = "\n".join(deployment.lines)
    for secret in (wrong_github, wrong_password, SLACK_TOKEN, SIGNING_SECRET):
        assert secret not in out


def test_no_role_in_the_team(deployment: Deployment) -> None:
    deployment.concourse.remove_user_from_team(CONCOURSE_USER)
    assert deployment.check() == EXIT_PROBLEMS
    assert deployment.problems() == [
        f"PROBLEM concourse team dev: user {CONCOURSE_USER} has no role in it (its teams: "
        "none); add it to the team (fly set-team) or set CONCOURSE_TEAM"
    ]


def test_the_team_line_says_whether_the_role_allows_reruns(deployment: Deployment) -> None:
    assert deployment.check() == EXIT_OK
    assert "OK concourse team dev: role member; reruns allowed (the Rerun button works)" in (
        deployment.lines
    )
    deployment.concourse.set_role(CONCOURSE_USER, "viewer")
    assert deployment.check() == EXIT_OK  # reading is all the rest needs
    [team] = [line for line in deployment.lines if line.startswith("OK concourse team dev")]
    assert team == (
        "OK concourse team dev: role viewer; reruns NOT allowed: the Rerun button and "
        "--on-failure rerun need the pipeline-operator role or above (member, owner); "
        "fly set-team can give it"
    )
    deployment.concourse.set_role(CONCOURSE_USER, "pipeline-operator")
    deployment.check()
    assert any("role pipeline-operator; reruns allowed" in line for line in deployment.lines)


def test_the_wrong_team(deployment: Deployment) -> None:
    assert deployment.check(CONCOURSE_TEAM="ops") == EXIT_PROBLEMS
    assert deployment.problems()[0].startswith("PROBLEM concourse team ops: user deploy-bot")


def test_read_only_github_token_and_unknown_repository(deployment: Deployment) -> None:
    deployment.github.viewer_permission = "READ"
    assert deployment.check() == EXIT_PROBLEMS
    assert deployment.problems() == [
        f"PROBLEM github merge permission: the token has READ on {REPOSITORY}; merging "
        "approved PRs needs one of ADMIN, MAINTAIN, WRITE"
    ]
    deployment.github.viewer_permission = None
    assert deployment.check() == EXIT_OK
    assert any(line.startswith("SKIP github merge permission:") for line in deployment.lines)
    assert deployment.check(GITHUB_REPOSITORY="GaloyMoney/other") == EXIT_PROBLEMS
    assert deployment.problems() == [
        "PROBLEM github repository GaloyMoney/other: repository GaloyMoney/other not found, "
        "or not visible to this token"
    ]


def test_a_missing_slack_scope(deployment: Deployment) -> None:
    deployment.slack.scopes = sorted(REQUIRED_SLACK_SCOPES - {"reactions:write", "groups:read"})
    assert deployment.check() == EXIT_PROBLEMS
    assert deployment.problems() == [
        "PROBLEM slack scopes: missing groups:read, reactions:write: add them as in "
        "manifest.yml and reinstall the app"
    ]


def test_extra_slack_scopes_are_fine(deployment: Deployment) -> None:
    deployment.slack.scopes = sorted(REQUIRED_SLACK_SCOPES | {"users:read"})
    assert deployment.check() == EXIT_OK
    assert any("(also granted: users:read)" in line for line in deployment.lines)


def test_a_bad_slack_token_and_a_missing_signing_secret(deployment: Deployment) -> None:
    code = deployment.check(
        SLACK_BOT_TOKEN="xoxb-not-the-right-one-0000", SLACK_SIGNING_SECRET=None
    )
    assert code == EXIT_PROBLEMS
    problems = deployment.problems()
    assert problems[0].startswith("PROBLEM slack settings: SLACK_SIGNING_SECRET is not set")
    assert problems[1].startswith("PROBLEM slack auth: auth.test answered invalid_auth")
    assert "xoxb-not-the-right-one" not in "\n".join(deployment.lines)


def test_slack_is_skipped_without_a_bot_token(deployment: Deployment) -> None:
    assert deployment.check(SLACK_BOT_TOKEN=None) == EXIT_OK
    assert "SKIP slack: SLACK_BOT_TOKEN is not set (terminal use only)" in deployment.lines


def test_missing_settings_and_unreachable_redis(deployment: Deployment) -> None:
    code = deployment.check(
        CONCOURSE_URL=None, GITHUB_TOKEN=None, REDIS_URL="redis://127.0.0.1:1/0"
    )
    assert code == EXIT_PROBLEMS
    assert deployment.problems() == [
        "PROBLEM concourse settings: CONCOURSE_URL is not set",
        "PROBLEM github settings: GITHUB_TOKEN is not set",
        "PROBLEM redis: no answer from redis://127.0.0.1:1/0 (ConnectionError)",
    ]


def test_malformed_settings_are_one_problem(deployment: Deployment) -> None:
    assert deployment.check(DEPLOY_MONITOR_POLL_SECONDS="soon") == EXIT_PROBLEMS
    assert deployment.lines == [
        "PROBLEM settings: DEPLOY_MONITOR_POLL_SECONDS: Input should be a valid number, unable "
        "to parse string as a number",
        "1 problem found.",
    ]


def test_the_cli_command(
    deployment: Deployment, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env
    for name, value in deployment.env.items():
        monkeypatch.setenv(name, value)
    result = CliRunner().invoke(main, ["check"])
    assert result.exit_code == 0, result.output
    assert "OK concourse team dev: role member" in result.output
    deployment.slack.scopes = ["chat:write"]
    result = CliRunner().invoke(main, ["check"])
    assert result.exit_code == 1
    assert "PROBLEM slack scopes: missing" in result.output


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A URL whose server accepts connections and never answers: every read times out."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)  # never accepted: the kernel completes the handshakes
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"


def test_the_clients_of_check_get_the_timeout_setting(
    deployment: Deployment, silent_server: str
) -> None:
    settings = BotSettings.model_validate({**deployment.env, "DEPLOY_MONITOR_HTTP_TIMEOUT": "3.5"})
    assert Checker.concourse_client(settings).timeout == 3.5
    assert Checker.github_client(settings).timeout == 3.5

    started = time.monotonic()
    code = deployment.check(
        DEPLOY_MONITOR_HTTP_TIMEOUT="0.3",
        CONCOURSE_URL=silent_server,
        GITHUB_API_URL=silent_server,
        GITHUB_GRAPHQL_URL=None,
    )
    assert code == EXIT_PROBLEMS
    assert time.monotonic() - started < 5  # the clients' own defaults are 10 and 15 s
    problems = deployment.problems()
    assert problems[0].startswith(f"PROBLEM concourse login: {silent_server}: Concourse timed out")
    assert problems[1] == "PROBLEM github: GitHub timed out (POST /graphql)"


def test_required_slack_scopes_are_the_manifests() -> None:
    manifest = yaml.safe_load(MANIFEST.read_text())
    assert set(manifest["oauth_config"]["scopes"]["bot"]) == REQUIRED_SLACK_SCOPES


def test_get_steps_are_found_however_they_are_nested() -> None:
    job = JobConfig.model_validate(
        {
            "name": "j",
            "plan": [
                {"in_parallel": {"steps": [{"get": "a"}, {"do": [{"get": "b", "resource": "B"}]}]}},
                {"in_parallel": [{"get": "c", "passed": ["x"], "trigger": True}]},
                {"try": {"get": "d"}},
                {"task": "t", "on_failure": {"get": "e"}, "ensure": {"do": [{"get": "f"}]}},
                {"put": "p", "on_success": {"in_parallel": {"steps": [{"get": "g"}]}}},
                {"aggregate": [{"get": "h"}]},
            ],
            "on_abort": {"get": "i"},
            "on_error": {"try": {"get": "k"}},
        }
    )
    steps = job.get_steps()
    assert [s.name for s in steps] == ["a", "b", "c", "d", "e", "f", "g", "h", "k", "i"]
    assert next(s for s in steps if s.name == "b").resource == "B"
    assert next(s for s in steps if s.name == "c").passed == ["x"]


WIDGETS_CHAIN = Path(__file__).parents[2] / "data" / "chains" / "widgets.yaml"


def widgets_config(*, deploy_input: str = "source") -> dict[str, Any]:
    return {
        "resources": [git("source", "widgets", ignore=["docs/**"])],
        "jobs": [
            {"name": "unit", "plan": [{"get": "source", "trigger": True}]},
            {
                "name": "deploy-staging",
                "plan": [{"get": deploy_input, "trigger": True, "passed": ["unit"]}],
            },
        ],
    }


def test_every_chain_is_checked_against_its_pipelines_and_its_repository(
    deployment: Deployment,
) -> None:
    widgets = deployment.github.add_repository("acme/widgets")
    deployment.concourse.add_pipeline("widgets", ["unit", "deploy-staging"], ["source"])
    deployment.concourse.set_config("widgets", widgets_config())
    chains = f"lana-bank,{WIDGETS_CHAIN}"
    assert deployment.check(DEPLOY_MONITOR_CHAINS=chains) == EXIT_OK, deployment.lines
    out = "\n".join(deployment.lines)
    for needle in (
        "OK chain lana-bank: 8 stages in 3 pipelines",
        f"for {REPOSITORY} (lana-bank)",
        "OK chain widgets: 2 stages in 1 pipeline (widgets), 1 path for acme/widgets "
        f"({WIDGETS_CHAIN})",
        f"OK github repository {REPOSITORY}: default branch main",
        "OK github repository acme/widgets: default branch main",
        "OK github merge permission on acme/widgets: WRITE",
        "OK pipeline widgets: config version 1, 2 jobs, 1 resource",
        "OK widgets stage unit: jobs unit; input source from resource source",
        "OK widgets/source: paths and ignore_paths match the chain",
        "OK pipeline galoy-staging:",
    ):
        assert needle in out, f"{needle!r} not in:\n{out}"
    assert out.count("OK github token:") == 1  # one token for both: said once

    # widgets' drift and its token's read-only permission are widgets' problems alone.
    widgets.viewer_permission = "READ"
    config = widgets_config(deploy_input="other")
    config["resources"].append(git("other", "widgets"))
    deployment.concourse.set_config("widgets", config)
    assert deployment.check(DEPLOY_MONITOR_CHAINS=chains) == EXIT_PROBLEMS
    assert deployment.problems() == [
        "PROBLEM github merge permission on acme/widgets: the token has READ on acme/widgets; "
        "merging approved PRs needs one of ADMIN, MAINTAIN, WRITE",
        "PROBLEM widgets/deploy-staging: has no input source (no `get: source` step); stage "
        "staging matches builds on it",
    ]


def test_a_chain_naming_a_repository_twice_is_one_problem(
    deployment: Deployment, tmp_path: Path
) -> None:
    copy_of = tmp_path / "copy.yaml"
    copy_of.write_text(WIDGETS_CHAIN.read_text().replace("name: widgets", "name: copy"))
    assert deployment.check(DEPLOY_MONITOR_CHAINS=f"{WIDGETS_CHAIN},{copy_of}") == EXIT_PROBLEMS
    assert [p.split(":")[0] for p in deployment.problems()] == ["PROBLEM chain"]
    assert "both name repository acme/widgets" in deployment.problems()[0]
