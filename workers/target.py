"""What the user asked to follow: parse the command argument, then resolve it to one commit.

`parse_target` is pure (text in, `TargetSpec` or `TargetError` out). `resolve_target` talks to
GitHub: a merged PR gives its merge commit; an open, approved PR is merged by the bot (or queued
when the branch uses a merge queue); an unapproved PR is never merged. `look_up_target` is the
read-only form for questions (`where`): it never merges.
"""

from __future__ import annotations

import math
import re
import time
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from workers.errors import GitHubNotFound, MergeRefused, TargetError
from workers.github import Commit, GitHubClient, PullRequest

MAX_INPUT = 200  # longer than any PR link or SHA: certainly not a target
MAX_ECHO = 40  # how much of a bad input an error message quotes back
MAX_PR_NUMBER = 2**31 - 1  # GraphQL Int
# Mergeability is computed lazily by GitHub after a push; re-read the PR this often at most.
MERGEABILITY_READS = 3

_PR_NUMBER = re.compile(r"#?([0-9]+)")  # [0-9], not \d: no fullwidth or other Unicode digits
_SHA = re.compile(r"[0-9a-fA-F]{7,40}")
_PR_PATH = re.compile(r"/([^/]+)/([^/]+)/pull/([0-9]+)(?:/.*)?")
_COMMIT_PATH = re.compile(r"/([^/]+)/([^/]+)/commit/([0-9a-fA-F]{7,40})/?")
# `owner/name`, `owner/name#123` or `owner/name@sha`: a target naming its repository.
_NAMED = re.compile(r"([A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+)(?:#([0-9]+)|@([0-9a-fA-F]{7,40}))?")
_SLACK_ENTITIES = {"&lt;": "<", "&gt;": ">", "&amp;": "&"}


@dataclass(frozen=True)
class TargetSpec:
    """A parsed target: a PR number, a commit SHA, or the latest commit on main, of a
    repository (`parse_target` always names it; None: the deployment's default)."""

    kind: Literal["pr", "sha", "latest"]
    pr_number: int | None = None
    sha: str | None = None
    repository: str | None = None


@dataclass(frozen=True)
class ResolvedTarget:
    """The one commit to follow, with what the messages show about it."""

    sha: str
    headline: str
    committed_at: int
    files: tuple[str, ...]
    pr_number: int | None
    pr_title: str | None
    pr_url: str | None
    merged_now: bool
    repository: str = ""  # owner/name; "" for the deployment's default
    # The commit's author: their GitHub login (if their email has an account) and email.
    author_login: str | None = None
    author_email: str | None = None
    # Who opened the PR (its change is theirs, whoever authored the merged commit).
    pr_author_login: str | None = None


@dataclass(frozen=True)
class Targeting:
    """What a target means where it is typed: the repository meant when none is named (the
    channel's or the deployment's default), every repository that may be named, and the
    GitHub host of PR links."""

    repository: str
    served: tuple[str, ...] = ()
    github_host: str = "github.com"

    def parse(self, text: str | None) -> TargetSpec:
        return parse_target(text, self.repository, self.github_host, served=self.served)

    def usage(self) -> str:
        return usage(self.repository, self.github_host, served=self.served)

    @property
    def several(self) -> bool:
        return len(self.served) > 1


def usage(repository: str, github_host: str = "github.com", *, served: Sequence[str] = ()) -> str:
    """The accepted forms, with this deployment's own PR link as the example (plain text that
    reads the same in Slack mrkdwn: no `<`, `>` or `&`). With several repositories `served`,
    the forms naming one, and their list."""
    text = (
        "Follow a commit to staging. Give one of:\n"
        "• `1234` or `#1234`: a pull request (followed if merged; merged first if open and "
        "approved)\n"
        f"• a pull request link: `https://{github_host}/{repository}/pull/1234`\n"
        "• a commit SHA, 7 to 40 hex characters: `a1b2c3d`\n"
        "• nothing: the latest commit on main"
    )
    if len(served) > 1:
        text += (
            f"\nIn another repository: `owner/repo#1234`, `owner/repo@a1b2c3d` or "
            f"`owner/repo` (its latest commit). This one is `{repository}`; I follow "
            + ", ".join(f"`{name}`" for name in served)
            + "."
        )
    return text


