"""Which channels follow every commit on a repository's main branch, and how loudly.

A subscription is per (repository, channel): `all` posts the whole journey in the channel's
thread, `failures` only failures, warnings and the outcome. The engine's watcher of main
(`workers/mainline.py`) reads them to know which repositories to look at; the Slack face
writes them (`/deploy-monitor subscribe`) and reads them to know where to post. Channels are
plain ids here: the engine knows no Slack.

Keys (workers/keys.py): `subscribed(ns)`, the set of repositories with a subscription, and
`subscriptions(ns, repository)`, a hash channel → `Subscription` (JSON). Kept without
expiry: a subscription lasts until `unsubscribe`.
"""

from __future__ import annotations

from typing import Literal

import redis
from pydantic import BaseModel, ConfigDict, ValidationError

from workers import keys
from workers.keys import as_text

SubscriptionMode = Literal["all", "failures"]


class Subscription(BaseModel):
    """One channel's subscription to one repository's main (a persistence format)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    repository: str
    channel: str
    mode: SubscriptionMode = "all"
    # The Slack user who subscribed, and when (epoch seconds): the oldest one owns the thread.
    by: str = ""
    since: float = 0.0


class SubscriptionStore:
    """Redis-backed subscriptions, under the engine store's namespace."""

    def __init__(self, connection: redis.Redis, namespace: str = "dm") -> None:
        self.redis = connection
        self.ns = namespace

    def subscribe(self, subscription: Subscription) -> Subscription | None:
        """Record `subscription`, replacing the channel's earlier one (its mode may change, its
        age is kept); returns the earlier one, if any."""
        key = keys.subscriptions(self.ns, subscription.repository)
        earlier = self._get(subscription.repository, subscription.channel)
        if earlier is not None:
            subscription = subscription.model_copy(update={"since": earlier.since})
        with self.redis.pipeline() as pipe:
            pipe.hset(key, subscription.channel, subscription.model_dump_json())
            pipe.sadd(keys.subscribed(self.ns), subscription.repository)
            pipe.execute()
        return earlier

    def unsubscribe(self, repository: str, channel: str) -> bool:
        """End the channel's subscription; False when it had none."""
        removed = bool(self.redis.hdel(keys.subscriptions(self.ns, repository), channel))
        if removed and not self.redis.hlen(keys.subscriptions(self.ns, repository)):
            # A subscribe racing this puts the repository back in its own SADD.
            self.redis.srem(keys.subscribed(self.ns), repository)
        return removed

    def for_repository(self, repository: str) -> list[Subscription]:
        """The repository's subscriptions, oldest first (the first one owns the thread)."""
        found = []
        for raw in self.redis.hvals(keys.subscriptions(self.ns, repository)):
            subscription = _parse(raw)
            if subscription is not None:
                found.append(subscription)
        return sorted(found, key=lambda s: (s.since, s.channel))

    def for_channel(self, channel: str) -> list[Subscription]:
        """The channel's subscriptions, one per repository, by repository."""
        found = []
        for repository in sorted(self.repositories()):
            subscription = self._get(repository, channel)
            if subscription is not None:
                found.append(subscription)
        return found

    def repositories(self) -> set[str]:
        """Repositories at least one channel subscribed to."""
        return {as_text(r) for r in self.redis.smembers(keys.subscribed(self.ns))}

    def _get(self, repository: str, channel: str) -> Subscription | None:
        raw = self.redis.hget(keys.subscriptions(self.ns, repository), channel)
        return _parse(raw) if raw else None


def _parse(raw: bytes | str) -> Subscription | None:
    try:
        return Subscription.model_validate_json(raw)
    except ValidationError:
        return None  # written by a release that stored something else: ignored
