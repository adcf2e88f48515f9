"""Where each monitor lives in Slack: channel, parent message, delivery cursor, failure prompts.

Kept apart from the Monitor record on purpose: the bot and the notifier write here while ticks
are running, and the Monitor record is only ever written by a tick (its `seq` fences it).

Keys:
    dm:slack:<monitor id>          hash: channel, parent_ts, requester, permalink, cursor, …
    dm:slack-msg:<channel>:<ts>    which monitor and prompt a failure message belongs to
    dm:slack-event:<event id>      Events API deliveries already handled (Slack retries)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import redis

from workers.monitor import StageFailed
from workers.store import FINISHED_TTL_SECONDS

EVENT_DEDUPE_SECONDS = 3600


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


@dataclass(frozen=True)
class SlackThread:
    monitor_id: str
    channel: str
    parent_ts: str
    requester: str
    permalink: str
    cursor: int


@dataclass(frozen=True)
class FailurePromptMessage:
    monitor_id: str
    prompt: int
    channel: str
    ts: str
    event: StageFailed


class SlackThreads:
    """Redis-backed map from monitors to their Slack thread, and back."""

    def __init__(self, connection: redis.Redis, namespace: str = "dm") -> None:
        self.redis = connection
        self.ns = namespace  # the engine store's namespace

    def create(
        self, monitor_id: str, *, channel: str, parent_ts: str, requester: str, permalink: str
    ) -> None:
        key = f"{self.ns}:slack:{monitor_id}"
        with self.redis.pipeline() as pipe:
            pipe.delete(key)
            pipe.hset(
                key,
                mapping={
                    "channel": channel,
                    "parent_ts": parent_ts,
                    "requester": requester,
                    "permalink": permalink,
                    "cursor": 0,
                },
            )
            pipe.execute()

    def get(self, monitor_id: str) -> SlackThread | None:
        raw = {
            _text(k): _text(v)
            for k, v in self.redis.hgetall(f"{self.ns}:slack:{monitor_id}").items()
        }
        if "parent_ts" not in raw:
            return None
        return SlackThread(
            monitor_id=monitor_id,
            channel=raw["channel"],
            parent_ts=raw["parent_ts"],
            requester=raw.get("requester", ""),
            permalink=raw.get("permalink", ""),
            cursor=int(raw.get("cursor", "0")),
        )

    def advance(self, monitor_id: str, seq: int) -> None:
        """Record that events up to `seq` are in Slack (called after each one)."""
        self.redis.hset(f"{self.ns}:slack:{monitor_id}", "cursor", seq)

    def move_parent(self, monitor_id: str, parent_ts: str, permalink: str) -> None:
        self.redis.hset(
            f"{self.ns}:slack:{monitor_id}",
            mapping={"parent_ts": parent_ts, "permalink": permalink},
        )

    def mark_once(self, monitor_id: str, flag: str) -> bool:
        """True the first time `flag` is marked for this monitor (e.g. the final DM)."""
        return bool(self.redis.hsetnx(f"{self.ns}:slack:{monitor_id}", f"once:{flag}", 1))

    def count_failure(self, monitor_id: str, seq: int) -> int:
        """How many times delivering event `seq` failed; lets a poison message be skipped."""
        return int(self.redis.hincrby(f"{self.ns}:slack:{monitor_id}", f"failures:{seq}", 1))

    def finish(self, monitor_id: str) -> None:
        self.redis.expire(f"{self.ns}:slack:{monitor_id}", FINISHED_TTL_SECONDS)

    # -- failure prompts --------------------------------------------------------------------

    def remember_prompt(self, monitor_id: str, event: StageFailed, channel: str, ts: str) -> None:
        assert event.prompt is not None
        with self.redis.pipeline() as pipe:
            pipe.set(
                f"{self.ns}:slack-msg:{channel}:{ts}",
                json.dumps({"monitor": monitor_id, "prompt": event.prompt}),
                ex=FINISHED_TTL_SECONDS,
            )
            pipe.hset(
                f"{self.ns}:slack:{monitor_id}",
                f"prompt:{event.prompt}",
                json.dumps({"channel": channel, "ts": ts, "event": event.model_dump(mode="json")}),
            )
            pipe.execute()

    def prompt_at(self, channel: str, ts: str) -> FailurePromptMessage | None:
        """The failure prompt posted as message (channel, ts), if it is one."""
        raw = self.redis.get(f"{self.ns}:slack-msg:{channel}:{ts}")
        if not raw:
            return None
        ref = json.loads(raw)
        return self.prompt(ref["monitor"], int(ref["prompt"]))

    def prompt(self, monitor_id: str, prompt: int) -> FailurePromptMessage | None:
        raw = self.redis.hget(f"{self.ns}:slack:{monitor_id}", f"prompt:{prompt}")
        if not raw:
            return None
        data = json.loads(raw)
        return FailurePromptMessage(
            monitor_id=monitor_id,
            prompt=prompt,
            channel=data["channel"],
            ts=data["ts"],
            event=StageFailed.model_validate(data["event"]),
        )

    # -- Events API retries -----------------------------------------------------------------

    def first_delivery(self, event_id: str) -> bool:
        """True the first time an Events API `event_id` is seen (Slack redelivers on timeouts)."""
        return bool(
            self.redis.set(f"{self.ns}:slack-event:{event_id}", 1, nx=True, ex=EVENT_DEDUPE_SECONDS)
        )
