"""The terminal's words for usual times: the expected time on stage lines, usual durations in
the timeline, the slow warning."""

from __future__ import annotations

from bot.wording import clock, text, timeline_lines, usual_words, zoned_clock
from workers.chain import load_chain
from workers.events import StageSlow, StageStarted, StageSucceeded, TimelineEntry
from workers.monitor import Monitor, new_monitor

T0 = 1_700_000_000


def monitor(files: list[str] | None = None) -> Monitor:
    made, _ = new_monitor(
        chain=load_chain(),
        repository="GaloyMoney/lana-bank",
        sha="abc1234" + "0" * 33,
        headline="Add fee",
        committed_at=T0,
        files=files or ["core/src/lib.rs"],
        now=T0,
    )
    return made


def test_zoned_clock_names_the_zone() -> None:
    shown = zoned_clock(T0, T0)
    assert shown.startswith(clock(T0, T0)) and len(shown) > len(clock(T0, T0))


def test_stage_lines_tell_the_expected_time_when_known() -> None:
    m = monitor()
    started = StageStarted(stage="tests", label="lana-bank tests", builds=["test-bats #5"], at=T0)
    assert text(started, m) == "▶ lana-bank tests started (test-bats #5)"
    started.expected_at = T0 + 1500
    when = zoned_clock(T0 + 1500, T0)
    assert (
        text(started, m) == f"▶ lana-bank tests started (test-bats #5); expected on staging ~{when}"
    )
    m.stage("tests").usual_duration = 270
    passed = StageSucceeded(
        stage="tests", label="lana-bank tests", duration=290, at=T0, expected_at=T0 + 900
    )
    assert text(passed, m) == (
        "✔ lana-bank tests passed in 4m 50s (usual 4m 30s); "
        f"expected on staging ~{zoned_clock(T0 + 900, T0)}"
    )


def test_a_path_that_ends_before_staging_is_expected_done() -> None:
    m = monitor(["apps/admin-panel/src/page.tsx"])
    started = StageStarted(
        stage="admin-panel-image", label="admin", builds=["b #1"], at=T0, expected_at=T0 + 60
    )
    assert text(started, m).endswith(f"; expected done ~{zoned_clock(T0 + 60, T0)}")


def test_the_timeline_shows_usual_durations_only_when_known() -> None:
    entries = [
        TimelineEntry(label="testflight", duration=720, usual=540),
        TimelineEntry(label="staging", duration=400),
        TimelineEntry(label="never ran", duration=None, usual=300),
    ]
    assert timeline_lines(entries, 1200) == [
        "Timeline:",
        "testflight: 12m 00s (usual 9m 00s)",
        "staging: 6m 40s",
        "never ran: —",
        "Total: 20m 00s",
    ]


def test_the_slow_warning_names_the_usual_time_or_the_threshold() -> None:
    m = monitor()
    by_usual = StageSlow(stage="tests", label="tests", elapsed=1500, threshold=1200, usual=600)
    assert text(by_usual, m) == "⚠ tests has been running for 25m 00s (usually 10m 00s)"
    by_threshold = StageSlow(stage="tests", label="tests", elapsed=1900, threshold=1800)
    assert text(by_threshold, m) == "⚠ tests has been running for 31m 40s (usually under 30m 00s)"


def test_usual_words() -> None:
    assert usual_words(None) == "" and usual_words(None, running=True) == ""
    assert usual_words(540) == " (usual 9m 00s)"
    assert usual_words(540, running=True) == " (usually 9m 00s)"
