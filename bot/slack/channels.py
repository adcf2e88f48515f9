"""Which repository a channel's targets mean when they name none: `/deploy-monitor use
owner/repo` sets it, for everyone in the channel; unset, it is the deployment's default."""

from __future__ import annotations

import redis

from workers import keys
from workers.repositories import ServedRepositories


class ChannelRepositories:
    """Each channel's chosen repository, under the engine store's namespace (kept without
    expiry: a channel's choice outlives any monitor)."""

    def __init__(
        self, connection: redis.Redis, repositories: ServedRepositories, namespace: str = "dm"
    ) -> None:
        self.redis = connection
        self.repositories = repositories
        self.key = keys.slack_channel_repositories(namespace)

    def chosen(self, channel: str) -> str | None:
        """The repository `channel` chose, if it is still served."""
        raw = self.redis.hget(self.key, channel) if channel else None
        found = self.repositories.find(keys.as_text(raw)) if raw else None
        return found.name if found else None

    def of(self, channel: str) -> str:
        """What a target in `channel` naming no repository means."""
        return self.chosen(channel) or self.repositories.default.name

    def use(self, channel: str, repository: str) -> str | None:
        """Make `repository` (a served one's name) the channel's; returns the earlier choice."""
        earlier = self.chosen(channel)
        self.redis.hset(self.key, channel, repository)
        return earlier
