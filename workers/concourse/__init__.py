"""The Concourse client and the models of what it reads.

Private modules by concern: `_models` (what the API answers), `_auth` (logging in), `_logs`
(a build's log from its event stream) and `_client` (the requests).
"""

from workers.concourse._auth import FLY_CLIENT_AUTH, LOGIN_SCOPE, TOKEN_PATH, ConcourseAuth
from workers.concourse._client import ConcourseClient
from workers.concourse._models import (
    Build,
    BuildInput,
    BuildOutput,
    BuildRef,
    BuildResources,
    GetStep,
    JobConfig,
    MetadataField,
    PipelineConfig,
    ResourceConfig,
    ResourceVersion,
    UserInfo,
)

__all__ = [
    "FLY_CLIENT_AUTH",
    "LOGIN_SCOPE",
    "TOKEN_PATH",
    "Build",
    "BuildInput",
    "BuildOutput",
    "BuildRef",
    "BuildResources",
    "ConcourseAuth",
    "ConcourseClient",
    "GetStep",
    "JobConfig",
    "MetadataField",
    "PipelineConfig",
    "ResourceConfig",
    "ResourceVersion",
    "UserInfo",
]
