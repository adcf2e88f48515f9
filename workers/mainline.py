"""The watcher of main: notices new commits on a subscribed repository's main branch and hands
them on, oldest first, to whoever follows them (the Slack face, `Engine.main_listeners`).

It runs as a thread in every worker (like the reaper), once per poll interval, and one look
per repository per interval is taken across all workers (`keys.main_lock`), whatever the
number of subscribed channels. A look costs GitHub one request when main has not moved (the
branch head, `GET …/git/ref/heads/main`), and one more when it has (the commits since the
last one seen, `GET …/compare/{seen}...{head}`, oldest first): a push of several commits is
handed on commit by commit. A history rewritten under us (force push, the seen commit gone)
hands on the new head alone. The first look only records where main is: subscribing
follows the commits pushed from then on, not the branch's history.

The newest commit handed on is kept in `keys.main_seen`; it moves only after every listener
took the commits, so a listener that fails (Redis gone, a crash) gets them again next time.
Listeners must therefore accept the same commits twice (the Slack face's follow job finds the
monitor it already started).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from workers import keys
from workers.engine import Engine
from workers.errors import DeployMonitorError, GitHubNotFound

log = logging.getLogger(__name__)

# A listener of new commits on main: (repository, their SHAs, oldest first).
MainListener = Callable[[str, list[str]], None]
# A push of more commits than this (a long-lived branch merged without squashing) has only
# its newest ones followed: a thread per commit of a merged history would drown the channel.
MAX_COMMITS_PER_LOOK = 20
MAIN_BRANCH = "main"


def watched_repositories(eng: Engine) -> list[str]:
    """The repositories to look at: the served ones some channel subscribed to."""
    subscribed = {name.lower() for name in eng.subscriptions.repositories()}
    return [name for name in eng.repositories.names if name.lower() in subscribed]


def look_at_main(eng: Engine, repository: str) -> list[str]:
    """One look at `repository`'s main, unless another worker took this interval's: the new
    commits handed on to `eng.main_listeners` (oldest first), or [] when there are none."""
    if not eng.main_listeners or not eng.subscriptions.for_repository(repository):
        return []  # nobody would follow them: no request
    lock_ms = keys.main_lock_ms(eng.settings.poll_seconds)
    if not eng.redis.set(keys.main_lock(eng.store.ns, repository), 1, nx=True, px=lock_ms):
        return []
    head = eng.github_for(repository).latest_commit_sha(MAIN_BRANCH)
    seen_key = keys.main_seen(eng.store.ns, repository)
    raw = eng.redis.get(seen_key)
    seen = keys.as_text(raw) if raw else None
    if seen is None:
        eng.redis.set(seen_key, head)  # the first look: from here on
        return []
    if seen == head:
        return []
    new = _commits_since(eng, repository, seen, head)
    for listener in eng.main_listeners:
        listener(repository, new)
    eng.redis.set(seen_key, head)
    log.info("main of %s moved to %s: %d new commit(s) handed on", repository, head[:7], len(new))
    return new


def _commits_since(eng: Engine, repository: str, seen: str, head: str) -> list[str]:
    """The commits `head` has that `seen` lacks, oldest first, the newest few at most."""
    try:
        compared = eng.github_for(repository).compare_commits(seen, head)
    except GitHubNotFound:  # `seen` was force-pushed away, or no common history
        return [head]
    if compared.status != "ahead":
        return [head]  # main was rewritten: only its new head is news
    shas = [c.sha for c in compared.commits]
    if head not in shas:
        shas.append(head)  # more than a page: the page holds the oldest, the head is newest
    return shas[-MAX_COMMITS_PER_LOOK:]


def run_watcher(eng: Engine, stop: threading.Event) -> None:
    """Look at every watched repository's main once per poll interval until `stop` is set."""
    while not stop.wait(eng.settings.poll_seconds):
        for repository in watched_repositories(eng):
            try:
                look_at_main(eng, repository)
            except (DeployMonitorError, OSError) as exc:
                # GitHub or Redis trouble: the commits wait for the next interval, not lost.
                log.warning("could not look at main of %s: %s", repository, exc)
            except Exception:  # the watcher must outlive any surprise; the next look retries
                log.exception("looking at main of %s failed", repository)
