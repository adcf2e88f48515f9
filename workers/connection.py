"""The one place a Redis connection is made, for the bot, the workers and RQ alike.

Either one server, `REDIS_URL` (`redis://`, TLS with `rediss://`, or `unix://`), or the master
that Redis Sentinel names: `REDIS_SENTINELS` (host:port, …) and `REDIS_SENTINEL_MASTER`. With
Sentinel, REDIS_URL gives only what the master connection needs besides its address (database,
username and password, TLS and its query options); `REDIS_SENTINEL_PASSWORD` is the sentinels'
own password, and `rediss://` means TLS to the sentinels too.

A Sentinel-managed client asks the sentinels for the master whenever it (re)connects, and drops
its connections when the server it reached turns out to be a replica, so after a failover the
next command reaches the new master; commands that failed meanwhile fail as they would against a
restarted server (the worker waits for Redis and carries on: workers/worker.py). RQ's scheduler
rebuilds its connection from this client's pool in its own process, and keeps the Sentinel.
"""

from __future__ import annotations

from typing import Any

import redis
from redis.connection import SSLConnection, parse_url
from redis.sentinel import Sentinel, SentinelConnectionPool

from workers.settings import EngineSettings, format_address

# What an address from the sentinels replaces in REDIS_URL's options.
_ADDRESS_OPTIONS = ("host", "port", "path", "connection_class")


def connect(settings: EngineSettings, **options: Any) -> redis.Redis:
    """A client for REDIS_URL, or for the Sentinel master when REDIS_SENTINELS is set.
    `options` (timeouts) apply to every connection it makes, the sentinels' included."""
    if not settings.redis_sentinels:
        return redis.Redis.from_url(settings.redis_url, **options)
    url_options: dict[str, Any] = parse_url(settings.redis_url)  # type: ignore[no-untyped-call]
    tls = url_options.get("connection_class") is SSLConnection
    master_options = {k: v for k, v in url_options.items() if k not in _ADDRESS_OPTIONS}
    sentinel_options: dict[str, Any] = dict(options)
    if settings.redis_sentinel_password is not None:
        sentinel_options["password"] = settings.redis_sentinel_password.get_secret_value()
    if tls:
        master_options["ssl"] = True
        sentinel_options.update({k: v for k, v in master_options.items() if k.startswith("ssl")})
    sentinel = Sentinel(settings.sentinel_addresses, sentinel_kwargs=sentinel_options, **options)
    client: redis.Redis = sentinel.master_for(settings.redis_sentinel_master, **master_options)
    return client


def reached(client: redis.Redis) -> str | None:
    """host:port of the master a Sentinel-managed client last reached (None for REDIS_URL)."""
    pool = client.connection_pool
    if isinstance(pool, SentinelConnectionPool) and pool.master_address:
        host, port = pool.master_address
        return format_address(str(host), int(port))
    return None
