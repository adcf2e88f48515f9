"""The App Home: each person's Home tab, published with views.publish.

Published when someone opens the tab (`app_home_opened`), after a click in it (Stop, the DM
choice), and by the notifier when one of their monitors changes stage or ends. A Home shows
the viewer's own monitors and journeys only: monitors are matched on their requester.
Publishing is best effort: a Home that Slack refuses is logged, never retried, and never
holds up a thread's replies.
"""

from __future__ import annotations

import logging

import redis
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.slack import render
from bot.slack.client import classify
from bot.slack.payloads import PublishedHome, SlackPayloadError
from bot.slack.people import SlackPeople
from bot.slack.render import HomeContent, HomeMonitor
from bot.slack.threads import SlackThreads
from workers.monitor import Monitor
from workers.store import MonitorStore

log = logging.getLogger(__name__)


class HomePublisher:
    """Builds and publishes one person's Home tab from what Redis holds."""

    def __init__(
        self,
        *,
        client: WebClient,
        store: MonitorStore,
        threads: SlackThreads,
        people: SlackPeople,
        dms_enabled: bool = True,
    ) -> None:
        self.client = client
        self.store = store
        self.threads = threads
        self.people = people
        self.dms_enabled = dms_enabled

    def content(self, user_id: str, *, notice: str = "") -> HomeContent:
        """What `user_id`'s Home shows now."""
        mine = [m for m in self.store.active_monitors() if _belongs_to(m, user_id)]
        monitors = []
        for monitor in mine:
            thread = self.threads.get(monitor.id)
            monitors.append(
                HomeMonitor(
                    monitor=monitor,
                    permalink=thread.permalink if thread else "",
                    stopping=self.store.stop_requested_by(monitor.id) is not None,
                )
            )
        return HomeContent(
            viewer=user_id,
            monitors=monitors,
            journeys=self.people.journeys(user_id),
            wants_dm=self.people.wants_dm(user_id),
            dms_enabled=self.dms_enabled,
            notice=notice,
        )

    def publish(self, user_id: str, *, notice: str = "") -> bool:
        """Publish `user_id`'s Home; False (logged) when Slack did not take it."""
        try:
            view = render.home_tab(self.content(user_id, notice=notice))
            PublishedHome.parse(self.client.views_publish(user_id=user_id, view=view))
        except SlackApiError as exc:
            log.warning("could not publish the Home of %s: %s", user_id, classify(exc).error)
            return False
        except (OSError, SlackPayloadError, redis.exceptions.RedisError) as exc:
            log.warning("could not publish the Home of %s: %s", user_id, exc)
            return False
        return True


def _belongs_to(monitor: Monitor, user_id: str) -> bool:
    return not monitor.done and monitor.requester == user_id
