"""The image's HEALTHCHECK (standard library only): exit 0 when healthy, 1 when not.

One image runs the bot and the workers, so it looks at what this container runs:
- the bot over HTTP: GET /healthz on PORT answers 200 (it does while Redis answers a ping);
- a worker, or a Socket Mode bot, given DEPLOY_MONITOR_METRICS_PORT: its /metrics says
  `deploy_monitor_redis_up 1.0`;
- anything else (a worker without a metrics port, `check`, the simulators): nothing to probe,
  and a container whose process died has stopped anyway.
"""

from __future__ import annotations

import os
import sys
import urllib.request
from pathlib import Path

TIMEOUT_SECONDS = 4.0


def command_of(args: list[str]) -> str | None:
    """`bot` of `python /usr/local/bin/deploy-monitor bot` or `python -m bot bot`; None when the
    arguments are not deploy-monitor's."""
    for i, arg in enumerate(args):
        if os.path.basename(arg) == "deploy-monitor":
            rest = args[i + 1 :]
        elif args[i : i + 2] == ["-m", "bot"]:
            rest = args[i + 2 :]
        else:
            continue
        return rest[0] if rest else None
    return None


def subcommand() -> str | None:
    """The subcommand of the deploy-monitor process running in this container."""
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = [a.decode(errors="replace") for a in cmdline.read_bytes().split(b"\0") if a]
        except OSError:  # the process ended while we looked
            continue
        if (command := command_of(args)) is not None:
            return command
    return None


def answers(url: str, needle: bytes | None = None) -> bool:
    """GET `url`: 200, and `needle` in the body when given."""
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as response:
            return response.status == 200 and (needle is None or needle in response.read())
    except OSError:  # refused, timed out, or an HTTP error status (503: Redis down)
        return False


def healthy(command: str | None) -> bool:
    """Whether the deploy-monitor `command` of this container is healthy (see the docstring)."""
    if command == "bot" and not os.environ.get("SLACK_APP_TOKEN"):
        return answers(f"http://127.0.0.1:{os.environ.get('PORT') or 3000}/healthz")
    metrics_port = os.environ.get("DEPLOY_MONITOR_METRICS_PORT")
    if command in ("bot", "worker") and metrics_port:
        return answers(f"http://127.0.0.1:{metrics_port}/metrics", b"deploy_monitor_redis_up 1.0")
    return True


if __name__ == "__main__":
    sys.exit(0 if healthy(subcommand()) else 1)
