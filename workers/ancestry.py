"""Does a build's input ref carry a followed commit? Answered for every monitor at the cost of
a few GitHub requests, not one per (monitor, ref) pair.

GitHub's compare answers one pair per request, so N monitors meeting the ref of a new build
would cost N requests, every time a build appears. Two lists answer most pairs, exactly:
- a ref's history (the commits reachable from it, listed since a date): every commit listed
  is carried by the ref;
- a followed commit's own history: a ref listed there (other than the commit) is one of its
  ancestors, so it cannot carry the commit (history has no cycles).
A ref's history is fetched once and serves every monitor; a commit's once for its monitor.
Lists can be partial (cut by the date or by paging): only what is listed is concluded from,
and a pair neither list settles (diverged branches, a ref older than the lists reach) is asked
with compare. Every answer is cached: SHAs never change what they descend from.
"""

from __future__ import annotations

import re
from typing import Protocol

from workers.errors import GitHubError, GitHubNotFound, GitHubRateLimited
from workers.github import HistoryPage
from workers.store import CommitHistory, MonitorStore

DAY_SECONDS = 24 * 3600
_FULL_SHA = re.compile(r"[0-9a-f]{40}")


# A list is read no further than this (1,000 commits): what lies beyond is asked with compare.
MAX_HISTORY_PAGES = 10


class Ancestry(Protocol):
    """What GitHub is asked (`workers.github.GitHubClient` provides it)."""

    def is_ancestor(self, ancestor: str, descendant: str) -> bool: ...

    def history_page(self, ref: str, *, since: float, page: int) -> HistoryPage: ...


class CoverageResolver:
    """Answers "does ref carry sha" from Redis, the two lists, or compare, in that order."""

    def __init__(self, ancestry: Ancestry, store: MonitorStore) -> None:
        self.ancestry = ancestry
        self.store = store
        self.compared = 0  # pairs the lists did not settle (for tests and benchmarks)

    def covers(self, sha: str, committed_at: float, ref: str) -> bool | None:
        """Whether `ref` is `sha` or a descendant of it; None when GitHub could not say now
        (asked again next tick). Rate limits propagate: the tick is rescheduled."""
        if ref == sha:
            return True
        known = self.store.cached_covers(sha, ref)
        if known is not None:
            return known
        try:
            answer = self._from_histories(sha, committed_at, ref)
            if answer is None:
                self.compared += 1
                answer = self.ancestry.is_ancestor(sha, ref)
        except GitHubRateLimited:
            raise
        except GitHubNotFound:
            answer = False  # a commit GitHub does not know cannot contain ours
        except GitHubError:
            return None
        self.store.cache_covers(sha, ref, answer)
        return answer

    def _from_histories(self, sha: str, committed_at: float, ref: str) -> bool | None:
        if not (_FULL_SHA.fullmatch(sha) and _FULL_SHA.fullmatch(ref)):
            return None  # lists name full SHAs only
        # Listed since the start of the day before the commit: monitors of commits made the
        # same day share one list per ref, and a ref a little older than the commit is in
        # the commit's own list.
        since = float((int(committed_at) // DAY_SECONDS - 1) * DAY_SECONDS)
        if self._listed(sha, in_history_of=ref, since=since):
            return True
        if self._listed(ref, in_history_of=sha, since=since):
            return False
        return None

    def _listed(self, wanted: str, *, in_history_of: str, since: float) -> bool:
        """Whether `wanted` is in the history of `in_history_of` (since `since`), reading its
        pages, newest first, only until `wanted` turns up: followed commits are recent, so the
        first page usually settles it. What was read is kept for every monitor."""
        ref = in_history_of
        history = self.store.cached_history(ref)
        if history is None or history.since > since:
            history = CommitHistory(since=since, shas=[])
        listed = set(history.shas)
        while wanted not in listed and not history.complete:
            if history.pages >= MAX_HISTORY_PAGES:
                return False  # not listed as far as we read: compare settles it
            try:
                page = self.ancestry.history_page(ref, since=history.since, page=history.pages + 1)
            except GitHubNotFound:
                page = HistoryPage(shas=[], more=False)
            history = CommitHistory(
                since=history.since,
                shas=history.shas + page.shas,
                pages=history.pages + 1,
                complete=not page.more,
            )
            listed.update(page.shas)
            self.store.cache_history(ref, history)
        return wanted in listed
