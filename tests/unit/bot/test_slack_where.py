"""The chain view's answers as Slack shows them: `where` (each stage, the closing line, the
Follow it button), `status` and what staging runs (also on the App Home), and the final
report's compare link; outside text escaped, within Block Kit's limits."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bot.slack.blockkit import MAX_BLOCKS, SlackMessage
from bot.slack.render import (
    FOLLOW_ACTION,
    HomeContent,
    home_tab,
    moved_over_line,
    staging_line,
    status_answer,
    thread_reply,
    where_answer,
)
from workers.chain import load_chain
from workers.events import Blocker, Deployed
from workers.monitor import new_monitor
from workers.view import (
    BuildSummary,
    CommitRange,
    StageAnswer,
    StageStatus,
    StatusAnswer,
    WhereAnswer,
)

SHA = "abc1234" + "0" * 33
CARRIER = "def5678" + "1" * 33
T0 = 1_700_000_000
NASTY = "<!channel> fix & tidy > done"


def blob(message: SlackMessage) -> str:
    return json.dumps(message.blocks, ensure_ascii=False)


def follow_buttons(message: SlackMessage) -> list[dict[str, Any]]:
    return [
        element
        for block in message.blocks or []
        for element in block.get("elements", [])
        if element.get("action_id") == FOLLOW_ACTION
    ]


def answer(**extra: Any) -> WhereAnswer:
    stages = [
        StageAnswer(
            id="tests",
            label="lana-bank tests",
            state="passed",
            build="test-bats #57",
            url="https://ci/builds/57",
            finished_at=T0 + 300,
            carried_by=CARRIER,
        ),
        StageAnswer(
            id="build-rc",
            label="Build RC",
            state="running",
            build="build-rc #12",
            url="https://ci/builds/12",
            started_at=T0 + 320,
            usual_duration=600,
        ),
        StageAnswer(id="deploy", label="Deploy to staging", state="waiting", usual_duration=120),
    ]
    fields: dict[str, Any] = {
        "sha": SHA,
        "short_sha": SHA[:7],
        "headline": NASTY,
        "path": "backend",
        "path_description": "Rust <core>",
        "stages": stages,
        "deployed": False,
        "complete": False,
        "at_stage": "build-rc",
        "expected_at": T0 + 1200.0,
        "pr_number": 12,
        "pr_url": "https://github.com/GaloyMoney/lana-bank/pull/12",
    }
    return WhereAnswer(**{**fields, **extra})


def test_where_lists_each_stage_and_ends_with_the_expected_time() -> None:
    shown = where_answer(answer())
    text = blob(shown)
    assert "<!channel>" not in text and "&lt;!channel&gt; fix &amp; tidy &gt; done" in text
    assert "Rust &lt;core&gt;" in text
    assert "<https://ci/builds/57|test-bats #57>" in text and "carried by `def5678`" in text
    assert "*Build RC* — running since <!date^1700000320^{time}|" in text
    assert "(usually 10m 00s)" in text
    assert "*Deploy to staging* — not reached" in text
    assert "Now at *Build RC*; expected on staging at <!date^1700001200^{time}|" in text
    (follow,) = follow_buttons(shown)
    assert follow["value"] == SHA and follow["text"]["text"] == "Follow it"


def test_where_for_a_deployed_commit_says_since_when_and_offers_no_follow() -> None:
    shown = where_answer(answer(deployed=True, complete=True, deployed_at=T0 + 900))
    assert ":rocket: On staging since <!date^1700000900^" in blob(shown)
    assert follow_buttons(shown) == []


def test_where_for_an_open_pr_says_not_merged_with_its_review_state() -> None:
    shown = where_answer(answer(merged=False, approval="changes requested", at_stage=None))
    assert "PR #12 is not merged yet (changes requested)" in blob(shown)
    assert follow_buttons(shown) == []  # following it would merge it: `/deploy-monitor 12` does


def test_where_for_a_followed_commit_links_its_thread() -> None:
    shown = where_answer(answer(followed=True), thread_permalink="https://acme.slack.com/p1")
    assert follow_buttons(shown) == []
    assert "<https://acme.slack.com/p1|its thread>" in blob(shown)


def test_where_for_a_failed_stage_and_a_reason() -> None:
    stages = answer().stages
    paused = Blocker(
        reason="paused",
        where="lana-bank/build-rc",
        stage=stages[1].id,
        label="Build RC",
        by="<bob>",
    )
    stages[1] = stages[1].model_copy(update={"state": "failed", "reason": paused})
    text = blob(where_answer(answer(stages=stages, expected_at=None)))
    assert "*Build RC* — failed" in text and "which failed" in text
    assert "paused by &lt;bob&gt;" in text


def test_where_for_a_huge_path_stays_within_limits() -> None:
    stages = [StageAnswer(id=f"s{i}", label="x" * 200, state="waiting") for i in range(1000)]
    shown = where_answer(answer(stages=stages, at_stage="s0"))
    assert shown.blocks is not None and len(shown.blocks) <= MAX_BLOCKS
    assert "more" in blob(shown) and follow_buttons(shown)


def status(**extra: Any) -> StatusAnswer:
    fields: dict[str, Any] = {
        "stages": [
            StageStatus(
                id="tests",
                label="lana-bank tests",
                newest=BuildSummary(
                    job="test-bats",
                    name="57",
                    status="failed",
                    url="https://ci/57",
                    finished_at=T0,
                    commit=SHA,
                ),
                running=[
                    BuildSummary(job="test-bats", name="58", status="started", started_at=T0 + 60)
                ],
                usual_duration=290,
            ),
            StageStatus(id="deploy", label="Deploy <staging>"),
        ],
        "staging_sha": CARRIER,
        "deployed_at": T0 - 3600,
        "main_sha": SHA,
        "behind": CommitRange(
            base=CARRIER,
            head=SHA,
            ahead_by=7,
            oldest_committed_at=T0 - 11520,
            url="https://github.com/GaloyMoney/lana-bank/compare/def5678...abc1234",
        ),
        "answered_at": float(T0),
    }
    return StatusAnswer(**{**fields, **extra})


def test_the_staging_line_says_what_runs_and_how_far_behind_main_is() -> None:
    line = staging_line(status())
    assert line.startswith(":rocket: Staging runs `def5678` (deployed <!date^1699996400^")
    assert "main is 7 commits ahead, the oldest waiting 3h 12m" in line
    assert "<https://github.com/GaloyMoney/lana-bank/compare/def5678...abc1234|compare>" in line


def test_the_staging_line_when_staging_is_main_or_unknown() -> None:
    same = status(behind=CommitRange(base=SHA, head=SHA, ahead_by=0, url="https://x"))
    assert "main's latest commit" in staging_line(same)
    assert "not known" in staging_line(status(staging_sha=None, behind=None))


def test_status_lists_each_stage_newest_and_running_builds() -> None:
    text = blob(status_answer(status()))
    assert "*lana-bank tests* (usually 4m 50s)" in text
    assert "<https://ci/57|test-bats #57> (`abc1234`) failed" in text
    assert "test-bats #58 running since <!date^1700000060^" in text
    assert "*Deploy &lt;staging&gt;*: no builds yet" in text
    assert "main is 7 commits ahead" in text


def test_the_home_shows_staging_when_known() -> None:
    home = HomeContent(viewer="U1", monitors=[], journeys=[], wants_dm=True, staging=[status()])
    text = json.dumps(home_tab(home)["blocks"], ensure_ascii=False)
    assert '"Staging"' in text and "main is 7 commits ahead" in text
    bare = HomeContent(viewer="U1", monitors=[], journeys=[], wants_dm=True)
    assert '"Staging"' not in json.dumps(home_tab(bare)["blocks"])


@pytest.mark.parametrize("count", [1, 7])
def test_the_final_report_links_what_the_deploy_moved_staging_over(count: int) -> None:
    monitor, _ = new_monitor(
        chain=load_chain(),
        repository="GaloyMoney/lana-bank",
        sha=SHA,
        headline="Add fee",
        committed_at=T0,
        files=["core/src/lib.rs"],
        now=T0,
    )
    event = Deployed(short_sha=SHA[:7], headline="Add fee", timeline=[], total=600)
    moved = CommitRange(base=CARRIER, head=SHA, ahead_by=count, url="https://gh/compare/a...b")
    plain = thread_reply(event, monitor)
    linked = thread_reply(event, monitor, moved_over=moved)
    assert plain is not None and linked is not None
    assert linked.text == plain.text  # the notification is the report, as before
    assert moved_over_line(moved) in blob(linked)
    assert "<https://gh/compare/a...b|def5678…abc1234>" in blob(linked)
    assert ("1 commit:" in blob(linked)) == (count == 1)
