"""Redis storage of monitors, their event logs, decisions and shared caches.

Every key is spelled in workers/keys.py (its docstring lists them all), under the store's
namespace, `dm:<queue name>`.

A tick saves the monitor and appends its events in one MULTI, guarded by WATCH on the record
and a check of `seq`: a stale or duplicate tick cannot overwrite newer state or emit twice.
"""

from __future__ import annotations

import itertools
import json
import os
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, suppress
from typing import Any

import redis
from pydantic import BaseModel, TypeAdapter
from redis.lock import Lock

from workers import keys
from workers.events import DecisionChoice, Event, RerunAsked
from workers.keys import CACHE_TTL_SECONDS, FINISHED_TTL_SECONDS, as_text
from workers.monitor import Decision, Monitor


class RerunClaim(BaseModel):
    """Who asked for a prompt's rerun, and the new build's name once Concourse made it."""

    by: str
    rerun_name: str | None = None


class CommitHistory(BaseModel):
    """The commits reachable from a SHA with a committer date since `since`, newest first, as
    far as `pages` pages were read (`complete`: there are no more)."""

    since: float
    shas: list[str]
    pages: int = 0
    complete: bool = False


_EVENT = TypeAdapter[Event](Event)


class StaleTick(Exception):
    """The monitor moved on (its seq changed) while this tick ran; its result is dropped."""


