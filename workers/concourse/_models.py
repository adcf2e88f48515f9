"""The pydantic models of what the Concourse API answers (`atc/api/present`, `atc/config.go`).

Many Concourse fields are `omitempty` in Go: a key is missing, not null, when empty. A few are
not, and come back as null when empty: a resource's `source` (`atc.ResourceConfig`) and a job's
`plan`. Those parse as empty, so nothing downstream tells the two apart.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_validator

# The status words are the monitor's vocabulary too: defined once, in the pure core.
from workers.events import FAILURE_STATUSES, RUNNING_STATUSES, BuildStatus


class ApiModel(BaseModel):
    """Frozen, and ignores fields newer Concourse versions add."""

    model_config = ConfigDict(extra="ignore", frozen=True)


class BuildRef(ApiModel):
    """The build a rerun reruns: always the original, never an intermediate rerun."""

    id: int
    name: str


class Build(ApiModel):
    """One build (`atc.Build`); optional fields are absent in the JSON when empty."""

    id: int
    name: str
    status: BuildStatus
    team_name: str = ""
    api_url: str = ""
    job_name: str | None = None
    pipeline_name: str | None = None
    pipeline_id: int | None = None
    start_time: int | None = None
    end_time: int | None = None
    reap_time: int | None = None
    rerun_number: int | None = None
    rerun_of: BuildRef | None = None
    created_by: str | None = None
    comment: str | None = None

    @property
    def is_running(self) -> bool:
        """Pending or started."""
        return self.status in RUNNING_STATUSES

    @property
    def is_terminal(self) -> bool:
        """Succeeded, failed, errored or aborted: the status will not change any more."""
        return not self.is_running

    @property
    def is_failure(self) -> bool:
        """Failed, errored or aborted."""
        return self.status in FAILURE_STATUSES


class MetadataField(ApiModel):
    """One `{name, value}` metadata entry of a resource version."""

    name: str
    value: str


class ResourceVersion(ApiModel):
    """A version of a resource; metadata exists only once some build fetched it."""

    id: int
    version: dict[str, str]
    enabled: bool = True
    metadata: list[MetadataField] = []

    @property
    def ref(self) -> str | None:
        """The git-resource `ref` (a commit SHA, or a tag with `tag_filter`)."""
        return self.version.get("ref")


class BuildInput(ApiModel):
    """An input of a build; `name` is the get-step name, not necessarily the resource name."""

    name: str
    version: dict[str, str]
    pipeline_id: int | None = None
    first_occurrence: bool = False


class BuildOutput(ApiModel):
    """A version a build's `put` produced."""

    name: str
    version: dict[str, str]


class BuildResources(ApiModel):
    """`/builds/:id/resources`; a pending build may not have its inputs yet (`inputs: []`)."""

    inputs: list[BuildInput]
    outputs: list[BuildOutput]

    def input_ref(self, name: str) -> str | None:
        """The `ref` of the input called `name`, if that input exists and has one."""
        for build_input in self.inputs:
            if build_input.name == name:
                return build_input.version.get("ref")
        return None


def _started(value: Any) -> Any:
    """A job summary's build times come from `sql.NullTime.Time.Unix()`: a build that has not
    started shows year 1 (-62135596800), not an absent field. Any time before 1970 is none."""
    return None if isinstance(value, int | float) and value <= 0 else value


class BuildSummary(ApiModel):
    """A build as a job summary shows it (`atc.BuildSummary`): fewer fields than a Build."""

    id: int
    name: str
    status: BuildStatus
    start_time: int | None = None
    end_time: int | None = None

    _no_year_one = field_validator("start_time", "end_time", mode="before")(_started)


class JobInputSummary(ApiModel):
    """An input of a job summary (`atc.JobInputSummary`: `trigger` and `passed` omitempty)."""

    name: str
    resource: str
    passed: list[str] = []
    trigger: bool = False


class JobSummary(ApiModel):
    """One job of `GET …/pipelines/:p/jobs` (`atc.JobSummary`); `paused*` are omitempty."""

    name: str
    paused: bool = False
    paused_by: str | None = None
    paused_at: int | None = None
    next_build: BuildSummary | None = None
    finished_build: BuildSummary | None = None
    inputs: list[JobInputSummary] = []


class PipelineInfo(ApiModel):
    """A pipeline (`atc.Pipeline`) as `GET /api/v1/teams/:team/pipelines` lists it."""

    name: str
    paused: bool = False
    paused_by: str | None = None
    paused_at: int | None = None
    archived: bool = False
    public: bool = False


class ResourceInfo(ApiModel):
    """A resource of `GET …/pipelines/:p/resources` (`atc.Resource`); the pin fields only while
    it is pinned (by the API or in the config)."""

    name: str
    type: str = ""
    last_checked: int | None = None
    pinned_version: dict[str, str] | None = None
    pinned_in_config: bool = False
    pin_comment: str | None = None


PreparationStatus = Literal["unknown", "blocking", "not_blocking"]


