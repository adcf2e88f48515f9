"""The daily digest of what waits on main, posted in every subscribed channel.

With `DEPLOY_MONITOR_DIGEST_HOUR` set, every worker runs `run_digests` (a thread, like the
watcher of main); during that UTC hour the first of them to look (`keys.digest_look`, one look
per repository per day) reads what staging runs (the chain view's `status`) and GitHub's
compare of staging…main, keeps the commits that waited more than
`DEPLOY_MONITOR_DIGEST_MIN_AGE` (`workers.digest.waiting_commits`) and posts them, oldest
first, in each subscribed channel, once (`keys.digest_sent` per channel and day). Nothing is
posted when staging runs main's latest commit or nothing waited that long. A look that could
not read GitHub or Concourse frees the day's claim, so the next interval tries again; a post
Slack refuses is logged, not retried (tomorrow's digest says it again).
"""

from __future__ import annotations

import logging
import threading
import time

from slack_sdk.errors import SlackApiError

from bot.slack import face as faces
from bot.slack import render
from bot.slack.client import classify
from workers import keys
from workers.digest import Digest, digest_day, waiting_commits
from workers.errors import DeployMonitorError
from workers.mainline import watched_repositories

log = logging.getLogger(__name__)

# How often a worker asks whether a digest is due, at most: well within the hour.
LOOK_SECONDS = 60.0


def gather(face: faces.SlackFace, repository: str, now: float) -> Digest | None:
    """What waits on `repository`'s main at `now`; None when staging is current, not known, or
    nothing waited long enough."""
    engine = face.engine
    status = engine.viewer_for(repository).status(now)
    behind = status.behind
    if status.staging_sha is None or status.main_sha is None or behind is None:
        return None
    if behind.ahead_by == 0:
        return None  # staging is current: nothing at all
    github = engine.github_for(repository)
    compared = github.compare_commits(status.staging_sha, status.main_sha)
    waiting = waiting_commits(compared.commits, now, face.settings.digest_min_age)
    if not waiting:
        return None
    return Digest(
        repository=repository,
        staging_sha=status.staging_sha,
        main_sha=status.main_sha,
        ahead_by=compared.ahead_by,
        compare_url=compared.html_url,
        commits=waiting,
        gathered_at=now,
    )


def send_digests(face: faces.SlackFace, now: float) -> dict[str, str]:
    """Post the digest due at `now` in each subscribed channel that has not had today's; the
    channels posted in, with the message's ts."""
    day = digest_day(now, face.settings.digest_hour)
    if day is None:
        return {}
    engine = face.engine
    posted: dict[str, str] = {}
    for repository in watched_repositories(engine):
        look = keys.digest_look(engine.store.ns, repository, day)
        if not engine.redis.set(look, 1, nx=True, ex=keys.DIGEST_CLAIM_TTL_SECONDS):
            continue  # another worker looked today
        try:
            digest = gather(face, repository, now)
        except (DeployMonitorError, OSError) as exc:
            engine.redis.delete(look)  # the next interval looks again
            log.warning("cannot gather the digest of %s: %s", repository, exc)
            continue
        if digest is None:
            log.info("no digest for %s today: nothing has waited long", repository)
            continue
        posted.update(_post(face, digest, day))
    return posted


def _post(face: faces.SlackFace, digest: Digest, day: str) -> dict[str, str]:
    engine = face.engine
    message = render.waiting_digest(digest, face.settings.digest_min_age)
    posted: dict[str, str] = {}
    for subscription in engine.subscriptions.for_repository(digest.repository):
        channel = subscription.channel
        claim = keys.digest_sent(engine.store.ns, digest.repository, channel, day)
        if not engine.redis.set(claim, 1, nx=True, ex=keys.DIGEST_CLAIM_TTL_SECONDS):
            continue
        try:
            response = face.client.chat_postMessage(
                channel=channel, text=message.text, blocks=message.blocks, unfurl_links=False
            )
        except SlackApiError as exc:
            log.warning("cannot post the digest in %s: %s", channel, classify(exc).error)
            continue
        except OSError as exc:
            log.warning("cannot post the digest in %s: %s", channel, type(exc).__name__)
            continue
        posted[channel] = str(response.get("ts", ""))
    return posted


def run_digests(face: faces.SlackFace, stop: threading.Event) -> None:
    """Send each day's digest when it is due, until `stop` is set (no-op when unset)."""
    if face.settings.digest_hour is None:
        return
    period = min(LOOK_SECONDS, face.engine.settings.poll_seconds)
    while not stop.wait(period):
        try:
            send_digests(face, time.time())
        except Exception:  # the thread must outlive any surprise; the next interval retries
            log.exception("sending the digest failed")
