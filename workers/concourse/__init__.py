"""The Concourse client and the models of what it reads. See `_client` for the details."""

from workers.concourse._client import (
    FLY_CLIENT_AUTH,
    LOGIN_SCOPE,
    TOKEN_PATH,
    Build,
    BuildInput,
    BuildOutput,
    BuildRef,
    BuildResources,
    ConcourseClient,
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
    "ConcourseClient",
    "GetStep",
    "JobConfig",
    "MetadataField",
    "PipelineConfig",
    "ResourceConfig",
    "ResourceVersion",
    "UserInfo",
]
