"""The terminal layout of `where` and `status` answers, and the words both faces share."""

from __future__ import annotations

import time

from bot.where import status_lines, where_lines
from bot.wording import clock, stage_line, staging_line, where_conclusion
from workers.view import (
    BuildSummary,
    CommitRange,
    StageAnswer,
    StageStatus,
    StatusAnswer,
    WhereAnswer,
)

NOW = time.mktime((2024, 5, 2, 15, 0, 0, 0, 0, -1))  # local 15:00
SHA, LATER = "a" * 40, "b" * 40


def at(hh: int, mm: int) -> int:
    return int(time.mktime((2024, 5, 2, hh, mm, 0, 0, 0, -1)))


def answer(**fields: object) -> WhereAnswer:
    base: dict[str, object] = {
        "sha": SHA,
        "short_sha": SHA[:7],
        "headline": "Add fee",
        "pr_number": 12,
        "path": "backend",
        "path_description": "changes outside apps/ and dagster/",
        "stages": [],
        "deployed": False,
        "complete": False,
        "answered_at": NOW,
    }
    base.update(fields)
    return WhereAnswer.model_validate(base)


def test_clock_shows_the_day_only_when_it_is_not_today() -> None:
    assert clock(at(14, 2), NOW) == "14:02"
    assert clock(at(14, 2) - 86400, NOW) == time.strftime(
        "%b %d 14:02", time.localtime(at(14, 2) - 86400)
    )


def test_stage_lines_say_passed_running_failed_not_reached() -> None:
    passed = StageAnswer(
        id="tests",
        label="lana-bank tests",
        state="passed",
        build="test-bats #12",
        finished_at=at(14, 2),
        carried_by=LATER,
    )
    assert stage_line(passed, NOW) == "passed: test-bats #12 at 14:02, carried by bbbbbbb"
    running = StageAnswer(
        id="build-rc",
        label="build-rc",
        state="running",
        build="build-rc #8",
        started_at=at(14, 55),
        usual_duration=540,
    )
    assert stage_line(running, NOW) == "running: build-rc #8 since 14:55 (usually 9m 00s)"
    failed = StageAnswer(id="t", label="t", state="failed", build="test-bats #13")
    assert stage_line(failed, NOW) == "failed: test-bats #13"
    assert stage_line(StageAnswer(id="s", label="s", state="waiting"), NOW) == "not reached"


def test_where_ends_on_staging_since_or_with_the_expected_time() -> None:
    deployed = answer(deployed=True, complete=True, deployed_at=at(14, 2))
    assert where_conclusion(deployed) == "On staging since 14:02."
    stages = [
        StageAnswer(id="tests", label="lana-bank tests", state="passed", finished_at=at(14, 0)),
        StageAnswer(id="build-rc", label="build-rc", state="running", started_at=at(14, 55)),
    ]
    moving = answer(stages=stages, at_stage="build-rc", remaining=1800, expected_at=NOW + 1800)
    assert where_conclusion(moving) == (
        "At build-rc (running); expected on staging around 15:30 (in 30m 00s)."
    )
    lines = where_lines(moving)
    assert lines[0] == "aaaaaaa Add fee (PR #12)"
    assert lines[1] == "Path: backend — changes outside apps/ and dagster/"
    assert lines[2].startswith("✔ lana-bank tests  passed at 14:00")
    assert lines[3].startswith("▶ build-rc         running since 14:55")
    stuck = answer(
        stages=[StageAnswer(id="tests", label="lana-bank tests", state="failed")],
        at_stage="tests",
    )
    assert "without a rerun" in where_conclusion(stuck)


def test_an_open_pr_is_said_not_merged_with_its_review_state() -> None:
    open_pr = answer(merged=False, approval="review required")
    assert where_conclusion(open_pr) == (
        "PR #12 is not merged yet (review required): nothing has run for it."
    )
    assert where_lines(open_pr)[1].endswith("(once merged)")


def test_a_frontend_only_path_complete_says_so_with_its_note() -> None:
    done = answer(
        path="frontend-only",
        reaches_staging=False,
        complete=True,
        path_note="Frontend images reach staging with the next backend-inclusive release.",
    )
    assert where_conclusion(done).startswith("Its path is complete. Frontend images")


def test_status_says_what_staging_runs_and_links_the_comparison() -> None:
    newest = BuildSummary(
        job="galoy-staging-lana-bank",
        name="41",
        status="succeeded",
        finished_at=at(14, 2),
        commit=SHA,
    )
    status = StatusAnswer(
        stages=[
            StageStatus(id="staging", label="staging", newest=newest),
            StageStatus(
                id="tests",
                label="lana-bank tests",
                running=[
                    BuildSummary(job="test-bats", name="9", status="started", started_at=at(14, 50))
                ],
            ),
        ],
        staging_sha=SHA,
        deployed_at=at(14, 2),
        main_sha=LATER,
        behind=CommitRange(
            base=SHA,
            head=LATER,
            ahead_by=7,
            oldest_committed_at=int(NOW - 3 * 3600 - 12 * 60),
            url=f"https://github.com/o/r/compare/{SHA}...{LATER}",
        ),
        answered_at=NOW,
    )
    assert staging_line(status) == (
        "staging runs aaaaaaa (deployed 14:02); main is 7 commits ahead, the oldest waiting 3h 12m"
    )
    lines = status_lines(status)
    assert lines[0] == "staging          galoy-staging-lana-bank #41 succeeded 14:02 (aaaaaaa)"
    assert lines[1] == "lana-bank tests  no build yet; running: test-bats #9 since 14:50"
    assert lines[-1].endswith(f"/compare/{SHA}...{LATER}")