def parse_target(
    text: str | None,
    repository: str,
    github_host: str = "github.com",
    *,
    served: Sequence[str] = (),
) -> TargetSpec:
    """Parse a command argument; raises `TargetError` with a short reason the user can act on.

    `repository` is what a target naming none means (the channel's or deployment's default);
    `served` the repositories a target may name (`owner/repo#123`, `owner/repo@sha`,
    `owner/repo`, a PR or commit link), the default among them. The spec always names its
    repository, in the configured spelling. An all-digit argument is always a PR number; a SHA
    must contain at least one letter.
    """
    known = _Served(repository, served)
    cleaned = _strip_invisible(text or "").strip()
    if not cleaned:
        return TargetSpec(kind="latest", repository=repository)
    if len(cleaned) > MAX_INPUT:
        raise TargetError("That is too long for a PR number, PR link or commit SHA.")
    cleaned = _unwrap_slack(cleaned)
    if not cleaned:
        return TargetSpec(kind="latest", repository=repository)
    if any(ch.isspace() for ch in cleaned):
        raise TargetError(
            f"Give one target, not several words ({_echo(cleaned)}): a PR number, link or SHA."
        )
    number = _PR_NUMBER.fullmatch(cleaned)
    if number:
        return TargetSpec(kind="pr", pr_number=_pr_number(number.group(1)), repository=repository)
    if cleaned.lower().startswith(f"{github_host.lower()}/"):
        cleaned = f"https://{cleaned}"  # a link pasted without its scheme
    if "://" in cleaned:
        return _parse_url(cleaned, known, github_host)
    if _SHA.fullmatch(cleaned) and any(ch.isalpha() for ch in cleaned):
        return TargetSpec(kind="sha", sha=cleaned.lower(), repository=repository)
    named = _NAMED.fullmatch(cleaned)
    if named:
        slug, pr_digits, sha = named.groups()
        name = known.resolve(slug)
        if pr_digits:
            return TargetSpec(kind="pr", pr_number=_pr_number(pr_digits), repository=name)
        if sha:
            if not any(ch.isalpha() for ch in sha):
                raise TargetError(f"{_echo(sha)} is all digits: a SHA has letters too.")
            return TargetSpec(kind="sha", sha=sha.lower(), repository=name)
        return TargetSpec(kind="latest", repository=name)
    raise TargetError(f"I can't read {_echo(cleaned)} as a PR number, a PR link or a commit SHA.")


@dataclass(frozen=True)
class _Served:
    """The default repository and every one a target may name."""

    default: str
    served: Sequence[str]

    def resolve(self, slug: str) -> str:
        """The configured spelling of `slug` (GitHub matches names without regard to case)."""
        names = [self.default, *self.served]
        found = next((n for n in names if n.lower() == slug.lower()), None)
        if found is None:
            raise TargetError(f"I don't follow {_echo(slug)}; I follow {self.listed()}.")
        return found

    def listed(self) -> str:
        names = list(dict.fromkeys(self.served or [self.default]))
        return f"{names[0]} only" if len(names) == 1 else ", ".join(names)


def _parse_url(url: str, known: _Served, github_host: str) -> TargetSpec:
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
    except ValueError:  # e.g. an unbalanced "[" in the host
        raise TargetError(f"I can't read {_echo(url)} as a link.") from None
    if parts.scheme.lower() not in ("http", "https") or host not in (
        github_host.lower(),
        f"www.{github_host.lower()}",
    ):
        raise TargetError(f"That link is not on {github_host}; I follow PRs of {known.listed()}.")
    pr = _PR_PATH.fullmatch(parts.path)
    commit = _COMMIT_PATH.fullmatch(parts.path)
    match = pr or commit
    if match is None:
        raise TargetError(
            f"That link is not a pull request of {known.default}; give a link like "
            f"https://{github_host}/{known.default}/pull/1234."
        )
    slug = f"{match.group(1)}/{match.group(2)}"
    try:
        name = known.resolve(slug)
    except TargetError:
        raise TargetError(f"That link is for {_echo(slug)}; I follow {known.listed()}.") from None
    if pr is not None:
        return TargetSpec(kind="pr", pr_number=_pr_number(pr.group(3)), repository=name)
    return TargetSpec(kind="sha", sha=match.group(3).lower(), repository=name)


def repository_words(text: str, github_host: str = "github.com") -> str:
    """`owner/name` from what a person types for a repository: the name itself, in backticks,
    or its link as Slack sends it (`<https://github.com/owner/name>`); anything else as it
    stands, for the caller to refuse."""
    cleaned = _unwrap_slack(_strip_invisible(text).strip()).strip().strip("`")
    if "://" not in cleaned:
        return cleaned
    try:
        parts = urlsplit(cleaned)
        host = (parts.hostname or "").lower()
    except ValueError:  # e.g. an unbalanced "[" in the host: not a link we know
        return cleaned
    if host in (github_host.lower(), f"www.{github_host.lower()}"):
        return parts.path.strip("/").removesuffix(".git")
    return cleaned


def _pr_number(digits: str) -> int:
    number = int(digits)
    if not 0 < number <= MAX_PR_NUMBER:
        raise TargetError(f"{_echo('#' + digits)} is not a valid PR number.")
    return number


