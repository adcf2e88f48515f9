"""Which repositories a deployment serves (DEPLOY_MONITOR_CHAINS), and the engine's parts for
each: chains, GitHub clients, observers and viewers per repository."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from tests.conftest import TEST_REDIS_URL
from workers.engine import Engine
from workers.errors import ConfigError
from workers.repositories import load_repositories
from workers.settings import EngineSettings

WIDGETS_CHAIN = Path(__file__).parents[2] / "data" / "chains" / "widgets.yaml"
LANA = "GaloyMoney/lana-bank"
WIDGETS = "acme/widgets"


def settings(**env: str) -> EngineSettings:
    return EngineSettings.model_validate({"REDIS_URL": TEST_REDIS_URL, **env})


def chain_dir(tmp_path: Path, **extra: dict[str, object]) -> Path:
    """A directory of chain files: widgets, plus `extra` (file stem → chain as a dict)."""
    folder = tmp_path / "chains"
    folder.mkdir()
    shutil.copy(WIDGETS_CHAIN, folder / "widgets.yaml")
    for stem, chain in extra.items():
        (folder / f"{stem}.yaml").write_text(yaml.safe_dump(chain))
    return folder


def widgets_as(repository: str | None) -> dict[str, object]:
    chain = yaml.safe_load(WIDGETS_CHAIN.read_text())
    chain["name"] = f"copy-{repository}"
    if repository is None:
        del chain["repository"]
    else:
        chain["repository"] = repository
    return dict(chain)


def test_unset_serves_github_repository_with_the_one_chain() -> None:
    served = load_repositories(settings(GITHUB_REPOSITORY="someone/else"))
    assert served.names == ("someone/else",)
    # The chain's own `repository` is read only among several: GITHUB_REPOSITORY wins here.
    assert served.default.chain.name == "lana-bank"
    assert not served.several


def test_a_list_of_bundled_names_and_files_serves_each_chains_repository() -> None:
    served = load_repositories(settings(DEPLOY_MONITOR_CHAINS=f"lana-bank, {WIDGETS_CHAIN}"))
    assert served.names == (LANA, WIDGETS)
    assert served.get("ACME/WIDGETS").chain.name == "widgets"
    assert served.find("acme/other") is None
    with pytest.raises(ConfigError, match="not among the repositories served"):
        served.get("acme/other")


def test_github_repository_chooses_the_default_among_them() -> None:
    env = {"DEPLOY_MONITOR_CHAINS": f"lana-bank,{WIDGETS_CHAIN}", "GITHUB_REPOSITORY": WIDGETS}
    assert load_repositories(settings(**env)).names == (WIDGETS, LANA)
    # Naming none of them: the first chain's repository is the default.
    env["GITHUB_REPOSITORY"] = "nobody/here"
    assert load_repositories(settings(**env)).default.name == LANA


def test_a_directory_is_read_in_file_name_order(tmp_path: Path) -> None:
    folder = chain_dir(tmp_path, aardvark=widgets_as("acme/aardvark"))
    (folder / "notes.txt").write_text("not a chain")
    served = load_repositories(settings(DEPLOY_MONITOR_CHAINS=str(folder)))
    assert served.names == ("acme/aardvark", WIDGETS)


@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        ({"again": widgets_as("ACME/widgets")}, "both name repository"),
        ({"anonymous": widgets_as(None)}, "names no repository"),
        ({"bad": widgets_as("not a repository")}, "repository: String should match"),
    ],
)
def test_a_directory_with_a_bad_chain_is_refused_naming_it(
    tmp_path: Path, extra: dict[str, dict[str, object]], problem: str
) -> None:
    folder = chain_dir(tmp_path, **extra)
    with pytest.raises(ConfigError, match=problem) as caught:
        load_repositories(settings(DEPLOY_MONITOR_CHAINS=str(folder)))
    assert str(caught.value).startswith("DEPLOY_MONITOR_CHAINS: ")


@pytest.mark.parametrize("setting", ["/no/such/dir/", "/no/such/file.yaml", " , "])
def test_a_setting_naming_nothing_usable_is_refused(setting: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="DEPLOY_MONITOR_CHAINS"):
        load_repositories(settings(DEPLOY_MONITOR_CHAINS=setting))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match=r"no \*\.yaml chain file"):
        load_repositories(settings(DEPLOY_MONITOR_CHAINS=str(tmp_path / "empty")))


def test_the_engine_keeps_each_repositorys_parts_apart() -> None:
    engine = Engine(
        settings(
            DEPLOY_MONITOR_CHAINS=f"lana-bank,{WIDGETS_CHAIN}",
            CONCOURSE_URL="http://127.0.0.1:9",
            CONCOURSE_TOKEN="t",
        )
    )
    try:
        assert engine.repository == LANA and engine.chain.name == "lana-bank"
        assert engine.chain_for(WIDGETS).name == "widgets"
        assert engine.github_for(WIDGETS).repository == WIDGETS
        assert engine.github_for(None) is engine.github and engine.github.repository == LANA
        # One of each per repository, built once.
        assert engine.github_for("Acme/Widgets") is engine.github_for(WIDGETS)
        assert engine.viewer_for(WIDGETS).chain.name == "widgets"
        assert engine.viewer_for(WIDGETS).github is engine.github_for(WIDGETS)
        assert engine.observer_for(WIDGETS).chain.name == "widgets"
        assert engine.observer_for(LANA) is not engine.observer_for(WIDGETS)
        with pytest.raises(ConfigError):
            engine.github_for("acme/other")
        assert engine.targeting.served == (LANA, WIDGETS)
        assert engine.targeting.parse("acme/widgets#3").repository == WIDGETS
    finally:
        engine.redis.close()
