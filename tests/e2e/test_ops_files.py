"""Every metric that ops/alerts.yml and ops/grafana-dashboard.json name is on the `/metrics`
of a running worker (--metrics-port) or a running bot, with the suffixes Prometheus stores."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

from simulators.slack import SlackSimulator
from tests.conftest import World, wait_for
from tests.slack_fixtures import Process, free_port, slack_env, wait_healthy
from tests.unit.ops.promql import SCRAPE_SERIES, every_expression, metric_names, sample_names


def exposed(url: str) -> set[str]:
    response = httpx.get(url, timeout=10)
    assert response.status_code == 200, response.text
    return sample_names(text_string_to_metric_families(response.text))


def test_every_metric_the_alerts_and_the_dashboard_name_is_exported(world: World) -> None:
    slack = SlackSimulator()
    slack.start()
    slack_env(world, slack)
    worker_port, bot_port = free_port(), free_port()
    worker = Process(
        ["worker"],
        {**world.env, "DEPLOY_MONITOR_METRICS_PORT": str(worker_port)},
        world.tmp / "worker.log",
    ).start()
    bot = Process(["bot"], {**world.env, "PORT": str(bot_port)}, world.tmp / "bot.log").start()
    try:
        wait_healthy(f"http://127.0.0.1:{bot_port}")
        worker_url = f"http://127.0.0.1:{worker_port}/metrics"

        def worker_serves() -> bool:
            try:
                return httpx.get(worker_url, timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(worker_serves, timeout=20, interval=0.1)
        from_worker = exposed(worker_url)
        from_bot = exposed(f"http://127.0.0.1:{bot_port}/metrics")
    finally:
        bot.stop()
        worker.stop()
        slack.stop()
    assert from_worker >= {"deploy_monitor_ticks_total", "deploy_monitor_redis_up"}
    assert "deploy_monitor_active_monitors" in from_bot  # Redis answered: the census is there
    for where, expr in every_expression().items():
        for name in metric_names(expr) - SCRAPE_SERIES:
            assert name in from_worker, f"{where}: the worker does not export {name}"
            assert name in from_bot, f"{where}: the bot does not export {name}"
