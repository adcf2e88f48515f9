"""RQ entry points (`tick`) and the reaper that restarts broken tick chains.

A tick: load the monitor → check its seq (a stale or duplicate tick returns at once) → take the
monitor's lock → observe → transition → save monitor and events in one transaction → schedule
the next tick under a new job id. A crash anywhere leaves either the old state (the reaper will
tick again) or the new one (its next tick is due); never half of each.

The reaper runs as a thread in every worker process rather than as a scheduled job: when a
worker dies, RQ's scheduler lock stays taken for a minute and other workers only retry it at
their maintenance interval, so a reaper that needed the scheduler would stall with it.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator

import structlog
from rq.registry import StartedJobRegistry

from workers import keys, metrics
from workers.engine import Engine
from workers.errors import ConfigError, GitHubRateLimited
from workers.monitor import Monitor, transition
from workers.reruns import request_rerun
from workers.settings import EngineSettings, load_settings
from workers.store import StaleTick

log = logging.getLogger(__name__)

_engine: Engine | None = None


def install(engine: Engine) -> None:
    """Give jobs in this process (and forked work horses) the engine built by the CLI."""
    global _engine
    _engine = engine


def engine() -> Engine:
    """The installed engine, or one built from the environment (e.g. under plain `rq worker`)."""
    global _engine
    if _engine is None:
        _engine = Engine(load_settings(EngineSettings))
    return _engine.for_this_process()


# Bound for the length of a tick: every log line it causes (ours, rq's, httpx's) carries them.
LOG_CONTEXT = ("monitor_id", "commit", "stage")


@contextlib.contextmanager
def _log_context(monitor_id: str) -> Iterator[None]:
    structlog.contextvars.bind_contextvars(monitor_id=monitor_id)
    try:
        yield
    finally:
        structlog.contextvars.unbind_contextvars(*LOG_CONTEXT)


def _bind_monitor(monitor: Monitor) -> None:
    """Add the commit and the stage in progress (the first one not yet passed) to the logs."""
    stage = next((s.id for s in monitor.stages if s.state in ("running", "failed")), None)
    stage = stage or next((s.id for s in monitor.stages if s.state == "waiting"), None)
    structlog.contextvars.bind_contextvars(commit=monitor.short_sha)
    if stage is None:
        structlog.contextvars.unbind_contextvars("stage")
    else:
        structlog.contextvars.bind_contextvars(stage=stage)


def tick(monitor_id: str, seq: int) -> str:
    """Advance monitor `monitor_id` by one step if it is still at `seq`. Returns what happened
    (also the `outcome` label of the tick counter; "error" when it raised)."""
    started = time.perf_counter()
    outcome = "error"
    with _log_context(monitor_id):
        try:
            outcome = _tick(monitor_id, seq)
            return outcome
        finally:
            metrics.TICKS.labels(outcome).inc()
            metrics.TICK_SECONDS.observe(time.perf_counter() - started)


def _tick(monitor_id: str, seq: int) -> str:
    eng = engine()
    monitor = eng.store.load(monitor_id)
    if monitor is None or monitor.done or monitor.seq != seq:
        return "stale"
    with eng.store.lock(monitor_id, timeout=eng.settings.tick_timeout) as acquired:
        if not acquired:
            return "busy"
        monitor = eng.store.load(monitor_id)
        if monitor is None or monitor.done or monitor.seq != seq:
            return "stale"
        _bind_monitor(monitor)
        now = eng.clock()
        try:
            chain = eng.chain_for(monitor.repository)
        except ConfigError as exc:
            # Its repository left the configuration: keep the monitor (it carries on if the
            # repository comes back) and look again after a reaper period, not every poll.
            log.error("monitor %s cannot be followed: %s", monitor_id, exc)
            eng.store.reschedule(monitor_id, now + eng.settings.reap_seconds)
            eng.schedule_tick(monitor, delay=eng.settings.reap_seconds, suffix=f"-u{int(now)}")
            return "unserved"
        try:
            observation = eng.observer_for(monitor.repository).observe(monitor, now)
        except GitHubRateLimited as exc:
            # Nothing learned; try the same step again after the reset, not in a busy loop.
            delay = max(exc.reset_at - now, eng.settings.poll_seconds)
            eng.store.reschedule(monitor_id, now + delay)
            eng.schedule_tick(monitor, delay=delay, suffix=f"-rl{int(exc.reset_at)}")
            return "rate-limited"
        updated, events = transition(monitor, observation, chain)
        _bind_monitor(updated)  # notifications below are about the new state
        updated.seq = seq + 1
        due_at = now + eng.settings.poll_seconds
        if updated.done:
            # Set before the commit: a worker killed right after it must not lose the final
            # notifications of a monitor that has no next tick to retry them.
            _await_delivery(eng, monitor_id, due_at)
        try:
            eng.store.commit(seq, updated, events, due_at=due_at)
        except StaleTick:
            return "stale"
        if not updated.done:
            eng.schedule_tick(updated, delay=eng.settings.poll_seconds)
        if _notify(eng, updated) and updated.done:
            _delivered(eng, monitor_id)
        if updated.prompt is not None and updated.prompt.auto_rerun:
            _auto_rerun(eng, updated, updated.prompt.prompt)
        return updated.status if updated.done else "ticked"


def _auto_rerun(eng: Engine, monitor: Monitor, prompt: int) -> None:
    """The `rerun` policy's answer, asked after the failure is saved (the transition does no
    I/O). Every tick while the prompt is open asks again: the claim makes that one rerun, a
    Concourse that did not answer is asked at the next tick, and a refusal stops the monitor."""
    outcome = request_rerun(eng.store, eng.concourse, monitor.id, prompt, "policy")
    if outcome.status == "refused":
        reason = f"the automatic rerun was refused: {outcome.detail}"
        eng.store.record_decision(monitor.id, prompt, "stop", "policy", reason=reason)
    if outcome.status in ("started", "refused") or outcome.rerun is not None:
        eng.kick(monitor.id, "rr")


def deliver(monitor_id: str) -> str:
    """Retry delivering a monitor's events to its notifiers (after a failed attempt)."""
    with _log_context(monitor_id):
        return _deliver(monitor_id)