class MonitorStore:
    """Monitor records, event logs and small shared caches in Redis."""

    def __init__(self, connection: redis.Redis, namespace: str = "dm") -> None:
        self.redis = connection
        # Every key starts with the namespace: deployments (and the demo, and each test)
        # sharing one Redis never see each other's monitors, nor each other's Concourse's
        # build ids in the caches.
        self.ns = namespace

    # -- monitors ---------------------------------------------------------------------------

    def load(self, monitor_id: str) -> Monitor | None:
        raw = self.redis.get(keys.monitor(self.ns, monitor_id))
        return Monitor.model_validate_json(raw) if raw else None

    def create(self, monitor: Monitor, events: list[Event], due_at: float) -> Monitor:
        """Store a new monitor unless an active one exists for the same id; returns the one
        that is now in charge (the existing one when the commit is already being followed)."""
        key = keys.monitor(self.ns, monitor.id)
        with self.redis.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(key)  # type: ignore[no-untyped-call]
                    raw = pipe.get(key)
                    if raw:
                        existing = Monitor.model_validate_json(raw)
                        if not existing.done:
                            pipe.unwatch()
                            return existing
                        # Following the commit again: continue its counters so tick job ids
                        # and failure prompts (and their recorded answers) are new ones.
                        monitor.seq = existing.seq + 1
                        monitor.prompts_issued = existing.prompts_issued
                    pipe.multi()
                    pipe.delete(keys.events(self.ns, monitor.id), keys.stop(self.ns, monitor.id))
                    self._write(pipe, monitor, events, due_at)
                    pipe.execute()
                    return monitor
                except redis.WatchError:
                    continue

    def commit(
        self, expected_seq: int, monitor: Monitor, events: list[Event], due_at: float
    ) -> None:
        """Save what the tick that loaded `expected_seq` computed (monitor.seq is the new seq)."""
        key = keys.monitor(self.ns, monitor.id)
        with self.redis.pipeline() as pipe:
            try:
                pipe.watch(key)  # type: ignore[no-untyped-call]
                raw = pipe.get(key)
                current = Monitor.model_validate_json(raw) if raw else None
                if current is None or current.seq != expected_seq:
                    raise StaleTick(monitor.id)
                pipe.multi()
                self._write(pipe, monitor, events, due_at)
                pipe.execute()
            except redis.WatchError:
                raise StaleTick(monitor.id) from None

    def _write(
        self, pipe: redis.client.Pipeline, monitor: Monitor, events: list[Event], due_at: float
    ) -> None:
        key = keys.monitor(self.ns, monitor.id)
        stream = keys.events(self.ns, monitor.id)
        pipe.set(key, monitor.model_dump_json())
        for event in events:
            pipe.xadd(stream, {"event": event.model_dump_json()})
        if monitor.done:
            pipe.zrem(keys.active(self.ns), monitor.id)
            pipe.expire(key, FINISHED_TTL_SECONDS)
            pipe.expire(stream, FINISHED_TTL_SECONDS)
        else:
            pipe.zadd(keys.active(self.ns), {monitor.id: due_at})

    def active_ids(self) -> list[str]:
        return [as_text(m) for m in self.redis.zrange(keys.active(self.ns), 0, -1)]

    def active_monitors(self) -> list[Monitor]:
        """Every active monitor's record (one round trip; a record that expired meanwhile is
        left out)."""
        ids = self.active_ids()
        raws = self.redis.mget([keys.monitor(self.ns, i) for i in ids]) if ids else []
        return [Monitor.model_validate_json(raw) for raw in raws if raw]

    def overdue_count(self, before: float) -> int:
        """How many active monitors should have ticked before `before`."""
        return int(self.redis.zcount(keys.active(self.ns), "-inf", before))

    def overdue_ids(self, before: float) -> list[str]:
        """Active monitors whose next tick should have run before `before`."""
        return [as_text(m) for m in self.redis.zrangebyscore(keys.active(self.ns), "-inf", before)]

    def forget(self, monitor_id: str) -> None:
        """Drop a monitor from the active set (its record is gone or finished)."""
        self.redis.zrem(keys.active(self.ns), monitor_id)

    def reschedule(self, monitor_id: str, due_at: float) -> None:
        self.redis.zadd(keys.active(self.ns), {monitor_id: due_at}, xx=True)

    def lock(self, monitor_id: str, timeout: float) -> AbstractContextManager[bool]:
        """Hold the monitor's lock (non-blocking); yields whether it was acquired.

        The lock is renewed while it is held, so a tick slowed by Slack or Concourse never
        shares its monitor with another worker; if the worker dies, it expires after `timeout`.
        """
        return self._try_lock(keys.lock(self.ns, monitor_id), timeout, keep_alive=True)

    @contextmanager
    def _try_lock(self, key: str, timeout: float, *, keep_alive: bool = False) -> Iterator[bool]:
        # Not thread-local: the renewing thread must see the token this thread acquired.
        lock = self.redis.lock(key, timeout=timeout, blocking=False, thread_local=False)
        acquired = bool(lock.acquire(blocking=False))
        kept = _KEEPER.keep(lock, timeout / 3) if acquired and keep_alive else None
        try:
            yield acquired
        finally:
            if kept is not None:
                _KEEPER.drop(kept)
            if acquired:
                # It may have expired while we ran; then someone else may hold it now.
                with suppress(redis.exceptions.LockError):
                    lock.release()

    # -- event log ---------------------------------------------------------------------------

    def events(
        self, monitor_id: str, after: str = "0-0", block_ms: int | None = None
    ) -> list[tuple[str, Event]]:
        """Events after stream id `after`, optionally waiting up to `block_ms` for new ones."""
        stream = keys.events(self.ns, monitor_id)
        entries: list[Any]
        if block_ms is None:
            rows: Any = self.redis.xrange(stream, min=f"({after}" if after != "0-0" else "-")
            entries = list(rows or [])
        else:
            reply: Any = self.redis.xread({stream: after}, block=block_ms)
            entries = [e for _, batch in reply for e in batch] if reply else []
        return [(as_text(rid), _EVENT.validate_json(fields[b"event"])) for rid, fields in entries]

    # -- decisions -------------------------------------------------------------------------

    def record_decision(
        self,
        monitor_id: str,
        prompt: int,
        choice: DecisionChoice,
        by: str,
        *,
        rerun: RerunAsked | None = None,
        reason: str | None = None,
    ) -> bool:
        """Record an answer to a failure prompt (with the rerun it asked for, or why it
        stops); False when someone answered first."""
        decision = Decision(prompt=prompt, choice=choice, by=by, rerun=rerun, reason=reason)
        return bool(
            self.redis.set(
                keys.decision(self.ns, monitor_id, prompt),
                decision.model_dump_json(),
                nx=True,
                ex=FINISHED_TTL_SECONDS,
            )
        )

    def decision(self, monitor_id: str, prompt: int) -> Decision | None:
        raw = self.redis.get(keys.decision(self.ns, monitor_id, prompt))
        return Decision.model_validate_json(raw) if raw else None

    # -- reruns ---------------------------------------------------------------------------

    def claim_rerun(self, monitor_id: str, prompt: int, by: str) -> RerunClaim | None:
        """Take the one rerun of prompt `prompt`'s build for `by`: None when taken, else the
        claim that was there first (its `by`, and its `rerun_name` once Concourse answered)."""
        key = keys.rerun(self.ns, monitor_id, prompt)
        claim = RerunClaim(by=by)
        if self.redis.set(key, claim.model_dump_json(), nx=True, ex=keys.RERUN_CLAIM_SECONDS):
            return None
        raw = self.redis.get(key)
        return RerunClaim.model_validate_json(raw) if raw else RerunClaim(by="")

    def finish_rerun(self, monitor_id: str, prompt: int, by: str, rerun_name: str) -> None:
        """Note the rerun Concourse made for the claim of `by`."""
        claim = RerunClaim(by=by, rerun_name=rerun_name)
        key = keys.rerun(self.ns, monitor_id, prompt)
        self.redis.set(key, claim.model_dump_json(), ex=FINISHED_TTL_SECONDS)

    def release_rerun(self, monitor_id: str, prompt: int, *, unanswered: bool = False) -> None:
        """Give the claim back: Concourse made no rerun, so one may be asked for again.
        `unanswered`: Concourse did not answer, so it may have made one after all; noted for
        the next ask (`rerun_unanswered`)."""
        with self.redis.pipeline() as pipe:
            if unanswered:
                key = keys.rerun_unanswered(self.ns, monitor_id, prompt)
                pipe.set(key, 1, ex=FINISHED_TTL_SECONDS)
            pipe.delete(keys.rerun(self.ns, monitor_id, prompt))
            pipe.execute()

    def rerun_unanswered(self, monitor_id: str, prompt: int) -> bool:
        """Whether a rerun request of prompt `prompt` went unanswered before."""
        return bool(self.redis.exists(keys.rerun_unanswered(self.ns, monitor_id, prompt)))

    def request_stop(self, monitor_id: str, by: str) -> bool:
        return bool(
            self.redis.set(keys.stop(self.ns, monitor_id), by, nx=True, ex=FINISHED_TTL_SECONDS)
        )

    def stop_requested_by(self, monitor_id: str) -> str | None:
        raw = self.redis.get(keys.stop(self.ns, monitor_id))
        return as_text(raw) if raw else None

    # -- shared caches ---------------------------------------------------------------------

    def cache_inputs(self, build_id: int, refs: dict[str, str]) -> None:
        self.redis.set(keys.inputs(self.ns, build_id), json.dumps(refs), ex=CACHE_TTL_SECONDS)

    def cached_covers(self, sha: str, ref: str) -> bool | None:
        raw = self.redis.hget(keys.covers(self.ns, sha), ref)
        return None if raw is None else raw == b"1"

    def cache_covers(self, sha: str, ref: str, covers: bool) -> None:
        key = keys.covers(self.ns, sha)
        with self.redis.pipeline() as pipe:
            pipe.hset(key, ref, "1" if covers else "0")
            pipe.expire(key, CACHE_TTL_SECONDS)
            pipe.execute()

    # -- shared observations (workers/observe.py) -------------------------------------------
    #
    # One answer per kind and name, shared by every monitor and worker, stored with the time it
    # was taken: "<taken_at>\n<payload>"; observe.py decides who may still use it.

    def shared_answers(self, kind: str, names: list[str]) -> dict[str, tuple[float, str]]:
        """Shared answers of `kind` for `names` (one round trip): name → (taken_at, payload);
        names without an answer are left out."""
        if not names:
            return {}
        raws = self.redis.mget([keys.shared(self.ns, kind, n) for n in names])
        return {name: _stamped(raw) for name, raw in zip(names, raws, strict=True) if raw}

    def save_shared_answer(
        self, kind: str, name: str, taken_at: float, payload: str, ttl: float
    ) -> None:
        """Publish an answer taken at `taken_at`; Redis drops it after `ttl` seconds."""
        self.redis.set(
            keys.shared(self.ns, kind, name), f"{taken_at!r}\n{payload}", px=max(1, int(ttl * 1000))
        )

    def fill_lock(self, kind: str, name: str, timeout: float) -> AbstractContextManager[bool]:
        """Hold the right to refresh one shared answer (non-blocking); yields whether taken."""
        return self._try_lock(keys.fill(self.ns, kind, name), timeout)

    def read_for_observation(
        self,
        monitor_id: str,
        prompt: int | None,
        job_keys: list[str],
        needs: dict[str, int],
        until: float,
        others: Sequence[tuple[str, str]] = (),
    ) -> tuple[str | None, Decision | None, dict[str, float], dict[tuple[str, str], float]]:
        """What a tick reads first, in one round trip: who asked to stop, the answer to the
        open prompt, and when each shared job listing was taken (not the listing itself: a
        worker keeps the ones it read), and as much of the shared answers `others` (kind,
        name). It also records the lowest build id the monitor needs listed per job, until
        `until`."""
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.get(keys.stop(self.ns, monitor_id))
            pipe.get(keys.decision(self.ns, monitor_id, prompt))
            for job_key in job_keys:
                pipe.getrange(keys.shared(self.ns, "builds", job_key), 0, _STAMP_BYTES)
            for kind, name in others:
                pipe.getrange(keys.shared(self.ns, kind, name), 0, _STAMP_BYTES)
            for job_key, floor in needs.items():
                key = keys.needs(self.ns, job_key)
                pipe.hset(key, monitor_id, f"{floor} {until!r}")
                pipe.expire(key, CACHE_TTL_SECONDS)
            stop, decision, *rest = pipe.execute()
        stamps = {name: _stamp_of(raw) for name, raw in zip(job_keys, rest, strict=False) if raw}
        other_raws = rest[len(job_keys) : len(job_keys) + len(others)]
        other_stamps = {
            pair: _stamp_of(raw) for pair, raw in zip(others, other_raws, strict=True) if raw
        }
        return (
            as_text(stop) if stop else None,
            Decision.model_validate_json(decision) if decision and prompt is not None else None,
            stamps,
            other_stamps,
        )

    def live_needs(self, job_key: str, now: float) -> list[int]:
        """The build ids monitors still need listed for a job; forgets expired needs."""
        key = keys.needs(self.ns, job_key)
        floors: list[int] = []
        expired: list[str] = []
        for field, value in self.redis.hgetall(key).items():
            floor, _, until = as_text(value).partition(" ")
            if float(until) > now:
                floors.append(int(floor))
            else:
                expired.append(as_text(field))
        if expired:
            self.redis.hdel(key, *expired)
        return floors

    def cached_version_ids(self, pipeline: str, resource: str, sha: str) -> list[int] | None:
        """Ids of the versions of `resource` whose ref is `sha`, if they were seen."""
        raw = self.redis.get(keys.versions(self.ns, pipeline, resource, sha))
        return [int(v) for v in json.loads(raw)] if raw else None

    def cache_version_ids(self, pipeline: str, resource: str, sha: str, ids: list[int]) -> None:
        """Remember a commit's version ids (found ones only: "not yet" may change)."""
        self.redis.set(
            keys.versions(self.ns, pipeline, resource, sha),
            json.dumps(ids),
            ex=CACHE_TTL_SECONDS,
        )

    def cached_inputs_many(self, build_ids: list[int]) -> dict[int, dict[str, str]]:
        """Recorded input refs of these builds (one round trip); unknown ones are left out."""
        if not build_ids:
            return {}
        raws = self.redis.mget([keys.inputs(self.ns, b) for b in build_ids])
        return {b: dict(json.loads(r)) for b, r in zip(build_ids, raws, strict=True) if r}

    def cached_covers_many(self, sha: str, refs: list[str]) -> dict[str, bool]:
        """Known answers to "is ref sha or a descendant of it" (one round trip)."""
        if not refs:
            return {}
        raws = self.redis.hmget(keys.covers(self.ns, sha), refs)
        return {ref: raw == b"1" for ref, raw in zip(refs, raws, strict=True) if raw is not None}

    def cached_history(self, sha: str) -> CommitHistory | None:
        """What was read of the commits reachable from `sha` (see `CommitHistory`)."""
        raw = self.redis.get(keys.history(self.ns, sha))
        return None if raw is None else CommitHistory.model_validate_json(raw)

    def cache_history(self, sha: str, history: CommitHistory) -> None:
        payload = history.model_dump_json()
        self.redis.set(keys.history(self.ns, sha), payload, ex=CACHE_TTL_SECONDS)

    def cached_log_tail(self, build_id: int) -> str | None:
        """The log tail read from a finished build, if any monitor read it."""
        raw = self.redis.get(keys.log_tail(self.ns, build_id))
        return None if raw is None else as_text(raw)

    def cache_log_tail(self, build_id: int, text: str) -> None:
        """Keep a finished build's log tail for every monitor that reports it."""
        self.redis.set(keys.log_tail(self.ns, build_id), text, ex=CACHE_TTL_SECONDS)

    def cached_commit(self, sha: str) -> str | None:
        """A commit as read from GitHub (JSON), if some question read it (full SHAs only)."""
        raw = self.redis.get(keys.commit(self.ns, sha))
        return None if raw is None else as_text(raw)

    def cache_commit(self, sha: str, payload: str) -> None:
        """Keep a commit's headline, date and files: a SHA's never change."""
        self.redis.set(keys.commit(self.ns, sha), payload, ex=CACHE_TTL_SECONDS)


