"""Chain configuration: validation, classification by changed files, path filters."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pytest
import yaml

from workers.chain import Chain, load_chain, parse_duration, path_matches
from workers.errors import ConfigError


@pytest.fixture(scope="module")
def chain() -> Chain:
    return load_chain()


@pytest.mark.parametrize(
    ("files", "path", "stages"),
    [
        (
            ["core/src/lib.rs"],
            "backend",
            ["tests", "build-rc", "open-promote-rc-pr", "testflight", "staging"],
        ),
        (["apps/admin-panel/app/page.tsx"], "frontend-only", ["admin-panel-image"]),
        (["apps/customer-portal/x.ts"], "frontend-only", ["customer-portal-image"]),
        (
            ["apps/admin-panel/a.ts", "apps/customer-portal/b.ts"],
            "frontend-only",
            ["admin-panel-image", "customer-portal-image"],
        ),
        (
            ["dagster/assets.py"],
            "dagster-only",
            ["dagster-image", "tests", "build-rc", "open-promote-rc-pr", "testflight", "staging"],
        ),
        (
            ["apps/admin-panel/a.ts", "core/x.rs"],
            "mixed",
            ["tests", "build-rc", "open-promote-rc-pr", "testflight", "staging"],
        ),
        (
            ["flake.nix"],
            "backend",
            ["tests", "build-rc", "open-promote-rc-pr", "testflight", "staging"],
        ),
        ([], "backend", ["tests", "build-rc", "open-promote-rc-pr", "testflight", "staging"]),
    ],
)
def test_classification(chain: Chain, files: list[str], path: str, stages: list[str]) -> None:
    chosen = chain.classify(files)
    assert chosen.name == path
    assert [s.id for s in chain.stages_for(chosen, files)] == stages


def test_release_jobs_are_never_on_a_path(chain: Chain) -> None:
    jobs = {job for stage in chain.stages for job in stage.jobs}
    assert "release" not in jobs and "bump-image-in-chart" not in jobs


def test_resource_filters_follow_git_pathspec(chain: Chain) -> None:
    repo = chain.pipelines["lana-bank"].resources["repo"]
    assert repo.watches("core/src/lib.rs")
    assert not repo.watches("apps/admin-panel/page.tsx")
    admin = chain.pipelines["lana-bank"].resources["admin-panel-src"]
    assert admin.watches("apps/admin-panel/deep/page.tsx") and admin.watches("flake.lock")
    assert not admin.watches("core/src/lib.rs")


@pytest.mark.parametrize(
    ("text", "seconds"), [("30m", 1800), ("1h30m", 5400), ("90s", 90), (2.5, 2.5), ("0.5s", 0.5)]
)
def test_durations(text: str | float, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["soon", "", "-5", -1, True])
def test_bad_durations(bad: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(bad)


def test_path_matches_directories_and_globs() -> None:
    assert path_matches("dagster/a/b.py", ["dagster"])
    assert path_matches("dagster/a.py", ["dagster/*"])
    assert not path_matches("dagsterx/a.py", ["dagster"])


def _write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "chain.yaml"
    path.write_text(text)
    return str(path)


def test_chain_errors_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="paths"):
        load_chain(
            _write(
                tmp_path,
                "name: x\nstages:\n- {id: a, label: A, pipeline: p, jobs: [j], match: {input: r}}",
            )
        )
    bad_ref = (
        "name: x\nstages:\n- {id: a, label: A, pipeline: p, jobs: [j], match: {input: r}}\n"
        "paths:\n- {name: all, stages: [a, nope]}\n"
    )
    with pytest.raises(ConfigError, match="nope"):
        load_chain(_write(tmp_path, bad_ref))
    no_rule = (
        "name: x\nstages:\n- {id: a, label: A, pipeline: p, jobs: [j], match: {}}\n"
        "paths:\n- {name: all, stages: [a]}\n"
    )
    with pytest.raises(ConfigError, match="match"):
        load_chain(_write(tmp_path, no_rule))
    with pytest.raises(ConfigError, match="cannot read"):
        load_chain(str(tmp_path / "missing.yaml"))
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_chain(_write(tmp_path, "name: [unclosed"))


def test_a_custom_chain_needs_no_lana_bank_names(tmp_path: Path) -> None:
    custom = (
        "name: shop\n"
        "stages:\n"
        "- {id: unit, label: unit tests, pipeline: shop, jobs: [unit],\n"
        "   match: {input: src}, warn_after: 10m}\n"
        "- {id: deploy, label: deploy, pipeline: shop, jobs: [deploy],\n"
        "   match: {after_previous: true}}\n"
        "paths:\n- {name: all, stages: [unit, deploy]}\n"
    )
    chain = load_chain(_write(tmp_path, custom))
    assert chain.stage("unit").warn_after == 600
    assert chain.classify(["x"]).name == "all"


def test_the_bundled_chain_reads_the_same_with_either_yaml_loader() -> None:
    text = resources.files("workers.chains").joinpath("lana-bank.yaml").read_text()
    pure = Chain.model_validate(yaml.load(text, Loader=yaml.SafeLoader))
    assert load_chain() == pure