class BuildPreparation(ApiModel):
    """`/builds/:id/preparation`: why a pending build has not started (a build that is not
    pending blocks on nothing)."""

    build_id: int
    paused_pipeline: PreparationStatus = "unknown"
    paused_job: PreparationStatus = "unknown"
    max_running_builds: PreparationStatus = "unknown"
    inputs: dict[str, PreparationStatus] = {}
    inputs_satisfied: PreparationStatus = "unknown"
    missing_input_reasons: dict[str, str] = {}

    @field_validator("inputs", "missing_input_reasons", mode="before")
    @classmethod
    def _null_is_empty(cls, value: Any) -> Any:
        return {} if value is None else value  # Go maps without omitempty: a nil one is null


class UserInfo(ApiModel):
    """`/api/v1/user`: who the token belongs to and its roles per team."""

    user_name: str = ""
    teams: dict[str, list[str]] = {}
    is_admin: bool = False


# Step keys holding nested steps. Modifiers and hooks are merged into the step object itself,
# and `in_parallel` is always serialized as `{"steps": [...]}` (a bare list in YAML shorthand).
_NESTED_STEP_LISTS = ("do", "aggregate")
_NESTED_STEPS = ("try", "on_success", "on_failure", "on_error", "on_abort", "ensure")


def plan_steps(step: Any) -> Iterator[dict[str, Any]]:
    """Every step object in `step` (a step or a list of them), nested ones included."""
    if isinstance(step, list):
        for item in step:
            yield from plan_steps(item)
        return
    if not isinstance(step, dict):
        return
    yield step
    for key in _NESTED_STEP_LISTS:
        yield from plan_steps(step.get(key))
    parallel = step.get("in_parallel")
    yield from plan_steps(parallel.get("steps") if isinstance(parallel, dict) else parallel)
    for key in _NESTED_STEPS:
        yield from plan_steps(step.get(key))


class GetStep(ApiModel):
    """A `get` step of a job: `name` is what builds list as the input's name, `resource` the
    resource it fetches (the same unless the step says `resource:`)."""

    name: str
    resource: str
    passed: list[str] = []
    trigger: bool = False


class ResourceConfig(ApiModel):
    """A resource as set in the pipeline config; `source` is free-form (`((vars))` kept)."""

    name: str
    type: str = ""
    source: dict[str, Any] = Field(default_factory=dict)

    @field_validator("source", mode="before")
    @classmethod
    def _null_is_empty(cls, value: Any) -> Any:
        return {} if value is None else value  # `json:"source"` without omitempty

    def source_strings(self, key: str) -> list[str]:
        """A list-of-strings source field such as git's `paths`; a lone string counts as one."""
        value = self.source.get(key)
        if isinstance(value, str):
            return [value]
        return [str(v) for v in value] if isinstance(value, list) else []


class JobConfig(ApiModel):
    """A job as set in the pipeline config; `plan` and hooks are kept as raw step objects."""

    name: str
    plan: list[dict[str, Any]] = []
    on_success: dict[str, Any] | None = None
    on_failure: dict[str, Any] | None = None
    on_error: dict[str, Any] | None = None
    on_abort: dict[str, Any] | None = None
    ensure: dict[str, Any] | None = None

    @field_validator("plan", mode="before")
    @classmethod
    def _null_is_empty(cls, value: Any) -> Any:
        return [] if value is None else value  # a job without steps

    def get_steps(self) -> list[GetStep]:
        """Every `get` step of the plan and the job's hooks, however deeply nested."""
        roots: list[Any] = [
            self.plan,
            self.on_success,
            self.on_failure,
            self.on_error,
            self.on_abort,
            self.ensure,
        ]
        found: list[GetStep] = []
        for step in plan_steps(roots):
            name = step.get("get")
            if isinstance(name, str) and name:
                found.append(
                    GetStep(
                        name=name,
                        resource=str(step.get("resource") or name),
                        passed=[str(p) for p in step.get("passed") or []],
                        trigger=bool(step.get("trigger")),
                    )
                )
        return found


class PipelineConfig(ApiModel):
    """`GET …/pipelines/:p/config`: the config as set, and `X-Concourse-Config-Version`."""

    version: int | None = None
    resources: list[ResourceConfig] = []
    jobs: list[JobConfig] = []

    @field_validator("resources", "jobs", mode="before")
    @classmethod
    def _absent_is_empty(cls, value: Any) -> Any:
        return [] if value is None else value  # omitempty in Go, but be lenient with null

    def job(self, name: str) -> JobConfig | None:
        """The job called `name`, if the pipeline has it."""
        return next((job for job in self.jobs if job.name == name), None)

    def resource(self, name: str) -> ResourceConfig | None:
        """The resource called `name`, if the pipeline has it."""
        return next((res for res in self.resources if res.name == name), None)


class ConfigEnvelope(ApiModel):
    """`{"config": …}`, the body of the pipeline config GET."""

    config: PipelineConfig


BUILDS = TypeAdapter(list[Build])
VERSIONS = TypeAdapter(list[ResourceVersion])
BUILD = TypeAdapter(Build)
BUILD_RESOURCES = TypeAdapter(BuildResources)
USER = TypeAdapter(UserInfo)
CONFIG = TypeAdapter(ConfigEnvelope)
JOBS = TypeAdapter(list[JobSummary])
PIPELINES = TypeAdapter(list[PipelineInfo])
RESOURCES = TypeAdapter(list[ResourceInfo])
RESOURCE = TypeAdapter(ResourceInfo)
PREPARATION = TypeAdapter(BuildPreparation)
