"""Where each monitor lives in Slack: channel, parent message, delivery cursor, failure prompts.

Kept apart from the Monitor record on purpose: the bot and the notifier write here while ticks
are running, and the Monitor record is only ever written by a tick (its `seq` fences it).

Keys (spelled in workers/keys.py):
    slack_thread(ns, id)           hash: channel, parent_ts, requester, permalink, cursor, the
                                   run id, the mode ("all" or "failures"), and per message
                                   key (`event:<seq>`, `dm`, …) what was posted (`post_field`
                                   → ts) or is being posted (`inflight_field` → where and
                                   since when)
    slack_message(ns, channel, ts) which monitor and prompt a failure message belongs to
    slack_event(ns, event id)      Events API deliveries already handled (Slack retries)
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import redis
from pydantic import BaseModel, ConfigDict, ValidationError

from workers import keys
from workers.events import StageFailed
from workers.keys import EVENT_DEDUPE_SECONDS, FINISHED_TTL_SECONDS, as_text


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
    # What the thread gets: "all" events, or only "failures" (a `subscribe failures`
    # channel's: failures, warnings and the outcome).
    mode: str = "all"


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


# -- what is stored, as stored (a persistence format: field names never change) -------------


class _ThreadFields(BaseModel):
    """The thread hash's scalar fields; per-message fields are read one by one."""

    model_config = ConfigDict(extra="ignore")

    channel: str
    parent_ts: str
    requester: str = ""
    permalink: str = ""
    cursor: int = 0
    run: str = ""
    moved_to: str = ""
    mode: str = "all"


class _Attempt(BaseModel):
    channel: str
    thread_ts: str | None = None
    since: float


class _PromptRef(BaseModel):
    monitor: str
    prompt: int


class _PromptRecord(BaseModel):
    channel: str
    ts: str
    event: StageFailed


