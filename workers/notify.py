"""The notifier interface: front ends that push a monitor's events somewhere (Slack) implement
it; the engine calls every installed notifier after a tick has saved its events.

A terminal front end needs none: `watch` reads the event log directly.
"""

from __future__ import annotations

from typing import Protocol

from workers.monitor import Monitor


class Notifier(Protocol):
    def deliver(self, monitor: Monitor) -> None:
        """Deliver the monitor's events recorded since the last delivery (idempotent)."""
