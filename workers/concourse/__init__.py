"""The Concourse client and the models of what it reads.

Private modules by concern: `_models` (what the API answers), `_auth` (logging in), `_logs`
(a build's log from its event stream) and `_client` (the requests).
"""

from workers.concourse._auth import FLY_CLIENT_AUTH, LOGIN_SCOPE, TOKEN_PATH, ConcourseAuth
from workers.concourse._client import RERUN_ROLE_NEEDED, RERUN_ROLES, ConcourseClient
from workers.concourse._models import (
    Build,
    BuildInput,
    BuildOutput,
    BuildPreparation,
    BuildRef,
    BuildResources,
    BuildSummary,
    GetStep,
    JobConfig,
    JobInputSummary,
    JobSummary,
    MetadataField,
    PipelineConfig,
    PipelineInfo,
    ResourceConfig,
    ResourceInfo,
    ResourceVersion,
    UserInfo,
)

__all__ = [
    "FLY_CLIENT_AUTH",
    "LOGIN_SCOPE",
    "RERUN_ROLES",
    "RERUN_ROLE_NEEDED",
    "TOKEN_PATH",
    "Build",
    "BuildInput",
    "BuildOutput",
    "BuildPreparation",
    "BuildRef",
    "BuildResources",
    "BuildSummary",
    "ConcourseAuth",
    "ConcourseClient",
    "GetStep",
    "JobConfig",
    "JobInputSummary",
    "JobSummary",
    "MetadataField",
    "PipelineConfig",
    "PipelineInfo",
    "ResourceConfig",
    "ResourceInfo",
    "ResourceVersion",
    "UserInfo",
]
