"""A scriptable GitHub on loopback: commits on a real DAG, pull requests, merges, rate limits.

It answers the few REST and GraphQL calls deploy-monitor makes, with GitHub's shapes and status
codes (see the project's GitHub API notes): GraphQL errors arrive with HTTP 200, unknown commits
answer 422, commit files are Link-paginated, the commit list (`GET .../commits?sha=&since=`)
walks the DAG newest first with Link pagination, merges honour `expectedHeadOid` / `sha`, a merge
queue refuses direct merges, and every response carries the `x-ratelimit-*` headers. A
GraphQL document is checked against GitHub's public schema before it is answered, the
repository query reports `viewer_permission`, and a compare of unrelated histories is a 404.

    sim = GitHubSimulator(repository="GaloyMoney/lana-bank", token="ghs_test")
    url = sim.start()
    sim.add_pull_request(42, "Fix the thing", ["core/x.rs"])
    ...
    assert sim.merges == [(42, sim.main_head)]

Like GitHub, one simulator serves several repositories from one URL, for one token. The
simulator's own scripting API acts on its first repository; `add_repository` returns a
`SimRepository` with the same API for another:

    sim = GitHubSimulator(repository="GaloyMoney/lana-bank", token="ghs_test")
    widgets = sim.add_repository("acme/widgets")  # main starts at an "Initial commit" too
    url = sim.start()
    sim.add_pull_request(42, "Fix the thing", ["core/x.rs"])    # lana-bank's #42
    widgets.add_pull_request(42, "Polish", ["src/widget.py"])  # widgets' own #42
    ...
    assert widgets.merges == [(42, widgets.main_head)] and sim.merges == []

Every `/repos/{owner}/{repo}/...` route and GraphQL `repository(owner:, name:)` answers from the
repository it names (any case); a mutation acts on the repository whose PR node id it is given
(node ids and generated SHAs are unique across repositories). What belongs to the token is
shared: the auth check, the rate-limit windows and headers, `fail_next` / `rate_limit_next`
(the next requests, whatever repository) and `write_requests`; so are the lock and the clock.

Tests script races through `before_merge`: a callable run with the PR number right before a
merge mutation is applied (e.g. `lambda n: sim.push_to_pr(n)` moves the head under the bot).
A queued PR merges on the `queue_polls_before_merge`-th PR query after it was enqueued.

One class, put together from one module per concern: `_model` (records, limits, messages),
`_state` (a repository's commit DAG, pull requests and merging; the token's shared state),
`_gate` (User-Agent, token, API version, rate limits, scripted failures), `_rest`, `_graphql`
(each finds the repository a request names), `_schema` (the check against GitHub's public
GraphQL schema), `_simulator` (routes; the first repository's API on the simulator).
"""

from simulators.github._model import (
    DOCS,
    HEAD_MODIFIED,
    LIST_COMMITS_DOCS,
    LIST_MAX_PAGE_SIZE,
    LIST_PAGE_SIZE,
    MERGE_QUEUE_REQUIRED,
    NOT_MERGEABLE,
    QUEUE_POLLS_BEFORE_MERGE,
    RATE_LIMIT,
    REVIEW_REQUIRED,
    SECONDARY_MESSAGE,
    SUPPORTED_API_VERSIONS,
    UNAUTHENTICATED_LIMIT,
    SimCommit,
    SimPullRequest,
)
from simulators.github._simulator import GitHubSimulator
from simulators.github._state import SimRepository

__all__ = [
    "DOCS",
    "HEAD_MODIFIED",
    "LIST_COMMITS_DOCS",
    "LIST_MAX_PAGE_SIZE",
    "LIST_PAGE_SIZE",
    "MERGE_QUEUE_REQUIRED",
    "NOT_MERGEABLE",
    "QUEUE_POLLS_BEFORE_MERGE",
    "RATE_LIMIT",
    "REVIEW_REQUIRED",
    "SECONDARY_MESSAGE",
    "SUPPORTED_API_VERSIONS",
    "UNAUTHENTICATED_LIMIT",
    "GitHubSimulator",
    "SimCommit",
    "SimPullRequest",
    "SimRepository",
]
