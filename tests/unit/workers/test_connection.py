"""workers/connection.py: one server from REDIS_URL, or the master Redis Sentinel names, with
REDIS_URL's database, credentials and TLS on the master and the sentinels' own password on the
sentinels only. Building a client connects to nothing (tests/e2e/test_sentinel.py fails a real
primary over)."""

from __future__ import annotations

import time
from typing import Any

import pytest
import redis
from redis.sentinel import (
    SentinelConnectionPool,
    SentinelManagedConnection,
    SentinelManagedSSLConnection,
)

from workers import connection
from workers.errors import ConfigError
from workers.settings import EngineSettings, load_settings

SENTINEL_SETTINGS = ("REDIS_URL", "REDIS_SENTINELS", "REDIS_SENTINEL_MASTER")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    for name in (*SENTINEL_SETTINGS, "REDIS_SENTINEL_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(str(tmp_path))  # no stray .env


def settings(**values: str) -> EngineSettings:
    return EngineSettings.model_validate(values)


def sentinel_pool(client: redis.Redis) -> SentinelConnectionPool:
    pool = client.connection_pool
    assert isinstance(pool, SentinelConnectionPool)
    return pool


def sentinel_kwargs(pool: SentinelConnectionPool) -> list[dict[str, Any]]:
    return [s.connection_pool.connection_kwargs for s in pool.sentinel_manager.sentinels]


def test_without_sentinels_redis_url_is_the_server() -> None:
    client = connection.connect(settings(REDIS_URL="redis://:pw@cache.internal:6380/4"))
    kwargs = client.connection_pool.connection_kwargs
    assert (kwargs["host"], kwargs["port"], kwargs["db"], kwargs["password"]) == (
        "cache.internal",
        6380,
        4,
        "pw",
    )
    assert connection.reached(client) is None


def test_tls_redis_url() -> None:
    client = connection.connect(settings(REDIS_URL="rediss://cache.internal:6380/0"))
    assert issubclass(client.connection_pool.connection_class, redis.SSLConnection)


def test_sentinels_name_the_master_and_redis_url_gives_the_rest() -> None:
    client = connection.connect(
        settings(
            REDIS_URL="redis://app:master-pw@ignored.invalid:1/5",
            REDIS_SENTINELS="10.0.0.1:26379, 10.0.0.2:26380,10.0.0.3",
            REDIS_SENTINEL_MASTER="deploys",
            REDIS_SENTINEL_PASSWORD="sentinel-pw",
        ),
        socket_timeout=2.5,
    )
    pool = sentinel_pool(client)
    assert pool.service_name == "deploys" and pool.is_master
    assert pool.connection_class is SentinelManagedConnection
    master = pool.connection_kwargs
    assert (master["db"], master["username"], master["password"]) == (5, "app", "master-pw")
    assert "host" not in master and master["socket_timeout"] == 2.5
    sentinels = sentinel_kwargs(pool)
    assert [(k["host"], k["port"]) for k in sentinels] == [
        ("10.0.0.1", 26379),
        ("10.0.0.2", 26380),
        ("10.0.0.3", 26379),
    ]
    # The sentinels' password is theirs; the master's credentials never go to them.
    assert all(k["password"] == "sentinel-pw" and k.get("username") is None for k in sentinels)
    assert all(k["socket_timeout"] == 2.5 for k in sentinels)


def test_rediss_with_sentinels_is_tls_to_both() -> None:
    client = connection.connect(
        settings(
            REDIS_URL="rediss://:pw@x/0?ssl_cert_reqs=none",
            REDIS_SENTINELS="[fd00::1]:26379",
        )
    )
    pool = sentinel_pool(client)
    assert pool.connection_class is SentinelManagedSSLConnection
    assert pool.connection_kwargs["ssl_cert_reqs"] == "none"
    (sentinel,) = pool.sentinel_manager.sentinels
    assert issubclass(sentinel.connection_pool.connection_class, redis.SSLConnection)
    assert sentinel.connection_pool.connection_kwargs["host"] == "fd00::1"
    assert sentinel.connection_pool.connection_kwargs["ssl_cert_reqs"] == "none"
    assert sentinel.connection_pool.connection_kwargs.get("password") is None


def test_no_sentinel_answering_is_a_redis_error_soon() -> None:
    client = connection.connect(
        settings(REDIS_SENTINELS="127.0.0.1:1,127.0.0.1:2"),
        socket_connect_timeout=0.5,
        socket_timeout=0.5,
    )
    started = time.monotonic()
    with pytest.raises(redis.ConnectionError):
        client.ping()
    assert time.monotonic() - started < 10


def test_sentinel_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_SENTINELS", " s1:26379 ,[::1]:5000,s3 ")
    monkeypatch.setenv("REDIS_SENTINEL_PASSWORD", "hunter2-sentinel")
    s = load_settings(EngineSettings)
    assert s.redis_sentinels == "s1:26379,[::1]:5000,s3:26379"
    assert s.sentinel_addresses == [("s1", 26379), ("::1", 5000), ("s3", 26379)]
    assert s.redis_sentinel_master == "mymaster"
    assert s.redis_location == "master mymaster via sentinels s1:26379,[::1]:5000,s3:26379"
    assert s.redis_setting == "REDIS_SENTINELS"
    assert "hunter2-sentinel" not in repr(s)
    monkeypatch.delenv("REDIS_SENTINELS")
    assert settings().sentinel_addresses == [] and settings().redis_setting == "REDIS_URL"


@pytest.mark.parametrize("value", ["s1:port", "s1:0", "s1:70000", "user@s1:1", "s1:1/x", ","])
def test_bad_sentinels_are_one_line(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("REDIS_SENTINELS", value)
    with pytest.raises(ConfigError) as caught:
        load_settings(EngineSettings)
    assert str(caught.value).startswith("REDIS_SENTINELS: ")
    assert "host:port" in str(caught.value)


def test_an_empty_sentinel_master_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_SENTINELS", "s1")
    monkeypatch.setenv("REDIS_SENTINEL_MASTER", "")
    assert load_settings(EngineSettings).redis_sentinel_master == "mymaster"  # empty = default