def _strip_invisible(text: str) -> str:
    # Format characters (zero-width spaces, bidi marks) hide in pasted text: drop them. Control
    # characters become spaces, so "a\nb" still reads as two words rather than "ab".
    kept = []
    for ch in text:
        category = unicodedata.category(ch)
        if category == "Cf":
            continue
        kept.append(" " if category == "Cc" else ch)
    return "".join(kept)


def _unwrap_slack(text: str) -> str:
    """Undo Slack's escaping (&amp; &lt; &gt;) and link wrapping (`<url>`, `<url|label>`)."""
    for entity, char in _SLACK_ENTITIES.items():
        text = text.replace(entity, char)
    if text.startswith("<") and text.endswith(">"):
        text = text[1:-1].split("|", 1)[0].strip()
    return text


def _echo(text: str) -> str:
    """A short, harmless quote of user input: no markup that Slack would act on."""
    safe = "".join(ch for ch in text if ch.isprintable() and ch not in "<>&`*_~")
    if len(safe) > MAX_ECHO:
        safe = safe[: MAX_ECHO - 1] + "…"
    return f"“{safe}”"


def resolve_target(
    spec: TargetSpec,
    github: GitHubClient,
    *,
    allow_merge: bool = True,
    merge_queue_timeout: float = 600,
    poll: float = 5.0,
    sleep: Callable[[float], None] = time.sleep,
) -> ResolvedTarget:
    """Find the commit `spec` means, merging an approved open PR when `allow_merge` is set.

    Raises `MergeRefused` for an open PR the bot must not or cannot merge (unapproved, draft,
    conflicts, …), `TargetError` for closed PRs and unknown PRs or SHAs.
    """
    pr: PullRequest | None = None
    merged_now = False
    if spec.kind == "pr":
        assert spec.pr_number is not None
        pr, sha, merged_now = _merged_pr_commit(
            spec.pr_number,
            github,
            allow_merge=allow_merge,
            max_polls=_polls(merge_queue_timeout, poll),
            poll=poll,
            sleep=sleep,
        )
    elif spec.kind == "sha":
        assert spec.sha is not None
        sha = spec.sha
    else:
        sha = github.latest_commit_sha("main")
    return _resolved(github.commit, github.repository, sha, pr, merged_now=merged_now)


def _resolved(
    read_commit: Callable[[str], Commit],
    repository: str,
    sha: str,
    pr: PullRequest | None,
    *,
    merged_now: bool,
) -> ResolvedTarget:
    try:
        commit = read_commit(sha)
    except GitHubNotFound:
        raise TargetError(f"No commit {sha[:40]} in {repository}.") from None
    return ResolvedTarget(
        repository=repository,
        sha=commit.sha,
        headline=commit.headline,
        committed_at=commit.committed_at,
        files=tuple(commit.files),
        pr_number=pr.number if pr else None,
        pr_title=pr.title if pr else None,
        pr_url=pr.url if pr else None,
        merged_now=merged_now,
        author_login=commit.author_login,
        author_email=commit.author_email,
        pr_author_login=pr.author_login if pr else None,
    )


@dataclass(frozen=True)
class OpenPullRequest:
    """A PR that is not merged yet (`look_up_target` never merges): what `where` says of it."""

    number: int
    title: str
    url: str
    head_sha: str
    approval: str  # "approved", "changes requested", "review required", "draft", …


def approval_words(pr: PullRequest) -> str:
    """A PR's review state in a few words."""
    if pr.is_draft:
        return "draft"
    decision = {
        "APPROVED": "approved",
        "CHANGES_REQUESTED": "changes requested",
        "REVIEW_REQUIRED": "review required",
    }
    if pr.review_decision is not None:
        return decision[pr.review_decision]
    return "approved" if pr.is_approved else "no approving review"


def look_up_target(
    spec: TargetSpec,
    github: GitHubClient,
    *,
    read_commit: Callable[[str], Commit] | None = None,
) -> ResolvedTarget | OpenPullRequest:
    """The commit `spec` means, for a question (`where`): it NEVER merges and never waits for
    a merge queue. A merged PR gives its merge commit; an open one is returned as it stands.
    `read_commit` replaces `github.commit` (a cache). Raises `TargetError` for closed PRs and
    unknown PRs or SHAs."""
    pr: PullRequest | None = None
    if spec.kind == "pr":
        assert spec.pr_number is not None
        pr = _read_pr(spec.pr_number, github)
        if pr.state == "OPEN":
            return OpenPullRequest(
                number=pr.number,
                title=pr.title,
                url=pr.url,
                head_sha=pr.head_ref_oid,
                approval=approval_words(pr),
            )
        if pr.state == "CLOSED":
            raise TargetError(f"PR #{pr.number} is closed without being merged.")
        sha = _merge_commit(pr)
    elif spec.kind == "sha":
        assert spec.sha is not None
        sha = spec.sha
    else:
        sha = github.latest_commit_sha("main")
    return _resolved(read_commit or github.commit, github.repository, sha, pr, merged_now=False)


