"""The monitor lock against a real Redis: held as long as its tick runs, free after."""

from __future__ import annotations

import time

import redis

from workers import keys
from workers.store import MonitorStore


def test_a_held_lock_is_renewed_past_its_timeout_and_freed_on_exit(
    redis_conn: redis.Redis,
) -> None:
    store = MonitorStore(redis_conn, namespace="dm:test-store")
    with store.lock("m1", timeout=0.4) as held:
        assert held
        time.sleep(1.0)  # without renewal it would have expired twice over
        assert redis_conn.pttl(keys.lock(store.ns, "m1")) > 0
        with store.lock("m1", timeout=0.4) as second:
            assert not second
    assert not redis_conn.exists(keys.lock(store.ns, "m1"))
    with store.lock("m1", timeout=0.4) as again:
        assert again


def test_a_lock_taken_over_after_expiry_is_not_released_by_the_old_holder(
    redis_conn: redis.Redis,
) -> None:
    store = MonitorStore(redis_conn, namespace="dm:test-store")
    with store.lock("m2", timeout=1.0) as held:
        assert held
        # Someone else's lock now (ours expired while, say, Redis was unreachable).
        redis_conn.set(keys.lock(store.ns, "m2"), b"another-token", px=5000)
        time.sleep(0.5)  # a renewal comes and finds the lock not ours: it stops
    assert redis_conn.get(keys.lock(store.ns, "m2")) == b"another-token"
