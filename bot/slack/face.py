"""The Slack face's dependencies, built once per process (bot or worker) from settings."""

from __future__ import annotations

from dataclasses import dataclass

from slack_sdk import WebClient

from bot.slack.channels import ChannelRepositories
from bot.slack.client import web_client, without_retries
from bot.slack.home import HomePublisher
from bot.slack.notifier import SlackNotifier
from bot.slack.people import SlackPeople
from bot.slack.settings import BotSettings
from bot.slack.threads import SlackThreads
from workers.engine import Engine
from workers.target import Targeting


@dataclass
class SlackFace:
    settings: BotSettings
    engine: Engine
    client: WebClient
    threads: SlackThreads
    notifier: SlackNotifier
    home: HomePublisher
    channels: ChannelRepositories

    def targeting(self, channel_id: str = "") -> Targeting:
        """How a target typed in `channel_id` is read: a target naming no repository means
        the channel's (`use`), or the deployment's default outside a channel."""
        return Targeting(
            repository=self.channels.of(channel_id),
            served=self.engine.repositories.names,
            github_host=self.settings.github_host,
        )


def build_face(settings: BotSettings, engine: Engine | None = None) -> SlackFace:
    """Wire the Slack client, thread store and notifier; installs the notifier on the engine."""
    engine = engine or Engine(settings)
    client = web_client(settings)
    threads = SlackThreads(engine.redis, namespace=engine.store.ns)
    home = HomePublisher(
        # Best effort: a Home that fails is replaced at the next change, never waited for.
        client=without_retries(client),
        store=engine.store,
        threads=threads,
        people=SlackPeople(engine.redis, namespace=engine.store.ns),
        dms_enabled=settings.dm_requester,
        # Looked up at each use: a forked work horse builds its own clients.
        viewer=engine.viewer_for,
        repositories=engine.repositories.names,
        status_seconds=engine.settings.poll_seconds,
        queue=engine.queue,
    )
    notifier = SlackNotifier(
        client=client,
        threads=threads,
        store=engine.store,
        dm_requester=settings.dm_requester,
        # Waiting out 429s must end well before the tick's lock expires.
        budget_seconds=engine.settings.tick_timeout / 2,
        home=home,
        moved_over=lambda monitor: engine.viewer_for(monitor.repository).moved_over(monitor),
    )
    engine.notifiers.append(notifier)
    return SlackFace(
        settings=settings,
        engine=engine,
        client=client,
        threads=threads,
        notifier=notifier,
        home=home,
        channels=ChannelRepositories(engine.redis, engine.repositories, namespace=engine.store.ns),
    )


_face: SlackFace | None = None


def install(face: SlackFace) -> None:
    """Make the face available to RQ jobs of this process (`commands.start_from_slack`)."""
    global _face
    _face = face


def current() -> SlackFace:
    if _face is None:
        raise RuntimeError(
            "no Slack face installed: run `deploy-monitor worker` with Slack settings"
        )
    return _face