def _polls(timeout: float, poll: float) -> int:
    """How many times to re-read a queued PR before giving up."""
    if poll <= 0:
        return max(1, int(timeout))
    return max(1, math.ceil(timeout / poll))


def _read_pr(number: int, github: GitHubClient) -> PullRequest:
    try:
        return github.pull_request(number)
    except GitHubNotFound:
        raise TargetError(f"PR #{number} not found in {github.repository}.") from None


def _merged_pr_commit(
    number: int,
    github: GitHubClient,
    *,
    allow_merge: bool,
    max_polls: int,
    poll: float,
    sleep: Callable[[float], None],
) -> tuple[PullRequest, str, bool]:
    """(PR, merge commit, merged by us now); merges or queues an approved open PR."""
    for read in range(1, MERGEABILITY_READS + 1):
        pr = _read_pr(number, github)
        if pr.state == "MERGED":
            return pr, _merge_commit(pr), False
        if pr.state == "CLOSED":
            raise TargetError(f"PR #{number} is closed without being merged.")
        _check_may_merge(pr, allow_merge=allow_merge)
        if pr.is_in_merge_queue:
            # Queued by someone else: wait for it, but the merge is not ours.
            merged, sha = _wait_for_queue(pr, github, max_polls=max_polls, poll=poll, sleep=sleep)
            return merged, sha, False
        if pr.mergeable == "CONFLICTING" or pr.merge_state_status == "DIRTY":
            raise MergeRefused(
                f"PR #{number} has merge conflicts with {pr.base_ref_name}; it was not merged.",
                reason="conflicts",
            )
        if pr.is_merge_queue_enabled:
            github.enqueue_pull_request(pr, expected_head_oid=pr.head_ref_oid)
            merged, sha = _wait_for_queue(pr, github, max_polls=max_polls, poll=poll, sleep=sleep)
            return merged, sha, True
        if pr.merge_state_status == "BEHIND":
            raise MergeRefused(
                f"PR #{number} is behind {pr.base_ref_name}, which must be up to date to merge; "
                "update the branch and try again. It was not merged.",
                reason="behind",
            )
        if pr.merge_state_status == "BLOCKED":
            raise MergeRefused(
                f"PR #{number} is blocked by branch protection (required checks or reviews); "
                "it was not merged.",
                reason="blocked",
            )
        if pr.mergeable == "UNKNOWN" and read < MERGEABILITY_READS:
            # GitHub is still computing mergeability: read again (and re-check everything).
            sleep(poll)
            continue
        # The head we just checked: if someone pushes meanwhile, GitHub refuses the merge.
        sha = github.merge_pull_request(pr, expected_head_oid=pr.head_ref_oid)
        return pr, sha, True
    raise AssertionError("unreachable: the last read always merges or refuses")


def _check_may_merge(pr: PullRequest, *, allow_merge: bool) -> None:
    if pr.is_draft:
        raise MergeRefused(f"PR #{pr.number} is a draft; it was not merged.", reason="draft")
    if not pr.is_approved:
        decision = pr.review_decision or "none, and no approving review"
        raise MergeRefused(
            f"PR #{pr.number} is not approved (review decision: {decision}); it was not merged.",
            reason="unapproved",
        )
    if not allow_merge:
        raise MergeRefused(
            f"PR #{pr.number} is open and not merged yet, and merging is not allowed here.",
            reason="not_allowed",
        )


def _wait_for_queue(
    pr: PullRequest,
    github: GitHubClient,
    *,
    max_polls: int,
    poll: float,
    sleep: Callable[[float], None],
) -> tuple[PullRequest, str]:
    """Poll the queued PR until it is merged; (PR as merged, merge commit)."""
    seen_in_queue = pr.is_in_merge_queue
    for _ in range(max_polls):
        sleep(poll)
        current = _read_pr(pr.number, github)
        if current.state == "MERGED":
            return current, _merge_commit(current)
        if current.state == "CLOSED":
            raise TargetError(f"PR #{pr.number} was closed while in the merge queue.")
        if current.is_in_merge_queue:
            seen_in_queue = True
        elif seen_in_queue:
            raise TargetError(f"PR #{pr.number} left the merge queue without being merged.")
    raise TargetError(f"PR #{pr.number} is still in the merge queue; I stopped waiting.")


def _merge_commit(pr: PullRequest) -> str:
    if not pr.merge_commit_oid:
        raise TargetError(f"PR #{pr.number} is merged but GitHub shows no merge commit.")
    return pr.merge_commit_oid