class SlackThreads:
    """Redis-backed map from monitors to their Slack thread, and back."""

    def __init__(self, connection: redis.Redis, namespace: str = "dm") -> None:
        self.redis = connection
        self.ns = namespace  # the engine store's namespace

    def _key(self, monitor_id: str) -> str:
        return keys.slack_thread(self.ns, monitor_id)

    def create(
        self,
        monitor_id: str,
        *,
        channel: str,
        parent_ts: str,
        requester: str,
        permalink: str,
        run: str = "",
        mode: str = "all",
    ) -> None:
        key = self._key(monitor_id)
        run = run or new_run_id()
        with self.redis.pipeline() as pipe:
            # A new run starts clean (message keys repeat between runs); the same run again (a
            # start job run a second time) keeps what it already posted, the parent included.
            if as_text(self.redis.hget(key, "run") or b"") != run:
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
                    "mode": mode,
                    # The parent is this run's first post: kept, so it is never posted twice.
                    keys.post_field(parent_key(run)): parent_ts,
                },
            )
            pipe.execute()

    def get(self, monitor_id: str) -> SlackThread | None:
        stored = self.redis.hgetall(self._key(monitor_id))
        try:
            fields = _ThreadFields.model_validate(
                {as_text(k): as_text(v) for k, v in stored.items()}
            )
        except ValidationError:  # no thread (yet), or only counters of a finished one
            return None
        return SlackThread(monitor_id=monitor_id, **fields.model_dump())

    def advance(self, monitor_id: str, seq: int) -> None:
        """Record that events up to `seq` are in Slack (called after each one)."""
        self.redis.hset(self._key(monitor_id), "cursor", seq)

    def move_parent(self, monitor_id: str, parent_ts: str, permalink: str) -> None:
        """Follow the commit under a new parent; `moved_to` stays set until the notice saying
        so is posted (`notice_posted`)."""
        self.redis.hset(
            self._key(monitor_id),
            mapping={"parent_ts": parent_ts, "permalink": permalink, "moved_to": parent_ts},
        )

    def notice_posted(self, monitor_id: str) -> None:
        self.redis.hdel(self._key(monitor_id), "moved_to")

    # -- posting each message once ---------------------------------------------------------

    def posted(self, monitor_id: str, key: str) -> str | None:
        """The ts of message `key` if it is known to be in Slack."""
        raw = self.redis.hget(self._key(monitor_id), keys.post_field(key))
        return as_text(raw) if raw else None

    def attempt(self, monitor_id: str, key: str) -> PostAttempt | None:
        """The attempt to post `key` whose outcome is unknown, if any."""
        raw = self.redis.hget(self._key(monitor_id), keys.inflight_field(key))
        if not raw:
            return None
        stored = _Attempt.model_validate_json(raw)
        return PostAttempt(stored.channel, stored.thread_ts, stored.since)

    def begin_post(self, monitor_id: str, key: str, attempt: PostAttempt) -> None:
        """Written before the post: after a crash, whoever delivers next looks Slack up."""
        value = _Attempt(channel=attempt.channel, thread_ts=attempt.thread_ts, since=attempt.since)
        self.redis.hset(self._key(monitor_id), keys.inflight_field(key), value.model_dump_json())

    def abandon_post(self, monitor_id: str, key: str) -> None:
        """Slack refused the post outright (nothing was stored): no look-up is needed."""
        self.redis.hdel(self._key(monitor_id), keys.inflight_field(key))

    def record_post(self, monitor_id: str, key: str, ts: str) -> None:
        """Message `key` is in Slack as `ts`."""
        thread = self._key(monitor_id)
        with self.redis.pipeline() as pipe:
            pipe.hset(thread, keys.post_field(key), ts)
            pipe.hdel(thread, keys.inflight_field(key))
            pipe.execute()

    def count_failure(self, monitor_id: str, seq: int) -> int:
        """How many times delivering event `seq` failed; lets a poison message be skipped."""
        return int(self.redis.hincrby(self._key(monitor_id), keys.failures_field(seq), 1))

    def finish(self, monitor_id: str) -> None:
        self.redis.expire(self._key(monitor_id), FINISHED_TTL_SECONDS)

    # -- failure prompts --------------------------------------------------------------------

    def remember_prompt(self, monitor_id: str, event: StageFailed, channel: str, ts: str) -> None:
        assert event.prompt is not None
        with self.redis.pipeline() as pipe:
            pipe.set(
                keys.slack_message(self.ns, channel, ts),
                _PromptRef(monitor=monitor_id, prompt=event.prompt).model_dump_json(),
                ex=FINISHED_TTL_SECONDS,
            )
            pipe.hset(
                self._key(monitor_id),
                keys.prompt_field(event.prompt),
                _PromptRecord(channel=channel, ts=ts, event=event).model_dump_json(),
            )
            pipe.execute()

    def prompt_at(self, channel: str, ts: str) -> FailurePromptMessage | None:
        """The failure prompt posted as message (channel, ts), if it is one."""
        raw = self.redis.get(keys.slack_message(self.ns, channel, ts))
        if not raw:
            return None
        ref = _PromptRef.model_validate_json(raw)
        return self.prompt(ref.monitor, ref.prompt)

    def prompt(self, monitor_id: str, prompt: int) -> FailurePromptMessage | None:
        raw = self.redis.hget(self._key(monitor_id), keys.prompt_field(prompt))
        if not raw:
            return None
        stored = _PromptRecord.model_validate_json(raw)
        return FailurePromptMessage(
            monitor_id=monitor_id,
            prompt=prompt,
            channel=stored.channel,
            ts=stored.ts,
            event=stored.event,
        )

    # -- Events API retries -----------------------------------------------------------------

    def first_delivery(self, event_id: str) -> bool:
        """True the first time an Events API `event_id` is seen (Slack redelivers on timeouts)."""
        return bool(
            self.redis.set(keys.slack_event(self.ns, event_id), 1, nx=True, ex=EVENT_DEDUPE_SECONDS)
        )
