"""The digest of what waits on main: which commits on main are not yet on staging and have
waited long enough to be worth a daily reminder (pure: no I/O, the clock passed in).

The Slack face gathers a `Digest` once a day per subscribed repository (bot/slack/digest.py),
from the staging commit `status` reads and GitHub's compare of staging…main, and posts it in
every subscribed channel; nothing is posted when staging is current or nothing waited long.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Protocol

from pydantic import BaseModel


class DatedCommit(Protocol):
    """What the digest reads of a commit staging lacks (GitHub's compare lists them as
    `workers.github.DatedCommit`)."""

    @property
    def sha(self) -> str: ...
    @property
    def committed_at(self) -> int: ...
    @property
    def message(self) -> str: ...
    @property
    def author_login(self) -> str | None: ...
    @property
    def author_name(self) -> str | None: ...


class WaitingCommit(BaseModel):
    """A commit on main not yet on staging."""

    sha: str
    headline: str
    author: str  # the GitHub login, else the git author's name; "" when neither is known
    committed_at: int


class Digest(BaseModel):
    """What waits on `repository`'s main: the commits old enough, oldest first, and the compare
    page of everything staging lacks (`ahead_by` of them, young ones included)."""

    repository: str
    staging_sha: str
    main_sha: str
    ahead_by: int
    compare_url: str
    commits: list[WaitingCommit]
    gathered_at: float


def waiting_commits(
    commits: Sequence[DatedCommit], now: float, min_age: float
) -> list[WaitingCommit]:
    """The commits of `commits` (those staging lacks) that have waited at least `min_age`
    seconds at `now`, oldest first; a commit of unknown date (0) counts as old."""
    old = [c for c in commits if now - c.committed_at >= min_age]
    return [
        WaitingCommit(
            sha=c.sha,
            headline=c.message.split("\n", 1)[0].strip(),
            author=c.author_login or c.author_name or "",
            committed_at=c.committed_at,
        )
        # A stable sort keeps GitHub's order (parents first) among equal dates.
        for c in sorted(old, key=lambda c: c.committed_at)
    ]


def digest_day(now: float, hour: int | None) -> str | None:
    """The UTC day (`YYYY-MM-DD`) whose digest is due at `now`, or None: only during the
    configured UTC `hour`, never when it is unset."""
    if hour is None:
        return None
    moment = datetime.fromtimestamp(now, UTC)
    return moment.strftime("%Y-%m-%d") if moment.hour == hour else None
