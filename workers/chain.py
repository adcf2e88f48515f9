"""The chain: which Concourse jobs a commit passes through on its way to staging.

A chain is configuration (YAML validated here), so any team on Concourse can describe its own;
the engine knows no pipeline or job names. The bundled default is `chains/lana-bank.yaml`.

Vocabulary:
- a **stage** is one step of the journey: one or more jobs of one pipeline, plus the rule that
  says which build of those jobs is "ours" (`match`);
- a **path** is the list of stages a commit takes, chosen by the files it changes (a
  frontend-only commit takes a shorter path than a backend one).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from fnmatch import fnmatchcase
from importlib import resources
from pathlib import Path as FsPath
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from workers.errors import ConfigError

# libyaml's loader when PyYAML was built with it: every `deploy-monitor where` loads the
# chain, and the pure-Python loader takes ten times as long (~6 ms).
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

DEFAULT_CHAIN = "lana-bank"

_DURATION = re.compile(r"^\s*(?:(\d+)h)?\s*(?:(\d+)m)?\s*(?:(\d+(?:\.\d+)?)s)?\s*$")


def parse_duration(value: Any) -> float:
    """Seconds from a number or a string such as `30m`, `1h30m`, `90s`, `0.5s`."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return float(value)
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match and any(match.groups()):
            hours, minutes, seconds = match.groups()
            return int(hours or 0) * 3600 + int(minutes or 0) * 60 + float(seconds or 0)
    raise ValueError(f"not a duration: {value!r} (use seconds or e.g. 30m, 1h30m, 90s)")


Duration = Annotated[float, BeforeValidator(parse_duration)]


def path_matches(path: str, patterns: Iterable[str]) -> bool:
    """Git-pathspec-like matching: `*` crosses `/` (as in git-resource `paths`), and a plain
    directory name matches everything below it."""
    for pattern in patterns:
        if fnmatchcase(path, pattern):
            return True
        if not any(ch in pattern for ch in "*?[") and path.startswith(pattern.rstrip("/") + "/"):
            return True
    return False


FilterRule = Literal["paths", "ignore_paths"]


class Unwatched(BaseModel):
    """A changed file no git resource on the path makes a version of, and the filter of the
    first of them (in path order) that leaves it out."""

    file: str
    resource: str  # `pipeline/resource`
    rule: FilterRule
    pattern: str | None = None


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GitResource(_Strict):
    """A git resource of a pipeline and its path filters, as set in the pipeline config."""

    paths: list[str] = Field(default_factory=list)
    ignore_paths: list[str] = Field(default_factory=list)

    def watches(self, file: str) -> bool:
        """Whether a change to `file` makes this resource emit a new version."""
        return self.ignores(file) is None

    def ignores(self, file: str) -> tuple[FilterRule, str | None] | None:
        """Why a change to `file` makes no version: outside `paths`, or matching one of
        `ignore_paths` (that pattern); None when the resource watches it."""
        if self.paths and not path_matches(file, self.paths):
            return ("paths", None)
        return next(
            (("ignore_paths", p) for p in self.ignore_paths if path_matches(file, [p])), None
        )


class Pipeline(_Strict):
    resources: dict[str, GitResource] = Field(default_factory=dict)


class Match(_Strict):
    """How a build of a stage's jobs is recognised as carrying our commit.

    `input`: the build's input (get-step name) must be our commit or a descendant of it.
    `after_previous`: the build must start after the previous stage of the path finished.
    Both may be set (the staging deploy); at least one must be.
    """

    input: str | None = None
    resource: str | None = None
    after_previous: bool = False

    @model_validator(mode="after")
    def _needs_a_rule(self) -> Match:
        if self.input is None and not self.after_previous:
            raise ValueError("match needs `input`, `after_previous: true`, or both")
        if self.resource is not None and self.input is None:
            raise ValueError("match.resource only makes sense with match.input")
        return self

    @property
    def resource_name(self) -> str | None:
        """The resource whose versions carry the input (defaults to the input's name)."""
        return self.resource or self.input


