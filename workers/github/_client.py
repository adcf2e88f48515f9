"""GitHub client: read a pull request, merge it, and read commits and ancestry.

Everything GitHub sends is parsed here into small pydantic models, so the rest of the bot never
digs in JSON. The client is synchronous (it runs inside RQ jobs), never sleeps (a rate limit
raises `GitHubRateLimited` with `reset_at`, and the caller reschedules), and never puts the token
in a message, exception or repr.

Facts this module relies on (see the project's GitHub API notes):
- a pull request is read with one GraphQL query; "not found" is HTTP 200 with `errors[].type`
  NOT_FOUND, and a primary GraphQL rate limit is HTTP 200 with type RATE_LIMITED / RATE_LIMIT;
- `reviewDecision` is null when the base branch does not require reviews;
- merges pass `expectedHeadOid`, so a head pushed after our checks refuses the merge instead of
  merging unreviewed code;
- commit files are Link-paginated past 300 files; unknown commits answer 422 (or 404);
- the commit list (`commits?sha=&since=`) is Link-paginated, at most 100 a page, newest first;
- compare lists a comparison's commits oldest first (`per_page`/`page`), `ahead_by` counts all.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, NoReturn
from urllib.parse import quote, urlsplit

import httpx
from pydantic import ValidationError

from workers import metrics
from workers.errors import (
    ConfigError,
    GitHubAuthError,
    GitHubError,
    GitHubNotFound,
    GitHubRateLimited,
    GitHubUnavailable,
    MergeRefused,
    NoCommonAncestor,
)
from workers.github._models import (
    COMMIT_LIST,
    BranchRef,
    Commit,
    ComparedCommits,
    Comparison,
    HistoryPage,
    MergeResult,
    PullRequest,
    RepositoryAccess,
)
from workers.github._queries import (
    ENQUEUE_MUTATION,
    MERGE_MUTATION,
    PULL_REQUEST_QUERY,
    REPOSITORY_QUERY,
)

API_VERSION = "2022-11-28"  # pinned: 2026-03-10 drops fields and is not on every GHES yet
USER_AGENT = "deploy-monitor"
# GitHub gives no reset time for a secondary limit without headers; its docs say wait >= 60 s.
SECONDARY_LIMIT_WAIT = 60.0
# GitHub caps commit files at 3000 (10 pages of 300); the margin guards against a looping Link.
MAX_FILE_PAGES = 20
HISTORY_PAGE_SIZE = 100  # GitHub's maximum per_page
COMPARE_PAGE_SIZE = 100  # compare's commits per page (the oldest come first)
# Server error text is quoted in our messages, but only this much of it.
MAX_SERVER_MESSAGE = 200
# How compare's 404 for two commits without shared history starts (GitHub's REST description).
NO_COMMON_ANCESTOR = "No common ancestor between"

_FULL_SHA = re.compile(r"[0-9a-f]{40}")
_RATE_LIMIT_TYPES = {"RATE_LIMITED", "RATE_LIMIT"}


class GitHubClient:
    """A small synchronous client for the GitHub REST and GraphQL endpoints the bot uses."""

    def __init__(
        self,
        *,
        repository: str,
        token: str | None,
        api_url: str = "https://api.github.com",
        graphql_url: str | None = None,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 15.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        owner, _, name = repository.partition("/")
        if not owner or not name or "/" in name:
            raise ConfigError(f"GitHub repository must look like owner/name, not {repository!r}")
        self.repository = repository
        self.owner = owner
        self.name = name
        self.api_url = api_url.rstrip("/")
        self.graphql_url = graphql_url or f"{self.api_url}/graphql"
        self.timeout = timeout  # seconds, for each request
        self.requests_made = 0
        self._clock = clock
        # Kept only to scrub it from server text we quote; never formatted anywhere.
        self._secret = token
        # SHAs are immutable, so an ancestry answer between two full SHAs never changes.
        self._ancestry: dict[tuple[str, str], bool] = {}
        headers = {
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": API_VERSION,
            "User-Agent": USER_AGENT,
        }
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._http = httpx.Client(
            headers=headers,
            # Counts every request on the wire by route and status.
            transport=metrics.github_transport(self.api_url, transport),
            timeout=httpx.Timeout(timeout),
        )

    def __repr__(self) -> str:
        return f"GitHubClient(repository={self.repository!r}, api_url={self.api_url!r})"

    def close(self) -> None:
        """Close the underlying HTTP connections."""
        self._http.close()

    def __enter__(self) -> GitHubClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- pull requests (GraphQL) ---------------------------------------------------------------

    def pull_request(self, number: int) -> PullRequest:
        """Read PR `number` with one GraphQL query; an unknown PR raises `GitHubNotFound`."""
        payload = self._graphql(
            PULL_REQUEST_QUERY, {"owner": self.owner, "repo": self.name, "number": number}
        )
        errors = _graphql_errors(payload)
        if any(error.get("type") == "NOT_FOUND" for error in errors):
            raise GitHubNotFound(f"PR #{number} not found in {self.repository}")
        if errors:
            raise GitHubError(f"GitHub could not read PR #{number}: {self._errors_text(errors)}")
        node = ((payload.get("data") or {}).get("repository") or {}).get("pullRequest")
        if not isinstance(node, dict):
            raise GitHubNotFound(f"PR #{number} not found in {self.repository}")
        try:
            return PullRequest.from_graphql(node)
        except ValidationError as exc:
            raise GitHubError(
                f"unexpected shape of PR #{number}: {exc.error_count()} errors"
            ) from exc

    def merge_pull_request(self, pr: PullRequest, *, expected_head_oid: str) -> str:
        """Squash-merge `pr` if its head is still `expected_head_oid`; returns the merge commit.

        Raises `MergeRefused` with reason "head_moved" when the head changed since it was
        checked, and reason "not_mergeable" (carrying GitHub's message) for other refusals.
        """
        payload = self._graphql(MERGE_MUTATION, {"id": pr.id, "head": expected_head_oid})
        errors = _graphql_errors(payload)
        if errors:
            self._raise_merge_refused(pr, errors, verb="merged")
        try:
            oid = MergeResult.model_validate(payload).merge_commit_oid
        except ValidationError:
            oid = None
        if not oid:
            raise GitHubError(f"GitHub merged PR #{pr.number} but reported no merge commit")
        return oid

    def enqueue_pull_request(self, pr: PullRequest, *, expected_head_oid: str) -> None:
        """Add `pr` to its base branch's merge queue if its head is still `expected_head_oid`."""
        payload = self._graphql(ENQUEUE_MUTATION, {"id": pr.id, "head": expected_head_oid})
        errors = _graphql_errors(payload)
        if errors:
            self._raise_merge_refused(pr, errors, verb="queued")

    def _raise_merge_refused(
        self, pr: PullRequest, errors: list[dict[str, Any]], verb: str
    ) -> NoReturn:
        text = self._errors_text(errors)
        if "head branch was modified" in text.lower():
            raise MergeRefused(
                f"PR #{pr.number} got new commits after it was checked; it was not {verb}.",
                reason="head_moved",
            )
        if any(error.get("type") == "NOT_FOUND" for error in errors):
            raise GitHubNotFound(f"PR #{pr.number} not found in {self.repository}")
        raise MergeRefused(
            f"GitHub refused to merge PR #{pr.number}: {text}", reason="not_mergeable"
        )

    # -- the repository (GraphQL) -------------------------------------------------------------

    def repository_access(self) -> RepositoryAccess:
        """The repository as the token sees it, with its permission; a repository that does
        not exist or is not visible to the token raises `GitHubNotFound`."""
        payload = self._graphql(REPOSITORY_QUERY, {"owner": self.owner, "repo": self.name})
        errors = _graphql_errors(payload)
        missing = f"repository {self.repository} not found, or not visible to this token"
        if any(error.get("type") == "NOT_FOUND" for error in errors):
            raise GitHubNotFound(missing)
        if errors:
            raise GitHubError(
                f"GitHub could not read {self.repository}: {self._errors_text(errors)}"
            )
        node = (payload.get("data") or {}).get("repository")
        if not isinstance(node, dict):
            raise GitHubNotFound(missing)
        try:
            access = RepositoryAccess.model_validate(node)
        except ValidationError as exc:
            raise GitHubError(f"unexpected shape of repository {self.repository}") from exc
        if not access.name_with_owner:
            return access.model_copy(update={"name_with_owner": self.repository})
        return access

    # -- commits (REST) ------------------------------------------------------------------------

    def commit(self, ref: str) -> Commit:
        """Read a commit (full or short SHA, or branch) with all its changed files."""
        shown = ref[:40]
        url = self._repo_url(f"/commits/{quote(ref, safe='')}")
        response = self._request("GET", url, not_found=f"No commit found for {shown}")
        body = self._json(response)
        files = _file_names(body.get("files"))
        pages = 1
        next_url = response.links.get("next", {}).get("url")
        while next_url:
            pages += 1
            if pages > MAX_FILE_PAGES:
                raise GitHubError(
                    f"commit {shown} lists files over more than {MAX_FILE_PAGES} pages"
                )
            self._check_same_origin(next_url)
            response = self._request("GET", next_url, not_found=f"No commit found for {shown}")
            files.extend(_file_names(self._json(response).get("files")))
            next_url = response.links.get("next", {}).get("url")
        try:
            # Files from every page, deduplicated in GitHub's order.
            return Commit.model_validate({**body, "files": list(dict.fromkeys(files))})
        except ValidationError as exc:
            raise GitHubError(f"unexpected shape of commit {shown}: {_first_error(exc)}") from exc

    def history(self, ref: str, *, since: float, max_pages: int = 5) -> list[str]:
        """SHAs reachable from `ref` (itself included) whose committer date is at or after
        `since` (epoch seconds), newest first; at most `max_pages` pages of 100.

        A partial list is fine for callers (they only draw conclusions from what is listed).
        An unknown ref raises `GitHubNotFound`.
        """
        shas: list[str] = []
        for number in range(1, max_pages + 1):
            page = self.history_page(ref, since=since, page=number)
            shas += page.shas
            if not page.more:
                break
        # A branch that moves between pages shifts them; list each commit once.
        return list(dict.fromkeys(shas))

    def history_page(self, ref: str, *, since: float, page: int) -> HistoryPage:
        """Page `page` (from 1, 100 a page) of `history(ref, since=since)`: for callers that
        stop reading once they found what they look for. A SHA's history never changes, so
        its pages can be read one at a time (by number: no Link to follow off GitHub)."""
        shown = ref[:40]
        # GitHub dates are whole seconds: rounding down lists a commit of `since`'s own second.
        stamp = datetime.fromtimestamp(int(since), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        params = {"sha": ref, "since": stamp, "per_page": str(HISTORY_PAGE_SIZE), "page": str(page)}
        response = self._request(
            "GET",
            self._repo_url("/commits"),
            params=params,
            not_found=f"No commit found for {shown}",
        )
        shas = _history_shas(self._json_value(response), shown)
        return HistoryPage(shas=shas, more="next" in response.links)

    def latest_commit_sha(self, branch: str = "main") -> str:
        """The SHA `branch` points at now."""
        url = self._repo_url(f"/git/ref/heads/{quote(branch, safe='/')}")
        body = self._json(self._request("GET", url, not_found=f"No branch {branch[:40]}"))
        try:
            return BranchRef.model_validate(body).sha
        except ValidationError as exc:
            raise GitHubError(f"unexpected shape of ref heads/{branch[:40]}") from exc

    def compare(self, base: str, head: str) -> Comparison:
        """How `head` relates to `base` (`ahead` means base is an ancestor of head).

        Raises `NoCommonAncestor` for commits without shared history (GitHub answers 404),
        and `GitHubNotFound` when either commit is unknown.
        """
        url = self._repo_url(f"/compare/{quote(base, safe='')}...{quote(head, safe='')}")
        response = self._request(
            "GET",
            url,
            params={"per_page": "1"},  # only the status is needed, not the commit list
            not_found=f"Cannot compare {base[:40]} with {head[:40]}",
        )
        body = self._json(response)
        try:
            return Comparison.model_validate(body)
        except ValidationError as exc:
            raise GitHubError(f"unexpected shape of compare {base[:40]}...{head[:40]}") from exc

    def compare_commits(self, base: str, head: str) -> ComparedCommits:
        """The commits `head` has that `base` lacks, oldest first (GitHub lists a comparison's
        commits in that order; the first page, `COMPARE_PAGE_SIZE` at most, holds the oldest),
        with `ahead_by` counting them all and the comparison's page on GitHub.

        Raises `NoCommonAncestor` for commits without shared history, `GitHubNotFound` when
        either commit is unknown.
        """
        url = self._repo_url(f"/compare/{quote(base, safe='')}...{quote(head, safe='')}")
        response = self._request(
            "GET",
            url,
            params={"per_page": str(COMPARE_PAGE_SIZE), "page": "1"},
            not_found=f"Cannot compare {base[:40]} with {head[:40]}",
        )
        try:
            return ComparedCommits.model_validate(self._json(response))
        except ValidationError as exc:
            raise GitHubError(
                f"unexpected shape of compare {base[:40]}...{head[:40]}: {_first_error(exc)}"
            ) from exc

    def is_ancestor(self, ancestor: str, descendant: str) -> bool:
        """Whether `ancestor` is in the history of `descendant` (or is the same commit)."""
        key = (ancestor.lower(), descendant.lower())
        if key in self._ancestry:
            return self._ancestry[key]
        try:
            answer = self.compare(ancestor, descendant).status in ("ahead", "identical")
        except NoCommonAncestor:
            answer = False  # unrelated histories: neither contains the other
        if _FULL_SHA.fullmatch(key[0]) and _FULL_SHA.fullmatch(key[1]):
            self._ancestry[key] = answer
        return answer

    # -- HTTP plumbing -------------------------------------------------------------------------

    def _repo_url(self, path: str) -> str:
        return f"{self.api_url}/repos/{self.owner}/{self.name}{path}"

    def _check_same_origin(self, url: str) -> None:
        # The Authorization header goes with every request: never follow a link off GitHub.
        ours, theirs = urlsplit(self.api_url), urlsplit(url)
        if (ours.scheme, ours.netloc) != (theirs.scheme, theirs.netloc):
            raise GitHubError("GitHub sent a pagination link to another host; not following it")

    def _graphql(self, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        response = self._request(
            "POST", self.graphql_url, json={"query": query, "variables": variables}
        )
        payload = self._json(response)
        errors = _graphql_errors(payload)
        limited = [
            error
            for error in errors
            if error.get("type") in _RATE_LIMIT_TYPES
            or "rate limit" in str(error.get("message", "")).lower()
        ]
        if limited:
            raise GitHubRateLimited(
                f"GitHub GraphQL rate limit: {self._errors_text(limited)}",
                reset_at=self._reset_at(response),
                status=response.status_code,
            )
        return payload

    def _request(
        self,
        method: str,
        url: str,
        *,
        json: Any = None,
        params: dict[str, str] | None = None,
        not_found: str | None = None,
    ) -> httpx.Response:
        route = f"{method} {urlsplit(url).path}"
        self.requests_made += 1
        try:
            response = self._http.request(method, url, json=json, params=params)
        except httpx.TimeoutException:
            raise GitHubUnavailable(f"GitHub timed out ({route})") from None
        except httpx.HTTPError as exc:
            # `from None`: the httpx exception holds the request, headers and token included.
            raise GitHubUnavailable(f"GitHub unreachable ({route}): {type(exc).__name__}") from None
        self._raise_for_status(response, route, not_found)
        return response

    def _raise_for_status(
        self, response: httpx.Response, route: str, not_found: str | None
    ) -> None:
        status = response.status_code
        if status < 400:
            return
        text = self._server_message(response)
        if status in (403, 429) and self._is_rate_limited(response, text):
            raise GitHubRateLimited(
                f"GitHub rate limit ({status} on {route}): {text}",
                reset_at=self._reset_at(response),
                status=status,
            )
        if status in (401, 403):
            raise GitHubAuthError(
                f"GitHub refused the token ({status} on {route}): {text}", status=status
            )
        if status == 404 and text.startswith(NO_COMMON_ANCESTOR):
            raise NoCommonAncestor(f"GitHub: {text}", status=status)
        if status in (404, 422) and not_found is not None:
            raise GitHubNotFound(not_found, status=status)
        if status == 404:
            raise GitHubNotFound(f"GitHub: not found ({route})", status=status)
        if status >= 500:
            raise GitHubUnavailable(f"GitHub error {status} on {route}: {text}", status=status)
        raise GitHubError(f"GitHub error {status} on {route}: {text}", status=status)

    @staticmethod
    def _is_rate_limited(response: httpx.Response, text: str) -> bool:
        if response.status_code == 429:
            return True
        return (
            response.headers.get("x-ratelimit-remaining") == "0"
            or "retry-after" in response.headers
            or "rate limit" in text.lower()
        )

    def _reset_at(self, response: httpx.Response) -> float:
        """When to call again: retry-after, else the primary reset, else a minute from now."""
        now = self._clock()
        retry_after = response.headers.get("retry-after")
        if retry_after is not None:
            try:
                return now + max(0.0, float(retry_after))
            except ValueError:
                pass
        reset = response.headers.get("x-ratelimit-reset")
        if response.headers.get("x-ratelimit-remaining") == "0" and reset is not None:
            try:
                return float(reset)
            except ValueError:
                pass
        return now + SECONDARY_LIMIT_WAIT

    def _server_message(self, response: httpx.Response) -> str:
        try:
            body = response.json()
            message = body.get("message") if isinstance(body, dict) else None
        except ValueError:
            message = None
        text = str(message) if message else (response.reason_phrase or "no message")
        return self._scrub(text)[:MAX_SERVER_MESSAGE]

    def _errors_text(self, errors: list[dict[str, Any]]) -> str:
        text = "; ".join(str(error.get("message") or error.get("type") or "?") for error in errors)
        return self._scrub(text)[:MAX_SERVER_MESSAGE]

    def _scrub(self, text: str) -> str:
        # Servers sometimes echo request data back; a token must never reach a log or Slack.
        if self._secret:
            text = text.replace(self._secret, "***")
        return text

    @staticmethod
    def _json_value(response: httpx.Response) -> Any:
        try:
            return response.json()
        except ValueError:
            raise GitHubError(
                f"GitHub sent a non-JSON response ({response.status_code})",
                status=response.status_code,
            ) from None

    @classmethod
    def _json(cls, response: httpx.Response) -> dict[str, Any]:
        body = cls._json_value(response)
        if not isinstance(body, dict):
            raise GitHubError(
                "GitHub sent an unexpected JSON response", status=response.status_code
            )
        return body


def _graphql_errors(payload: dict[str, Any]) -> list[dict[str, Any]]:
    errors = payload.get("errors") or []
    return [error for error in errors if isinstance(error, dict)]


def _file_names(files: Any) -> list[str]:
    names: list[str] = []
    for item in files or []:
        if not isinstance(item, dict):
            continue
        # A rename touches both paths: a pipeline watching the old path must see it too.
        for key in ("previous_filename", "filename"):
            name = item.get(key)
            if isinstance(name, str) and name:
                names.append(name)
    return names


def _history_shas(body: Any, shown: str) -> list[str]:
    """The `sha` of each commit of one page of the commit list."""
    try:
        return [commit.sha for commit in COMMIT_LIST.validate_python(body)]
    except ValidationError:
        raise GitHubError(f"unexpected shape of the history of {shown}") from None


def _first_error(exc: ValidationError) -> str:
    """`commit.message: Field required`: where the payload first did not fit, and why."""
    first = exc.errors()[0]
    return f"{'.'.join(str(part) for part in first['loc']) or 'body'}: {first['msg']}"
