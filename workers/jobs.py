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

import logging
import threading

from workers.engine import Engine
from workers.errors import GitHubRateLimited
from workers.monitor import Monitor, transition
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


def tick(monitor_id: str, seq: int) -> str:
    """Advance monitor `monitor_id` by one step if it is still at `seq`. Returns what happened."""
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
        now = eng.clock()
        try:
            observation = eng.observer.observe(monitor, now)
        except GitHubRateLimited as exc:
            # Nothing learned; try the same step again after the reset, not in a busy loop.
            delay = max(exc.reset_at - now, eng.settings.poll_seconds)
            eng.store.reschedule(monitor_id, now + delay)
            eng.schedule_tick(monitor, delay=delay, suffix=f"-rl{int(exc.reset_at)}")
            return "rate-limited"
        updated, events = transition(monitor, observation, eng.chain)
        updated.seq = seq + 1
        due_at = now + eng.settings.poll_seconds
        try:
            eng.store.commit(seq, updated, events, due_at=due_at)
        except StaleTick:
            return "stale"
        if not updated.done:
            eng.schedule_tick(updated, delay=eng.settings.poll_seconds)
        _notify(eng, updated)
        return updated.status if updated.done else "ticked"


def deliver(monitor_id: str) -> str:
    """Retry delivering a monitor's events to its notifiers (after a failed attempt)."""
    eng = engine()
    with eng.store.lock(monitor_id, timeout=eng.settings.tick_timeout) as acquired:
        monitor = eng.store.load(monitor_id)
        if monitor is None:
            return "gone"
        if not acquired:
            eng.schedule_delivery(monitor, delay=eng.settings.poll_seconds)
            return "busy"
        _notify(eng, monitor)
        return "delivered"


def _notify(eng: Engine, monitor: Monitor) -> None:
    """Deliver under the monitor's lock, so two workers never post the same event. A failure
    is retried by the next tick, or by a delivery job when this was the last tick."""
    for notifier in eng.notifiers:
        try:
            notifier.deliver(monitor)
        except Exception:
            log.exception("delivering events of %s failed; will retry", monitor.id)
            if monitor.done:
                eng.schedule_delivery(monitor, delay=max(eng.settings.poll_seconds, 5.0))


def reap(eng: Engine) -> int:
    """Re-kick active monitors whose next tick is overdue; returns how many were kicked.

    Overdue means: later than a scheduler would ever be (two poll intervals and a second).
    A kick that races a running tick is harmless: seq fencing makes one of them a no-op."""
    now = eng.clock()
    grace = 2 * eng.settings.poll_seconds + 1.0
    kicked = 0
    for monitor_id in eng.store.overdue_ids(now - grace):
        monitor = eng.store.load(monitor_id)
        if monitor is None or monitor.done:
            eng.store.forget(monitor_id)
            continue
        log.warning("monitor %s missed its tick (seq %d); kicking it", monitor_id, monitor.seq)
        eng.store.reschedule(monitor_id, now + eng.settings.poll_seconds)
        eng.schedule_tick(monitor, delay=0.0, suffix=f"-r{int(now * 1000)}")
        kicked += 1
    return kicked


def run_reaper(eng: Engine, stop: threading.Event) -> None:
    """Reap every `DEPLOY_MONITOR_REAP_SECONDS` until `stop` is set; one pass per period
    across all workers (a short Redis lock)."""
    period = eng.settings.reap_seconds
    while not stop.wait(period):
        try:
            # One reaper pass per period across all workers.
            if eng.redis.set(
                eng.store.key("reaper-lock"), 1, nx=True, px=max(1, int(period * 900))
            ):
                reap(eng)
        except Exception:  # a Redis blip must not kill the reaper; the next pass retries
            log.exception("reaper pass failed")