def _deliver(monitor_id: str) -> str:
    eng = engine()
    with eng.store.lock(monitor_id, timeout=eng.settings.tick_timeout) as acquired:
        monitor = eng.store.load(monitor_id)
        if monitor is None:
            _delivered(eng, monitor_id)
            return "gone"
        if not acquired:
            eng.schedule_delivery(monitor, delay=eng.settings.poll_seconds)
            return "busy"
        if _notify(eng, monitor) and monitor.done:
            _delivered(eng, monitor_id)
        return "delivered"


def _notify(eng: Engine, monitor: Monitor) -> bool:
    """Deliver under the monitor's lock, so two workers never post the same event. A failure
    is retried by the next tick, or by a delivery job when this was the last tick (and the
    reaper, should that job be lost too). True when every notifier delivered."""
    delivered = True
    for notifier in eng.notifiers:
        try:
            notifier.deliver(monitor)
        except Exception:
            delivered = False
            log.exception("delivering events of %s failed; will retry", monitor.id)
            if monitor.done:
                eng.schedule_delivery(monitor, delay=max(eng.settings.poll_seconds, 5.0))
    return delivered


def _await_delivery(eng: Engine, monitor_id: str, since: float) -> None:
    # Until `_delivered`, the reaper delivers what a killed worker may have left undelivered.
    eng.redis.zadd(keys.undelivered(eng.store.ns), {monitor_id: since})


def _delivered(eng: Engine, monitor_id: str) -> None:
    eng.redis.zrem(keys.undelivered(eng.store.ns), monitor_id)


def undelivered_ids(eng: Engine, before: float) -> list[str]:
    """Finished monitors still waiting for their notifications since before `before`."""
    raw = eng.redis.zrangebyscore(keys.undelivered(eng.store.ns), "-inf", before)
    return [keys.as_text(m) for m in raw]


def reap(eng: Engine) -> int:
    """Re-kick active monitors whose next tick is overdue, and finished ones whose
    notifications were left undelivered; returns how many were kicked.

    Overdue means: later than a scheduler would ever be (two poll intervals and a second).
    A kick that races a running tick is harmless: seq fencing makes one of them a no-op."""
    # Jobs of killed workers first: RQ retries the start jobs among them (they are written to
    # be run again) and fails the ticks, whose monitors the loop below kicks. RQ does this
    # too, but only between two jobs of a worker, and an idle worker waits minutes for one.
    StartedJobRegistry(queue=eng.queue).cleanup()
    now = eng.clock()
    grace = 2 * eng.settings.poll_seconds + 1.0
    kicked = 0
    for monitor_id in eng.store.overdue_ids(now - grace):
        monitor = eng.store.load(monitor_id)
        if monitor is None or monitor.done:
            eng.store.forget(monitor_id)
            continue
        with structlog.contextvars.bound_contextvars(
            monitor_id=monitor_id, commit=monitor.short_sha
        ):
            log.warning("monitor %s missed its tick (seq %d); kicking it", monitor_id, monitor.seq)
        eng.store.reschedule(monitor_id, now + eng.settings.poll_seconds)
        eng.schedule_tick(monitor, delay=0.0, suffix=f"-r{int(now * 1000)}")
        kicked += 1
    for monitor_id in undelivered_ids(eng, now - grace):
        monitor = eng.store.load(monitor_id)
        if monitor is None:  # expired long ago: nothing left to deliver
            _delivered(eng, monitor_id)
            continue
        log.warning("monitor %s ended with notifications undelivered; delivering", monitor_id)
        _await_delivery(eng, monitor_id, now)  # looked at again after another grace period
        eng.schedule_delivery(monitor, delay=0.0)
        kicked += 1
    return kicked


def run_reaper(eng: Engine, stop: threading.Event) -> None:
    """Reap every `DEPLOY_MONITOR_REAP_SECONDS` until `stop` is set; one pass per period
    across all workers (a short Redis lock)."""
    period = eng.settings.reap_seconds
    while not stop.wait(period):
        try:
            # One reaper pass per period across all workers.
            lock_ms = keys.reaper_lock_ms(period)
            if eng.redis.set(keys.reaper_lock(eng.store.ns), 1, nx=True, px=lock_ms):
                reap(eng)
        except Exception:  # a Redis blip must not kill the reaper; the next pass retries
            log.exception("reaper pass failed")