class Stage(_Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    label: str
    pipeline: str
    jobs: list[str] = Field(min_length=1)
    match: Match
    warn_after: Duration | None = None
    when_changed: list[str] | None = None

    def applies_to(self, files: Iterable[str]) -> bool:
        """A stage with `when_changed` is only on the path if some changed file matches."""
        return self.when_changed is None or any(path_matches(f, self.when_changed) for f in files)


class ChainPath(_Strict):
    """A route through the stages, chosen by the commit's changed files (first match wins)."""

    name: str
    description: str = ""
    when_all_files_match: list[str] | None = None
    when_any_file_matches: list[str] | None = None
    stages: list[str] = Field(min_length=1)
    reaches_staging: bool = True
    note: str | None = None

    def accepts(self, files: list[str]) -> bool:
        if self.when_all_files_match is not None and not (
            files and all(path_matches(f, self.when_all_files_match) for f in files)
        ):
            return False
        return self.when_any_file_matches is None or any(
            path_matches(f, self.when_any_file_matches) for f in files
        )


OWNER_REPO = r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$"


class Chain(_Strict):
    name: str
    # The GitHub repository (`owner/name`) whose commits take this journey; read when the
    # chain is one of several (DEPLOY_MONITOR_CHAINS: workers/repositories.py).
    repository: str | None = Field(None, pattern=OWNER_REPO)
    pickup_warn_after: Duration = 300.0
    # A stage is slow at twice its usual duration only when that is this much over usual too.
    slow_margin: Duration = 300.0
    pipelines: dict[str, Pipeline] = Field(default_factory=dict)
    stages: list[Stage] = Field(min_length=1)
    paths: list[ChainPath] = Field(min_length=1)

    @model_validator(mode="after")
    def _references_resolve(self) -> Chain:
        ids = [s.id for s in self.stages]
        if len(set(ids)) != len(ids):
            raise ValueError("stage ids must be unique")
        for path in self.paths:
            unknown = [s for s in path.stages if s not in ids]
            if unknown:
                raise ValueError(f"path {path.name!r} names unknown stages: {', '.join(unknown)}")
        if self.paths[-1].when_all_files_match or self.paths[-1].when_any_file_matches:
            raise ValueError("the last path must have no condition: it is the default")
        return self

    def stage(self, stage_id: str) -> Stage:
        return next(s for s in self.stages if s.id == stage_id)

    def classify(self, files: list[str]) -> ChainPath:
        """The path a commit changing `files` takes."""
        return next(p for p in self.paths if p.accepts(files))

    def stages_for(self, path: ChainPath, files: list[str]) -> list[Stage]:
        """The stages of `path` that apply to these files, in path order."""
        return [self.stage(s) for s in path.stages if self.stage(s).applies_to(files)]

    def git_resources_on(self, stages: Iterable[Stage]) -> list[tuple[str, GitResource]]:
        """The git resources (`pipeline/resource`, filters) the stages match our commit by,
        as far as the chain describes them, in path order, each once."""
        found: dict[str, GitResource] = {}
        for stage in stages:
            name = stage.match.resource_name
            pipeline = self.pipelines.get(stage.pipeline)
            if name is None or pipeline is None or name not in pipeline.resources:
                continue
            found.setdefault(f"{stage.pipeline}/{name}", pipeline.resources[name])
        return list(found.items())

    def unwatched(self, stages: Iterable[Stage], files: list[str]) -> list[Unwatched] | None:
        """When no git resource the stages match by watches any of `files`, each file and
        the filter leaving it out: the commit never becomes a version by itself, and only a
        later commit that does trigger the pipeline carries it. None when some resource
        watches some file, or nothing is known (no described resource, no files)."""
        resources = self.git_resources_on(stages)
        if not resources or not files:
            return None
        if any(resource.watches(f) for _, resource in resources for f in files):
            return None
        found: list[Unwatched] = []
        for file in files:
            name, resource = resources[0]
            why = resource.ignores(file)
            assert why is not None  # no resource watches the file
            found.append(Unwatched(file=file, resource=name, rule=why[0], pattern=why[1]))
        return found


def load_chain(source: str | None = None, *, setting: str = "DEPLOY_MONITOR_CHAIN") -> Chain:
    """Load a chain by bundled name (`lana-bank`) or file path; None = the bundled default.
    Errors name `setting`, the setting that gave `source`."""
    name = source or DEFAULT_CHAIN
    try:
        if is_chain_file(name):
            text = FsPath(name).read_text()
        else:
            text = resources.files("workers.chains").joinpath(f"{name}.yaml").read_text()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ConfigError(f"{setting}: cannot read chain {name!r}: {reason}") from None
    try:
        return Chain.model_validate(yaml.load(text, Loader=_YAML_LOADER))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{setting}: {name} is not valid YAML: {exc}") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"{setting}: {name}: {where}: {first['msg']}") from None


def is_chain_file(name: str) -> bool:
    """A path to a chain file, rather than the name of a bundled chain."""
    return FsPath(name).suffix in {".yaml", ".yml"} or "/" in name
