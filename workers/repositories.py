"""The repositories one deployment serves, each with the chain its commits take.

One repository (the default): `GITHUB_REPOSITORY`, whose commits take `DEPLOY_MONITOR_CHAIN`
(the bundled lana-bank chain when unset). Several: `DEPLOY_MONITOR_CHAINS`, a directory of
chain files (`*.yaml`, `*.yml`, in name order) or chain files and bundled chain names separated
by commas; each chain names its `repository`, and no two name the same one. The default
repository, the one a target without a repository means, is then `GITHUB_REPOSITORY` when a
chain names it, else the first chain's.

Every repository is in the same Concourse team (`CONCOURSE_TEAM`) and read with the same
GitHub token; names are matched as GitHub does, without regard to case.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from workers.chain import Chain, is_chain_file, load_chain
from workers.errors import ConfigError
from workers.settings import EngineSettings

CHAINS_SETTING = "DEPLOY_MONITOR_CHAINS"
CHAIN_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class ServedRepository:
    """A repository and the chain its commits take to staging."""

    name: str  # owner/name, as configured
    chain: Chain
    source: str  # where the chain came from (a file, or a bundled name), for `check`


class ServedRepositories:
    """The repositories served, in configured order, the default first."""

    def __init__(self, served: list[ServedRepository]) -> None:
        if not served:
            raise ConfigError(f"{CHAINS_SETTING}: no chain found")
        self._by_name: dict[str, ServedRepository] = {}
        for repository in served:
            key = repository.name.lower()
            if key in self._by_name:
                first = self._by_name[key]
                raise ConfigError(
                    f"{CHAINS_SETTING}: {repository.source} and {first.source} both name "
                    f"repository {repository.name}"
                )
            self._by_name[key] = repository
        self._order = served

    @classmethod
    def one(cls, name: str, chain: Chain, source: str = "") -> ServedRepositories:
        return cls([ServedRepository(name=name, chain=chain, source=source or chain.name)])

    @property
    def default(self) -> ServedRepository:
        return self._order[0]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(r.name for r in self._order)

    @property
    def several(self) -> bool:
        return len(self._order) > 1

    def find(self, name: str) -> ServedRepository | None:
        """The served repository called `name` (any case), or None."""
        return self._by_name.get(name.lower())

    def get(self, name: str) -> ServedRepository:
        """The served repository called `name`; ConfigError when it is not served (a monitor
        or subscription left by an earlier configuration)."""
        found = self.find(name)
        if found is None:
            raise ConfigError(f"{name} is not among the repositories served ({self.listed()})")
        return found

    def listed(self) -> str:
        return ", ".join(self.names)

    def __iter__(self) -> Iterator[ServedRepository]:
        return iter(self._order)

    def __len__(self) -> int:
        return len(self._order)


def load_repositories(settings: EngineSettings) -> ServedRepositories:
    """The repositories these settings serve (see the module docstring)."""
    if not settings.chains:
        chain = load_chain(settings.chain)
        return ServedRepositories.one(settings.github_repository, chain, settings.chain or "")
    served = []
    for source in _chain_sources(settings.chains):
        chain = load_chain(source, setting=CHAINS_SETTING)
        if chain.repository is None:
            raise ConfigError(f"{CHAINS_SETTING}: {source} names no repository (owner/name)")
        served.append(ServedRepository(name=chain.repository, chain=chain, source=source))
    named = next((r for r in served if r.name.lower() == settings.github_repository.lower()), None)
    if named is not None:  # GITHUB_REPOSITORY chooses the default among them
        served = [named, *(r for r in served if r is not named)]
    return ServedRepositories(served)


def _chain_sources(setting: str) -> list[str]:
    """The chain files or bundled names DEPLOY_MONITOR_CHAINS lists."""
    path = Path(setting.strip())
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix in CHAIN_SUFFIXES and p.is_file())
        if not files:
            raise ConfigError(f"{CHAINS_SETTING}: no *.yaml chain file in {path}")
        return [str(p) for p in files]
    sources = [part.strip() for part in setting.split(",") if part.strip()]
    for source in sources:
        if is_chain_file(source) and not Path(source).is_file():
            raise ConfigError(f"{CHAINS_SETTING}: {source} is not a file or a directory")
    if not sources:
        raise ConfigError(f"{CHAINS_SETTING}: no chain named")
    return sources