# A shared answer starts with the time it was taken: "1795826478.4936967\n…".
_STAMP_BYTES = 40


def _stamp_of(raw: Any) -> float:
    """When a shared answer was taken, from its first bytes."""
    return float(as_text(raw).partition("\n")[0])


def _stamped(raw: Any) -> tuple[float, str]:
    """A shared answer as stored: "<taken_at>\n<payload>"."""
    stamp, _, payload = as_text(raw).partition("\n")
    return float(stamp), payload


# With nothing held, the keeper looks this often: a new lock's first renewal is due a third
# of its timeout later, which is longer.
IDLE_LOOK_SECONDS = 1.0


class _LockKeeper:
    """Renews the held monitor locks of this process from one daemon thread (a thread per
    tick would cost more than the tick's own Redis work)."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._held: dict[int, tuple[Lock, float, float]] = {}  # → (lock, period, next renewal)
        self._ids = itertools.count()
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._wake_at = 0.0  # when the thread looks next (monotonic)

    def keep(self, lock: Lock, period: float) -> int:
        with self._changed:
            if self._thread is None or self._pid != os.getpid():
                # A forked child needs its own thread, and holds none of its parent's locks.
                self._pid = os.getpid()
                self._held.clear()
                self._thread = threading.Thread(target=self._run, daemon=True)
                self._thread.start()
            kept = next(self._ids)
            at = time.monotonic() + period
            self._held[kept] = (lock, period, at)
            if at < self._wake_at:
                self._changed.notify()  # sooner than the thread's next look (rare: not a tick's)
            return kept

    def drop(self, kept: int) -> None:
        with self._changed:
            self._held.pop(kept, None)

    def _run(self) -> None:
        while True:
            with self._changed:
                now = time.monotonic()
                due = [(k, lock) for k, (lock, _, at) in self._held.items() if at <= now]
                for kept, _ in due:
                    lock, period, _ = self._held[kept]
                    self._held[kept] = (lock, period, now + period)
            for kept, lock in due:
                try:
                    lock.reacquire()
                except redis.exceptions.LockError:
                    self.drop(kept)  # released or lost meanwhile: the tick's commit is fenced
                except redis.exceptions.RedisError:
                    pass  # a blip: tried again next period, before the lock runs out
            with self._changed:
                idle = time.monotonic() + IDLE_LOOK_SECONDS
                self._wake_at = min((at for _, _, at in self._held.values()), default=idle)
                self._changed.wait(max(0.0, self._wake_at - time.monotonic()))


_KEEPER = _LockKeeper()
