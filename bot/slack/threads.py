"""Where each monitor lives in Slack: channel, parent message, delivery cursor, failure prompts.

Kept apart from the Monitor record on purpose: the bot and the notifier write here while ticks
are running, and the Monitor record is only ever written by a tick (its `seq` fences it).

Keys:
    dm:slack:<monitor id>          hash: channel, parent_ts, requester, permalink, cursor, the
                                   run id, and per message key (`event:<seq>`, `dm`, …) what
                                   was posted (`post:<key>` → ts) or is being posted
                                   (`inflight:<key>` → where and since when)
    dm:slack-msg:<channel>:<ts>    which monitor and prompt a failure message belongs to
    dm:slack-event:<event id>      Events API deliveries already handled (Slack retries)
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

import redis

from workers.events import StageFailed
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
    # Identifies this run of the monitor in message metadata (a commit followed again is a
    # new run with the same monitor id).
    run: str = ""
    # The new parent, while the notice that the old one was deleted is not posted yet.
    moved_to: str = ""


@dataclass(frozen=True)
class PostAttempt:
    """A post whose outcome is unknown (in flight, or its answer was lost)."""

    channel: str
    thread_ts: str | None
    since: float


def new_run_id() -> str:
    return uuid.uuid4().hex[:16]


def parent_key(run: str) -> str:
    """The message key of a run's first status board."""
    return f"parent-of-run:{run}"


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
        self,
        monitor_id: str,
        *,
        channel: str,
        parent_ts: str,
        requester: str,
        permalink: str,
        run: str = "",
    ) -> None:
        key = f"{self.ns}:slack:{monitor_id}"
        run = run or new_run_id()
        with self.redis.pipeline() as pipe:
            # A new run starts clean (message keys repeat between runs); the same run again (a
            # start job run a second time) keeps what it already posted, the parent included.
            if _text(self.redis.hget(key, "run") or b"") != run:
                pipe.delete(key)
            pipe.hset(
                key,
                mapping={
                    "channel": channel,
                    "parent_ts": parent_ts,
                    "requester": requester,
                    "permalink": permalink,
                    "cursor": 0,
                    "run": run,
                    # The parent is this run's first post: kept, so it is never posted twice.
                    f"post:{parent_key(run)}": parent_ts,
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
            run=raw.get("run", ""),
            moved_to=raw.get("moved_to", ""),
        )

    def advance(self, monitor_id: str, seq: int) -> None:
        """Record that events up to `seq` are in Slack (called after each one)."""
        self.redis.hset(f"{self.ns}:slack:{monitor_id}", "cursor", seq)

    def move_parent(self, monitor_id: str, parent_ts: str, permalink: str) -> None:
        """Follow the commit under a new parent; `moved_to` stays set until the notice saying
        so is posted (`notice_posted`)."""
        self.redis.hset(
            f"{self.ns}:slack:{monitor_id}",
            mapping={"parent_ts": parent_ts, "permalink": permalink, "moved_to": parent_ts},
        )

    def notice_posted(self, monitor_id: str) -> None:
        self.redis.hdel(f"{self.ns}:slack:{monitor_id}", "moved_to")

    # -- posting each message once ---------------------------------------------------------

    def posted(self, monitor_id: str, key: str) -> str | None:
        """The ts of message `key` if it is known to be in Slack."""
        raw = self.redis.hget(f"{self.ns}:slack:{monitor_id}", f"post:{key}")
        return _text(raw) if raw else None

    def attempt(self, monitor_id: str, key: str) -> PostAttempt | None:
        """The attempt to post `key` whose outcome is unknown, if any."""
        raw = self.redis.hget(f"{self.ns}:slack:{monitor_id}", f"inflight:{key}")
        if not raw:
            return None
        data = json.loads(raw)
        return PostAttempt(data["channel"], data.get("thread_ts"), float(data["since"]))

    def begin_post(self, monitor_id: str, key: str, attempt: PostAttempt) -> None:
        """Written before the post: after a crash, whoever delivers next looks Slack up."""
        value = {"channel": attempt.channel, "thread_ts": attempt.thread_ts, "since": attempt.since}
        self.redis.hset(f"{self.ns}:slack:{monitor_id}", f"inflight:{key}", json.dumps(value))

    def abandon_post(self, monitor_id: str, key: str) -> None:
        """Slack refused the post outright (nothing was stored): no look-up is needed."""
        self.redis.hdel(f"{self.ns}:slack:{monitor_id}", f"inflight:{key}")

    def record_post(self, monitor_id: str, key: str, ts: str) -> None:
        """Message `key` is in Slack as `ts`."""
        key_ = f"{self.ns}:slack:{monitor_id}"
        with self.redis.pipeline() as pipe:
            pipe.hset(key_, f"post:{key}", ts)
            pipe.hdel(key_, f"inflight:{key}")
            pipe.execute()

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
