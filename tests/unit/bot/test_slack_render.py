"""The Slack renderer: records and events → messages that are safe, within Block Kit's limits,
and worded like the terminal."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from slack_sdk.errors import SlackObjectFormationError
from slack_sdk.models.blocks import Block

from bot.slack import blockkit
from bot.slack.blockkit import MAX_BLOCKS, MAX_SECTION_TEXT, SlackMessage, code_block, escape
from bot.slack.render import (
    FOLLOWED_AUTOMATICALLY,
    already_followed,
    decided_message,
    failure_message,
    final_dm,
    followed_elsewhere,
    followed_list,
    is_broadcast,
    lookup_failed,
    merge_refused,
    not_found_reply,
    nothing_matching,
    rerun_already_asked,
    rerun_refused,
    status_board,
    thread_reply,
)
from bot.wording import text as terminal_text
from bot.wording import zoned_clock
from workers.chain import Chain, load_chain
from workers.events import (
    BuildStatus,
    CarriedByLater,
    ConcourseBack,
    ConcourseUnreachable,
    DecisionTaken,
    Deployed,
    Event,
    MonitorStarted,
    NotPickedUp,
    PathCompleted,
    RecoveredByRerun,
    RerunAsked,
    StageFailed,
    StageSlow,
    StageStarted,
    StageSucceeded,
    Stopped,
)
from workers.monitor import FailurePrompt, Monitor, ObservedBuild, new_monitor, timeline
from workers.target import Targeting

SHA = "abc1234" + "0" * 33
T0 = 1_700_000_000
REQUESTER = "U0REQUEST"
NASTY = "<!channel> fix & tidy > done"
BACKEND = ["core/src/lib.rs"]
FRONTEND = ["apps/admin-panel/src/page.tsx"]


# ---------------------------------------------------------------------------------------------
# A Block Kit checker: the limits Slack enforces, plus "no stray control characters"


def block_kit_problems(message: SlackMessage) -> list[str]:
    """Everything in `message` that Slack would refuse (or render as a ping/link by mistake)."""
    problems: list[str] = []
    if not message.text or len(message.text) > 3000:
        problems.append(f"fallback text length {len(message.text)}")
    if not 1 <= len(message.blocks) <= MAX_BLOCKS:
        problems.append(f"{len(message.blocks)} blocks")
    block_ids: set[str] = set()
    for i, block in enumerate(message.blocks):
        kind = block["type"]
        if "block_id" in block:
            if block["block_id"] in block_ids or len(block["block_id"]) > 255:
                problems.append(f"block {i}: bad block_id")
            block_ids.add(block["block_id"])
        if kind == "section":
            text = block["text"]
            if text["type"] != "mrkdwn" or not 1 <= len(text["text"]) <= MAX_SECTION_TEXT:
                problems.append(f"block {i}: section text length {len(text['text'])}")
        elif kind == "header":
            text = block["text"]
            if text["type"] != "plain_text" or not 1 <= len(text["text"]) <= 150:
                problems.append(f"block {i}: header text")
        elif kind == "context":
            elements = block["elements"]
            if not 1 <= len(elements) <= 10 or any(not e["text"] for e in elements):
                problems.append(f"block {i}: context elements")
        elif kind == "actions":
            problems += [f"block {i}: {p}" for p in _actions_problems(block)]
        else:
            problems.append(f"block {i}: unexpected type {kind}")
        try:  # slack_sdk's own validators, as a second opinion
            parsed = Block.parse(block)
            assert parsed is not None
            parsed.to_dict()
        except Exception as exc:
            problems.append(f"block {i}: slack_sdk: {exc}")
    # `<` may only open a mention or a link we made; anything else is unescaped input.
    for where, value in [("text", message.text), ("blocks", json.dumps(message.blocks))]:
        for stray in re.findall(r"<(?!@[UW][A-Z0-9]+>|https?://)[^>]{0,20}", value):
            problems.append(f"{where}: unescaped {stray!r}")
    return problems


def _actions_problems(block: dict[str, Any]) -> list[str]:
    problems = []
    elements = block["elements"]
    if not 1 <= len(elements) <= 25:
        problems.append("actions elements")
    for button in elements:
        if len(button["text"]["text"]) > 75 or len(button["value"]) > 2000:
            problems.append("button text/value")
        if len(button["action_id"]) > 255:
            problems.append("action_id")
        confirm = button.get("confirm")
        if confirm is not None:
            limits = {"title": 100, "text": 300, "confirm": 30, "deny": 30}
            for field, limit in limits.items():
                if not 1 <= len(confirm[field]["text"]) <= limit:
                    problems.append(f"confirm {field}")
    return problems


def ok(message: SlackMessage | None) -> SlackMessage:
    """`message`, after checking it is a valid Slack message."""
    assert message is not None
    assert block_kit_problems(message) == []
    return message


def texts(message: SlackMessage) -> list[str]:
    """Every text in the blocks, in order."""
    found: list[str] = []
    for block in message.blocks:
        if "text" in block:
            found.append(block["text"]["text"])
        found += [e["text"] for e in block.get("elements", []) if isinstance(e.get("text"), str)]
    return found


def sections(message: SlackMessage) -> list[str]:
    return [b["text"]["text"] for b in message.blocks if b["type"] == "section"]


def actions(message: SlackMessage) -> list[dict[str, Any]]:
    return [b for b in message.blocks if b["type"] == "actions"]


# ---------------------------------------------------------------------------------------------
# Monitors and events


@pytest.fixture(scope="module")
def chain() -> Chain:
    return load_chain()


def make(
    chain: Chain,
    *,
    headline: str = "Add fee",
    files: list[str] = BACKEND,
    requester: str | None = REQUESTER,
    pr: bool = True,
) -> Monitor:
    monitor, _ = new_monitor(
        chain=chain,
        repository="GaloyMoney/lana-bank",
        sha=SHA,
        headline=headline,
        committed_at=T0,
        files=files,
        now=T0,
        pr_number=1234 if pr else None,
        pr_title=headline if pr else None,
        pr_url="https://github.com/GaloyMoney/lana-bank/pull/1234" if pr else None,
        requester=requester,
    )
    return monitor


def build(job: str, name: str, status: BuildStatus, build_id: int = 1) -> ObservedBuild:
    return ObservedBuild(
        id=build_id,
        name=name,
        status=status,
        url=f"https://ci.example.com/teams/dev/pipelines/lana-bank/jobs/{job}/builds/{name}",
    )


def progress(monitor: Monitor) -> Monitor:
    """tests passed (4m 50s), build-rc failed, promote running slow, the rest waiting."""
    tests = monitor.stage("tests")
    tests.state, tests.started_at, tests.finished_at = "succeeded", T0 + 10, T0 + 300
    for i, track in enumerate(tests.jobs):
        track.build = build(track.job, "57.1" if track.job == "test-bats" else "57", "succeeded", i)
    rc = monitor.stage("build-rc")
    rc.state, rc.started_at = "failed", T0 + 320
    rc.jobs[0].build = build("build-rc", "12", "errored", 10)
    promote = monitor.stage("open-promote-rc-pr")
    promote.state, promote.started_at, promote.slow_warned = "running", T0 + 330, True
    promote.jobs[0].build = build("open-promote-rc-pr", "8", "started", 11)
    flight = monitor.stage("testflight")
    flight.state = "running"
    flight.jobs[0].build = build("lana-bank-testflight", "3", "pending", 12)
    return monitor


def deployed(monitor: Monitor) -> tuple[Monitor, Deployed]:
    start = T0
    for stage, took in zip(monitor.stages, [290, 60, 10, 300, 195], strict=True):
        stage.state, stage.started_at, stage.finished_at = "succeeded", start, start + took
        start += took
    monitor.status = "deployed"
    entries, total = timeline(monitor)
    return monitor, Deployed(
        short_sha=monitor.short_sha, headline=monitor.headline, timeline=entries, total=total
    )


def failed(log: str = "boom", prompt: int | None = 1, **extra: Any) -> StageFailed:
    fields: dict[str, Any] = {
        "stage": "tests",
        "label": "lana-bank tests",
        "job": "test-bats",
        "build_name": "57",
        "build_url": "https://ci.example.com/builds/57",
        "status": "failed",
        "log_tail": log,
        "prompt": prompt,
    }
    return StageFailed(**{**fields, **extra})


# ---------------------------------------------------------------------------------------------
# Escaping and code blocks


def test_escape_only_touches_slack_control_characters() -> None:
    assert escape('<!channel> a & b > c *bold* "q" \'s') == (
        '&lt;!channel&gt; a &amp; b &gt; c *bold* "q" \'s'
    )
    assert escape("&amp;") == "&amp;amp;"  # input is text, not markup: escape it as such


def test_code_block_that_fits_is_whole_and_escaped() -> None:
    assert code_block("a < b && c\n", 100) == "```\na &lt; b &amp;&amp; c\n```"


def test_code_block_neutralises_triple_backticks() -> None:
    block = code_block("before ``` inside ```` after `x`", 200)
    assert block.count("```") == 2
    assert block.startswith("```\n") and block.endswith("\n```")
    assert "`x`" in block  # single backticks are left alone


def test_code_block_keeps_the_tail_and_counts_what_it_dropped() -> None:
    log = "".join(f"step {i:04d} ok & fine\n" for i in range(500)) + "ERROR: disk <full>\n"
    block = code_block(log, 1000)
    assert len(block) <= 1000
    assert block.endswith("ERROR: disk &lt;full&gt;\n```")
    first, rest = block.removeprefix("```\n").split("\n", 1)
    match = re.fullmatch(r"… \((\d+) earlier characters omitted\)", first)
    assert match is not None
    kept = rest.removesuffix("\n```").replace("&amp;", "&").replace("&lt;", "<")
    kept = kept.replace("&gt;", ">")
    assert log.rstrip().endswith(kept)
    assert int(match.group(1)) + len(kept) == len(log.rstrip())
    assert kept.startswith("step ")  # cut on a line boundary


@pytest.mark.parametrize("limit", range(60, 400, 7))
def test_code_block_always_fits_and_stays_fenced(limit: int) -> None:
    nasty = "x``` & <y> ``" * 40 + "`"
    block = code_block(nasty, limit)
    assert len(block) <= limit
    assert block.count("```") == 2
    body = block.removeprefix("```\n").removesuffix("\n```").split("\n")[-1]
    plain = body.replace("\u200b", "").replace("&lt;", "<").replace("&gt;", ">")
    assert nasty.endswith(plain.replace("&amp;", "&"))


def test_code_block_refuses_an_impossible_limit() -> None:
    with pytest.raises(ValueError):
        code_block("x" * 100, 20)


# ---------------------------------------------------------------------------------------------
# The status board


def test_status_board_shows_each_stage_with_its_state(chain: Chain) -> None:
    board = ok(status_board(progress(make(chain))))
    lines = "\n".join(sections(board)).splitlines()
    assert lines[0].startswith(":white_check_mark: *lana-bank tests* — passed in 4m 50s · ")
    assert "|test-bats #57.1>" in lines[0]
    assert "/jobs/test-bats/builds/57.1|" in lines[0]
    assert lines[1].startswith(":x: *build-rc* — failed · ")
    assert lines[1].endswith(
        "build-rc #12> errored (a Concourse error);"
        " waiting for a rerun or a later build that passes"
    )
    assert lines[2].startswith(":warning: *open-promote-rc-pr* — running longer than usual · ")
    assert lines[3].startswith(":arrows_counterclockwise: *testflight* — running · ")
    assert lines[4] == ":hourglass_flowing_sand: *staging* — waiting"
    assert board.blocks[0] == {
        "type": "header",
        "text": {"type": "plain_text", "text": "Deploying abc1234 Add fee", "emoji": True},
    }
    context = " ".join(texts(board)[1:5])
    assert "PR <https://github.com/GaloyMoney/lana-bank/pull/1234|#1234>" in context
    assert "`abc1234`" in context and f"<@{REQUESTER}>" in context
    assert "Path: *backend* — changes outside apps/ and dagster/" in context
    assert board.text == "Deploying PR #1234 (abc1234 Add fee): build-rc failed"


def test_status_board_escapes_user_text(chain: Chain) -> None:
    monitor = make(chain, headline=NASTY)
    monitor.pr_title = "Other <!here> title"
    board = ok(status_board(monitor))
    header = board.blocks[0]["text"]["text"]
    assert header == "Deploying abc1234 &lt;!channel&gt; fix &amp; tidy &gt; done"
    assert "#1234 Other &lt;!here&gt; title>" in json.dumps(board.blocks)
    assert "&lt;!channel&gt;" in board.text


def test_status_board_requester_argument_and_non_slack_names(chain: Chain) -> None:
    cli = make(chain, requester="alice")
    assert "Requested by alice" in json.dumps(ok(status_board(cli)).blocks)
    assert "<@U0OTHER>" in json.dumps(ok(status_board(cli, requester="U0OTHER")).blocks)
    assert "Requested" not in json.dumps(ok(status_board(make(chain, requester=None))).blocks)


def test_status_board_shows_a_pending_decision(chain: Chain) -> None:
    monitor = progress(make(chain))
    monitor.prompt = FailurePrompt(prompt=1, stage="build-rc", job="build-rc", build_id=10)
    board = ok(status_board(monitor))
    assert "waiting for a rerun" not in sections(board)[0]  # not until someone answers
    assert any(
        "build-rc failed in build-rc: waiting for <@U0REQUEST> to decide" in s
        for s in sections(board)
    )
    assert "waiting for a decision" in board.text


def test_status_board_when_done_shows_the_total(chain: Chain) -> None:
    monitor, _ = deployed(make(chain))
    board = ok(status_board(monitor))
    assert board.blocks[0]["text"]["text"] == "Deployed ✅ abc1234 Add fee"
    assert sections(board)[-1] == "*Total:* 14m 15s"
    assert all(":white_check_mark:" in line for line in sections(board)[0].splitlines())

    monitor.status = "stopped"
    stopped = ok(status_board(monitor))
    assert stopped.blocks[0]["text"]["text"] == "Stopped abc1234 Add fee"
    assert "Stopped following abc1234" in sections(stopped)[-1]


def test_status_board_for_a_frontend_only_path(chain: Chain) -> None:
    monitor = make(chain, files=FRONTEND)
    assert ok(status_board(monitor)).blocks[0]["text"]["text"].startswith("Building images for")
    for stage in monitor.stages:
        stage.state, stage.started_at, stage.finished_at = "succeeded", T0, T0 + 60
    monitor.status = "completed"
    board = ok(status_board(monitor))
    assert board.blocks[0]["text"]["text"] == "Images built abc1234 Add fee"
    assert "next backend-inclusive release" in sections(board)[-1]


def _long_chain(stages: int, label_length: int) -> Chain:
    spec = {
        "name": "long",
        "stages": [
            {
                "id": f"s{i}",
                "label": f"stage {i} " + "<&>" * (label_length // 3),
                "pipeline": "p",
                "jobs": [f"job-{i}"],
                "match": {"input": "repo"},
            }
            for i in range(stages)
        ],
        "paths": [{"name": "all", "stages": [f"s{i}" for i in range(stages)]}],
    }
    return Chain.model_validate(spec)


def test_status_board_for_a_long_chain_shows_every_stage(chain: Chain) -> None:
    monitor = make(_long_chain(60, 90))
    board = ok(status_board(monitor))
    lines = "\n".join(sections(board)).splitlines()
    assert len(lines) == 60 and all(":hourglass_flowing_sand:" in line for line in lines)


def test_status_board_for_an_absurd_chain_stays_within_limits() -> None:
    monitor = make(_long_chain(1500, 300), headline="x" * 5000)
    monitor.prompt = FailurePrompt(prompt=1, stage="s0", job="job-0", build_id=1)
    monitor.unreachable = True
    board = ok(status_board(monitor))
    assert len(board.blocks) == MAX_BLOCKS
    assert re.search(r"… and \d+ more stages$", sections(board)[-3])


# ---------------------------------------------------------------------------------------------
# Thread replies


def _all_events(monitor: Monitor) -> list[Event]:
    entries, total = timeline(monitor)
    return [
        MonitorStarted(path="backend", path_description="d", stages=["a"]),
        StageStarted(stage="tests", label="lana-bank tests", builds=["test-bats #57"]),
        StageSucceeded(stage="tests", label="lana-bank tests", duration=290),
        failed(),
        StageSlow(stage="testflight", label="testflight", elapsed=1500, threshold=1200),
        NotPickedUp(waited=360),
        CarriedByLater(stage="tests", label="t", job="test-bats", carrier_sha="d" * 40),
        DecisionTaken(choice="continue", by=REQUESTER, prompt=1),
        RecoveredByRerun(stage="tests", label="t", job="test-bats", build_name="57.1"),
        ConcourseUnreachable(detail="Concourse <!here> & co is unreachable"),
        ConcourseBack(),
        Deployed(short_sha="abc1234", headline="h", timeline=entries, total=total),
        PathCompleted(short_sha="abc1234", headline="h", timeline=entries, total=1, note="n"),
        Stopped(by=REQUESTER, reason="stopped on request", timeline=entries),
    ]


def test_started_and_decision_events_get_no_reply(chain: Chain) -> None:
    monitor = make(chain)
    silent = {e.kind for e in _all_events(monitor) if thread_reply(e, monitor) is None}
    assert silent == {"started", "stage_started", "decision"}


def test_every_reply_and_dm_is_valid_block_kit(chain: Chain) -> None:
    monitor = make(chain, headline=NASTY)
    for event in _all_events(monitor):
        reply = thread_reply(event, monitor)
        if reply is not None:
            ok(reply)
        ok(final_dm(monitor, event, permalink="https://x.slack.com/archives/C1/p1?a=1&b=2"))


def test_broadcast_is_for_failures_and_final_results(chain: Chain) -> None:
    loud = {e.kind for e in _all_events(make(chain)) if is_broadcast(e)}
    assert loud == {"stage_failed", "deployed", "completed", "stopped"}


@pytest.mark.parametrize(
    "event",
    [
        StageSucceeded(stage="tests", label="lana-bank tests", duration=290),
        StageSlow(stage="testflight", label="testflight", elapsed=1500, threshold=1200),
        NotPickedUp(waited=360),
        CarriedByLater(stage="tests", label="t", job="test-bats", carrier_sha="d" * 40),
        RecoveredByRerun(stage="tests", label="t", job="test-bats", build_name="57.1"),
        ConcourseUnreachable(detail="Concourse <!here> & co is unreachable"),
        ConcourseBack(),
    ],
)
def test_one_line_replies_use_the_terminal_wording(chain: Chain, event: Event) -> None:
    monitor = make(chain)
    reply = ok(thread_reply(event, monitor))
    assert sections(reply) == [escape(terminal_text(event, monitor))]
    assert reply.text == escape(terminal_text(event, monitor))


def test_stage_succeeded_reply() -> None:
    monitor = make(load_chain())
    event = StageSucceeded(stage="tests", label="lana-bank tests", duration=290)
    assert ok(thread_reply(event, monitor)).text == "✔ lana-bank tests passed in 4m 50s"


def test_deployed_reply_has_the_exact_sentence_and_timeline(chain: Chain) -> None:
    monitor, event = deployed(make(chain))
    reply = ok(thread_reply(event, monitor))
    sentence = "Deployment complete! Commit abc1234 (Add fee) is now deployed to staging."
    report = "\n".join(
        [
            sentence,
            "Timeline:",
            "lana-bank tests: 4m 50s",
            "build-rc: 1m 00s",
            "open-promote-rc-pr: 10s",
            "testflight: 5m 00s",
            "staging: 3m 15s",
            "Total: 14m 15s",
        ]
    )
    assert reply.text == report  # notifications carry the whole report
    assert sections(reply) == [report]


def test_deployed_reply_escapes_the_headline(chain: Chain) -> None:
    monitor, event = deployed(make(chain, headline=NASTY))
    reply = ok(thread_reply(event, monitor))
    assert sections(reply)[0].startswith(
        "Deployment complete! Commit abc1234 (&lt;!channel&gt; fix &amp; tidy &gt; done) "
        "is now deployed to staging.\nTimeline:\n"
    )


def test_path_completed_reply_has_note_and_timeline(chain: Chain) -> None:
    monitor = make(chain, files=FRONTEND)
    entries, _ = timeline(monitor)
    event = PathCompleted(
        short_sha="abc1234", headline="UI", timeline=entries, total=120, note="Images <soon>"
    )
    body = sections(ok(thread_reply(event, monitor)))[0].splitlines()
    assert body[0] == "Done: commit abc1234 (UI) built its images."
    assert body[1] == "Images &lt;soon&gt;"
    assert body[2] == "Timeline:" and body[-1] == "Total: 2m 00s"


def test_stopped_reply_names_who_and_shows_the_timeline_so_far(chain: Chain) -> None:
    monitor = progress(make(chain))
    entries, _ = timeline(monitor)
    event = Stopped(by=REQUESTER, reason="stopped after a failure", timeline=entries)
    reply = ok(thread_reply(event, monitor))
    body = sections(reply)[0].splitlines()
    assert body[0] == f"Stopped following abc1234 (stopped after a failure, by <@{REQUESTER}>)."
    assert body[1:3] == ["Timeline:", "lana-bank tests: 4m 50s"]
    assert "build-rc: —" in body
    policy = Stopped(by="policy", reason="build-rc #12 errored", timeline=entries)
    assert "by policy)." in ok(thread_reply(policy, monitor)).text


# ---------------------------------------------------------------------------------------------
# Failures and decisions


def test_failure_with_a_prompt_has_buttons_and_how_to_answer(chain: Chain) -> None:
    monitor = make(chain)
    message = ok(failure_message(failed(prompt=2), monitor))
    assert sections(message)[0] == (
        ":x: *lana-bank tests*: <https://ci.example.com/builds/57|test-bats #57> failed"
    )
    assert sections(message)[1] == "```\nboom\n```"
    assert (
        "React :arrow_forward: or :white_check_mark: to continue, :octagonal_sign: or :x: "
        f"to stop — only <@{REQUESTER}> (or an admin) can decide"
    ) in sections(message)[2]
    [block] = actions(message)
    assert block["block_id"] == "decision-2"
    go, stop = block["elements"]
    value = f"{monitor.id}:2"
    assert (go["action_id"], go["style"], go["text"]["text"], go["value"]) == (
        "dm_continue",
        "primary",
        "Continue",
        value,
    )
    assert (stop["action_id"], stop["style"], stop["text"]["text"], stop["value"]) == (
        "dm_stop",
        "danger",
        "Stop",
        value,
    )
    assert set(stop["confirm"]) >= {"title", "text", "confirm", "deny"}
    assert "confirm" not in go
    assert message.text == "✘ lana-bank tests: test-bats #57 failed: continue or stop?"


def test_failure_without_a_prompt_has_no_buttons(chain: Chain) -> None:
    message = ok(failure_message(failed(prompt=None, status="aborted"), make(chain)))
    assert actions(message) == []
    assert not any("React" in s for s in sections(message))
    assert sections(message)[0].endswith("test-bats #57> was aborted")


def test_failure_without_a_build_url_or_log(chain: Chain) -> None:
    message = ok(failure_message(failed(log="  \n", build_url="", prompt=None), make(chain)))
    assert sections(message) == [":x: *lana-bank tests*: test-bats #57 failed"]


def test_failure_log_is_escaped_truncated_from_the_start_and_fenced(chain: Chain) -> None:
    noise = "".join(f"compiling crate {i} & <deps>\n" for i in range(2000))
    log = noise + "```\n<!channel> test credit_facility FAILED at line 88\n"
    message = ok(failure_message(failed(log=log, job="job <x>"), make(chain)))
    code = sections(message)[1]
    assert len(code) <= MAX_SECTION_TEXT
    assert code.count("```") == 2
    assert code.endswith("&lt;!channel&gt; test credit_facility FAILED at line 88\n```")
    assert "earlier characters omitted" in code.splitlines()[1]
    assert "job &lt;x&gt; #57" in sections(message)[0]


def test_decided_message_drops_the_buttons_and_names_the_decider(chain: Chain) -> None:
    monitor, event = make(chain), failed(prompt=1)
    go = ok(decided_message(event, choice="continue", by="U0DECIDER"))
    assert actions(go) == []
    assert not any("React" in s for s in sections(go))
    assert sections(go)[:2] == sections(failure_message(event, monitor))[:2]
    assert go.blocks[-1]["type"] == "context"
    assert texts(go)[-1].endswith("<@U0DECIDER> chose to continue watching")
    stop = ok(decided_message(event, choice="stop", by="U0DECIDER"))
    assert texts(stop)[-1].endswith("<@U0DECIDER> stopped the monitor")
    auto = ok(decided_message(event, choice="continue", by="policy"))
    assert "ontinued automatically" in texts(auto)[-1]
    with pytest.raises(ValueError):
        decided_message(event, choice="maybe", by="U0DECIDER")


def test_the_failure_prompt_has_a_rerun_button_beside_the_question(chain: Chain) -> None:
    monitor = make(chain)
    message = ok(failure_message(failed(prompt=2), monitor))
    question = next(b for b in message.blocks if b.get("accessory"))
    rerun = question["accessory"]
    assert (rerun["action_id"], rerun["text"]["text"], rerun["value"]) == (
        "dm_rerun",
        "Rerun",
        f"{monitor.id}:2",
    )
    assert "*Rerun* asks Concourse to run test-bats #57 again" in question["text"]["text"]
    no_prompt = ok(failure_message(failed(prompt=None), monitor))
    assert "dm_rerun" not in str(no_prompt.blocks)


def test_a_rerun_is_told_in_the_thread_with_who_and_the_new_build(chain: Chain) -> None:
    monitor = make(chain)
    rerun = RerunAsked(job="test-bats", build_name="57", rerun_name="57.1")
    asked = DecisionTaken(choice="continue", by="U0ALICE", prompt=1, rerun=rerun)
    reply = ok(thread_reply(asked, monitor))
    assert sections(reply) == [
        ":repeat: <@U0ALICE> asked Concourse to rerun test-bats #57: the rerun is test-bats"
        " #57.1; following it."
    ]
    policy = ok(thread_reply(asked.model_copy(update={"by": "policy"}), monitor))
    assert "once automatically (policy)" in sections(policy)[0]
    assert thread_reply(DecisionTaken(choice="continue", by="U0A", prompt=1), monitor) is None
    assert terminal_text(asked, monitor) == (
        "↻ Rerun of test-bats #57 asked by U0ALICE: following test-bats #57.1"
    )
    edited = ok(decided_message(failed(prompt=1), choice="continue", by="U0ALICE", rerun=rerun))
    assert actions(edited) == [] and "dm_rerun" not in str(edited.blocks)
    assert texts(edited)[-1] == ":repeat: <@U0ALICE> asked for a rerun: test-bats #57.1"


def test_rerun_refusals_are_plain_and_escaped() -> None:
    detail = "user bot may not rerun builds in Concourse team dev: that needs the <b>role"
    said = rerun_refused(failed(prompt=1), detail)
    assert said.startswith(":no_entry: Concourse refused to rerun test-bats #57: user bot")
    assert "&lt;b&gt;role" in said and "Continue and Stop still work" in said
    assert rerun_already_asked("U0BOB", None).startswith("<@U0BOB> already asked for a rerun")


# ---------------------------------------------------------------------------------------------
# The requester's DM


def test_final_dm_links_to_the_thread(chain: Chain) -> None:
    monitor, event = deployed(make(chain))
    link = "https://acme.slack.com/archives/C1/p1700000000000100?thread_ts=1700000000.000100"
    dm = ok(final_dm(monitor, event, permalink=link))
    assert dm.text == "Deployment complete! Commit abc1234 (Add fee) is now deployed to staging."
    assert sections(dm)[0].endswith("\nTotal: 14m 15s")
    assert texts(dm)[-1] == f"<{link}|View the thread>"
    assert "PR <https://github.com/GaloyMoney/lana-bank/pull/1234|#1234>" in texts(dm)


def test_final_dm_without_permalink_and_after_a_stop(chain: Chain) -> None:
    monitor = progress(make(chain, headline=NASTY))
    event = Stopped(by="U0OTHER", reason="stopped on request", timeline=timeline(monitor)[0])
    dm = ok(final_dm(monitor, event, permalink=None))
    assert "View the thread" not in json.dumps(dm.blocks)
    assert dm.text == "Stopped following abc1234 (stopped on request, by <@U0OTHER>)."


# ---------------------------------------------------------------------------------------------
# Answers to one person (acks, ephemeral messages)


def test_answers_escape_outside_text(chain: Chain) -> None:
    monitor = make(chain, headline=NASTY)
    for answer in [
        merge_refused(NASTY),
        lookup_failed(NASTY),
        nothing_matching(NASTY),
        not_found_reply(NASTY, Targeting("GaloyMoney/lana-bank")),
        followed_list([(monitor, "")]),
    ]:
        assert "<!channel>" not in answer and "&lt;!channel&gt;" in answer


def test_followed_list_links_each_thread(chain: Chain) -> None:
    monitor = make(chain)
    link = "https://x.slack.com/archives/C1/p1?a=1&b=2"
    listed = followed_list([(monitor, link), (make(chain, headline="Other", pr=False), "")])
    assert listed.splitlines() == [
        "Being followed:",
        "• <https://x.slack.com/archives/C1/p1?a=1&amp;b=2|`abc1234` Add fee> (PR #1234)"
        f" for <@{REQUESTER}>: lana-bank tests",
        f"• `abc1234` Other for <@{REQUESTER}>: lana-bank tests",
    ]
    assert followed_list([]) == "Nothing is being followed right now."


def test_already_followed_points_to_the_thread(chain: Chain) -> None:
    monitor = make(chain)
    link = "https://x.slack.com/archives/C1/p1"
    assert already_followed(monitor, link) == (
        f":eyes: `abc1234` is already being followed: see <{link}|its thread>."
    )
    assert already_followed(monitor, "").endswith("see its thread.")


# ---------------------------------------------------------------------------------------------
# Block Kit primitives


def test_blocks_are_validated_where_they_are_made() -> None:
    with pytest.raises(ValueError):
        blockkit.section("")  # slack_sdk would drop the empty text and Slack refuse the block
    with pytest.raises(ValueError):
        blockkit.button(
            action_id="a", label="Go", value="x" * (blockkit.MAX_BUTTON_VALUE + 1), style="primary"
        )
    with pytest.raises(ValueError):
        blockkit.message("fallback", [blockkit.section("x")] * (MAX_BLOCKS + 1))
    with pytest.raises(ValueError):
        blockkit.message("", [blockkit.section("x")])
    with pytest.raises(SlackObjectFormationError):
        loud = blockkit.button(action_id="a", label="Go", value="v", style="loud")
        blockkit.actions("b", loud)  # slack_sdk's own check, run as the block is made
    assert blockkit.context("", "a", "") == {
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": "a"}],
    }
    assert len(blockkit.context(*["x"] * 20)["elements"]) == blockkit.MAX_CONTEXT_ELEMENTS


# ---------------------------------------------------------------------------------------------
# Lengths as Slack counts them, and cuts between grapheme clusters

FAMILY = "👩\u200d👩\u200d👧\u200d👦"  # one cluster, 7 code points, 11 UTF-16 units
FLAG = "🇫🇷"  # two regional indicators
THUMB = "👍🏽"  # emoji and skin tone
ACUTE_E = "e\u0301"  # e and a combining acute accent
ZALGO = "Z" + "".join(chr(0x0300 + i) for i in range(0, 60, 3))
KEYCAP = "1\ufe0f\u20e3"
SCOTLAND = "🏴\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f"
HANGUL = "\u1100\u1161\u11a8"  # 각 as three jamo
# Clusters that stay clusters whatever sits next to them; their boundaries are known.
CLUSTERS = [
    FAMILY, FLAG, THUMB, ACUTE_E, ZALGO, KEYCAP, SCOTLAND, HANGUL, "中", "文", "한", "é",
    "\U0001f600", "\r\n", "\n", " ", "a", "Z", "&", "<", ">", "*", "`", "!", ":", "|",
]  # fmt: skip


def test_slack_len_counts_utf16_code_units() -> None:
    assert [blockkit.slack_len(t) for t in (FAMILY, FLAG, THUMB, ACUTE_E, "中文", "abc")] == [
        11,
        4,
        4,
        2,
        2,
        3,
    ]


@pytest.mark.parametrize(
    ("text", "inside"),
    [
        (FAMILY, range(1, 7)),
        (FLAG, [1]),
        (THUMB, [1]),
        (ACUTE_E, [1]),
        (ZALGO, range(1, len(ZALGO))),
        (KEYCAP, [1, 2]),
        (SCOTLAND, range(1, len(SCOTLAND))),
        (HANGUL, [1, 2]),
        ("\r\n", [1]),
    ],
)
def test_no_boundary_inside_a_cluster(text: str, inside: range | list[int]) -> None:
    assert not any(blockkit.is_boundary(text, i) for i in inside)
    assert blockkit.is_boundary(text + text, len(text))  # and one between two of them


def test_flags_pair_their_letters_from_the_start_of_the_run() -> None:
    flags = "🇫🇷🇩🇪🇯🇵"
    assert [i for i in range(len(flags) + 1) if blockkit.is_boundary(flags, i)] == [0, 2, 4, 6]


@pytest.mark.parametrize("cluster", [FAMILY, FLAG, THUMB, ACUTE_E, ZALGO, SCOTLAND, "中"])
def test_header_cuts_between_clusters(chain: Chain, cluster: str) -> None:
    board = ok(status_board(make(chain, headline=cluster * 3000)))
    header = board.blocks[0]["text"]["text"]
    assert blockkit.slack_len(header) <= blockkit.MAX_HEADER_TEXT
    kept = header.removeprefix("Deploying abc1234 ").removesuffix("…")
    assert kept and set(kept.split(cluster)) == {""}  # whole clusters only
    assert blockkit.slack_len(board.text) <= blockkit.MAX_FALLBACK_TEXT
    kept_text = board.text.removeprefix("Deploying PR #1234 (abc1234 ").removesuffix("…")
    assert set(kept_text.split(cluster)) == {""}


def test_cuts_never_split_an_entity_or_a_link() -> None:
    text = "x" * 8 + "&amp;" + "<https://ci.example.com/a|job #1>" + "y" * 50
    assert [blockkit.clip(text, n) for n in (9, 10, 13, 14, 15, 30, 46, 47)] == [
        "x" * 8 + "…",
        "x" * 8 + "…",
        "x" * 8 + "…",
        "x" * 8 + "&amp;…",
        "x" * 8 + "&amp;…",
        "x" * 8 + "&amp;…",
        "x" * 8 + "&amp;…",
        "x" * 8 + "&amp;<https://ci.example.com/a|job #1>…",
    ]


def test_cuts_close_the_bold_or_code_span_they_leave_open() -> None:
    assert blockkit.clip("*" + "a" * 100 + "* tail", 20) == "*" + "a" * 17 + "…*"
    assert blockkit.clip("`" + "a" * 100 + "` tail", 20) == "`" + "a" * 17 + "…`"
    assert blockkit.clip("*b* `" + "a" * 100 + "`", 20) == "*b* `" + "a" * 13 + "…`"
    assert blockkit.clip("`*" + "a" * 100 + "`", 20) == "`*" + "a" * 16 + "…`"  # `*` is code
    # Plain text (a header) has no spans: nothing is added.
    assert blockkit.clip("*" + "a" * 100, 20, mrkdwn=False) == "*" + "a" * 18 + "…"


def test_a_long_stage_label_is_cut_with_its_bold_closed() -> None:
    [block] = blockkit.line_sections([f"*{'x' * 4000}* — running"], 50, "… {n} more")
    text = block["text"]["text"]
    assert blockkit.slack_len(text) == MAX_SECTION_TEXT and text.endswith("x…*")


@pytest.mark.parametrize("cluster", [FAMILY, FLAG, THUMB, ACUTE_E, ZALGO, "中"])
def test_an_emoji_heavy_log_is_cut_between_clusters(chain: Chain, cluster: str) -> None:
    log = "".join(f"{cluster} step {i}\n" for i in range(2000)) + f"ERROR {cluster}\n"
    message = ok(failure_message(failed(log=log), make(chain)))
    code = sections(message)[1]
    assert blockkit.slack_len(code) <= MAX_SECTION_TEXT
    assert code.endswith(f"ERROR {cluster}\n```")
    first_kept = code.splitlines()[2]
    assert first_kept.startswith(f"{cluster} step ")  # a whole line, so a whole cluster


@pytest.mark.parametrize("cluster", [FAMILY, ZALGO, ACUTE_E])
def test_a_log_of_one_cluster_per_line_or_none_still_fits(cluster: str) -> None:
    for log in (cluster * 3000, (cluster * 50 + "\n") * 100):
        block = code_block(log, 1000)
        assert blockkit.slack_len(block) <= 1000
        body = block.removeprefix("```\n").removesuffix("\n```").split("\n", 1)[1]
        assert set(body.replace("\n", "").split(cluster)) == {""}


def test_list_and_answers_cut_outside_text_between_clusters(chain: Chain) -> None:
    listed = followed_list([(make(chain, headline=FAMILY * 30), "")])
    label = listed.splitlines()[1].removeprefix("• `abc1234` ").split(" (PR")[0]
    assert blockkit.slack_len(label) <= 80 and set(label.split(FAMILY)) == {""}
    answer = nothing_matching(FLAG * 30)
    echoed = answer.split("`")[1]
    assert blockkit.slack_len(echoed) <= 40 and set(echoed.split(FLAG)) == {""}


# ---------------------------------------------------------------------------------------------
# Properties: whatever the outside text, the message is valid, within limits and escaped

_outside = st.lists(st.sampled_from(CLUSTERS), max_size=400).map("".join)
_any_text = st.one_of(_outside, st.text(max_size=300))


def slack_limit_problems(message: SlackMessage) -> list[str]:
    """Every limit broken when lengths are counted in UTF-16 units, as Slack may count them."""
    units = blockkit.slack_len
    problems = []
    if units(message.text) > blockkit.MAX_FALLBACK_TEXT:
        problems.append("fallback text")
    for block in message.blocks or []:
        if block["type"] == "section" and units(block["text"]["text"]) > MAX_SECTION_TEXT:
            problems.append("section text")
        if block["type"] == "header" and units(block["text"]["text"]) > 150:
            problems.append("header text")
        for element in block.get("elements", []):
            if isinstance(element.get("text"), str) and units(element["text"]) > 3000:
                problems.append("context text")
            if element.get("type") == "button" and units(element["value"]) > 2000:
                problems.append("button value")
    return problems


def unescaped_ampersands(message: SlackMessage) -> list[str]:
    everything = [message.text, *texts(message)]
    return [t for t in everything if re.search(r"&(?!amp;|lt;|gt;)", t)]


def _check(message: SlackMessage | None) -> None:
    checked = ok(message)
    assert slack_limit_problems(checked) == []
    assert unescaped_ampersands(checked) == []


def _cut_positions(clusters: list[str]) -> set[int]:
    """Where a cut of the escaped text of `clusters` may fall: between escaped clusters."""
    positions, at = {0}, 0
    for cluster in clusters:
        at += len(escape(cluster))
        positions.add(at)
    return positions


@settings(max_examples=300, deadline=None)
@given(clusters=st.lists(st.sampled_from(CLUSTERS), max_size=120), limit=st.integers(1, 400))
def test_clip_cuts_only_between_clusters_and_within_the_limit(
    clusters: list[str], limit: int
) -> None:
    escaped = escape("".join(clusters))
    for mrkdwn in (True, False):
        cut = blockkit.clip(escaped, limit, mrkdwn=mrkdwn)
        assert blockkit.slack_len(cut) <= limit
        if blockkit.slack_len(escaped) <= limit:
            assert cut == escaped
            continue
        closers = cut[len(cut.rstrip("*`")) :] if mrkdwn else ""
        kept = cut.removesuffix(closers)
        assert kept.endswith("…")
        kept = kept.removesuffix("…")
        assert escaped.startswith(kept) and len(kept) in _cut_positions(clusters)


@settings(max_examples=200, deadline=None)
@given(bold=_outside, code=_outside, rest=_outside, limit=st.integers(1, 300))
def test_clip_leaves_the_spans_it_is_given_balanced(
    bold: str, code: str, rest: str, limit: int
) -> None:
    def plain(text: str) -> str:
        return escape(text.replace("*", "").replace("`", ""))

    made = f"*{plain(bold) or 'b'}* `{plain(code) or 'c'}` {plain(rest)}"
    cut = blockkit.clip(made, limit)
    assert cut.count("*") % 2 == 0 and cut.count("`") % 2 == 0


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(headline=_any_text, title=_any_text, log=_any_text, job=_any_text, detail=_any_text)
def test_every_message_is_valid_within_limits_and_escaped(
    chain: Chain, headline: str, title: str, log: str, job: str, detail: str
) -> None:
    monitor = progress(make(chain, headline=headline or "h"))
    monitor.pr_title = title
    event = failed(log=log * 20, job=job or "j", build_name=detail or "1")
    _check(status_board(monitor))
    _check(failure_message(event, monitor))
    _check(decided_message(event, choice="stop", by="U0DECIDER"))
    for reply_to in [*_all_events(monitor), ConcourseUnreachable(detail=detail or "d"), event]:
        reply = thread_reply(reply_to, monitor)
        if reply is not None:
            _check(reply)
        _check(final_dm(monitor, reply_to, permalink=f"https://x.slack.com/{detail}"))
    for answer in (followed_list([(monitor, "")]), nothing_matching(detail), merge_refused(job)):
        assert not re.search(r"&(?!amp;|lt;|gt;)|<(?![@h])", answer)


# ---------------------------------------------------------------------------------------------
# Usual times: the expected time on the board, usual durations next to the real ones


def running_with_usual_times(chain: Chain) -> Monitor:
    """tests passed in 4m 50s (usually 4m 30s), build-rc running (usually 9m), 25 min to go."""
    monitor = make(chain)
    for stage, usual in zip(monitor.stages, [270, 540, 60, 1080, 420], strict=True):
        stage.usual_duration, stage.usual_samples = usual, 20
    tests = monitor.stage("tests")
    tests.state, tests.started_at, tests.finished_at = "succeeded", T0 + 10, T0 + 300
    for i, track in enumerate(tests.jobs):
        track.build = build(track.job, "57", "succeeded", i)
    rc = monitor.stage("build-rc")
    rc.state, rc.started_at = "running", T0 + 320
    rc.jobs[0].build = build("build-rc", "12", "started", 10)
    monitor.updated_at = T0 + 380
    monitor.expected_at = T0 + 380 + 1500
    return monitor


def test_the_board_shows_the_expected_time_and_the_usual_ones(chain: Chain) -> None:
    monitor = running_with_usual_times(chain)
    board = ok(status_board(monitor))
    lines = "\n".join(sections(board)).splitlines()
    assert lines[0].startswith(
        ":white_check_mark: *lana-bank tests* — passed in 4m 50s (usual 4m 30s) · "
    )
    assert lines[1].startswith(":arrows_counterclockwise: *build-rc* — running · ")
    assert lines[1].endswith(" (usually 9m 00s)")
    assert lines[2] == ":hourglass_flowing_sand: *open-promote-rc-pr* — waiting"
    when = zoned_clock(T0 + 1880, T0 + 380)
    assert lines[-1] == f":stopwatch: Expected on staging ~{when} (from the usual stage times)"
    monitor.expected_at = None  # a usual time is missing, or a stage failed
    assert not any("Expected" in s for s in sections(ok(status_board(monitor))))


def test_a_finished_board_expects_nothing(chain: Chain) -> None:
    monitor, _ = deployed(make(chain))
    monitor.expected_at = T0 + 2000  # left over from the last tick
    assert not any("Expected" in s for s in sections(ok(status_board(monitor))))


def test_a_path_that_ends_before_staging_expects_it_done(chain: Chain) -> None:
    monitor = make(chain, files=FRONTEND)
    monitor.updated_at, monitor.expected_at = T0, T0 + 600
    assert any("Expected done ~" in s for s in sections(ok(status_board(monitor))))


def test_the_board_with_its_expected_time_stays_within_slack_limits(chain: Chain) -> None:
    monitor = running_with_usual_times(chain)
    many = monitor.stages[0]
    monitor.stages = [
        many.model_copy(update={"id": f"s{i}", "label": f"stage {i} " + "x" * 200})
        for i in range(120)
    ]
    board = ok(status_board(monitor))
    assert len(board.blocks) <= MAX_BLOCKS
    assert sections(board)[-1].startswith(":stopwatch: Expected on staging ~")


def test_a_stage_reply_tells_the_expected_time(chain: Chain) -> None:
    monitor = running_with_usual_times(chain)
    event = StageSucceeded(
        stage="tests", label="lana-bank tests", duration=290, at=T0 + 300, expected_at=T0 + 1880
    )
    reply = ok(thread_reply(event, monitor))
    when = zoned_clock(T0 + 1880, T0 + 300)
    assert reply.text == (
        f"✔ lana-bank tests passed in 4m 50s (usual 4m 30s); expected on staging ~{when}"
    )


def test_the_final_timeline_shows_each_duration_next_to_its_usual_one(chain: Chain) -> None:
    monitor = make(chain)
    for stage, usual in zip(monitor.stages, [270, 540, None, 1080, 420], strict=True):
        stage.usual_duration = usual
    monitor, event = deployed(monitor)
    body = sections(ok(thread_reply(event, monitor)))[0].splitlines()
    assert body[1:7] == [
        "Timeline:",
        "lana-bank tests: 4m 50s (usual 4m 30s)",
        "build-rc: 1m 00s (usual 9m 00s)",
        "open-promote-rc-pr: 10s",  # no usual time known: as before
        "testflight: 5m 00s (usual 18m 00s)",
        "staging: 3m 15s (usual 7m 00s)",
    ]
    assert body[-1] == "Total: 14m 15s"


def test_a_stopped_timeline_shows_no_usual_time_for_a_stage_that_did_not_finish(
    chain: Chain,
) -> None:
    monitor = progress(make(chain))
    for stage in monitor.stages:
        stage.usual_duration = 300
    entries, _ = timeline(monitor)
    body = sections(ok(thread_reply(Stopped(by="policy", reason="r", timeline=entries), monitor)))
    lines = body[0].splitlines()
    assert "lana-bank tests: 4m 50s (usual 5m 00s)" in lines
    assert "build-rc: —" in lines


def test_a_board_nobody_asked_for_says_it_is_followed_automatically(chain: Chain) -> None:
    nobody = ok(status_board(make(chain, requester=None, pr=False)))
    assert FOLLOWED_AUTOMATICALLY in json.dumps(nobody.blocks)
    assert "Requested by" not in json.dumps(nobody.blocks)
    asked = ok(status_board(make(chain)))
    assert FOLLOWED_AUTOMATICALLY not in json.dumps(asked.blocks)


def test_the_link_to_another_channels_thread_is_escaped(chain: Chain) -> None:
    monitor = make(chain, headline="<!channel> & friends", requester=None)
    pointer = ok(followed_elsewhere(monitor, "https://x.slack.com/archives/C1/p1|evil"))
    assert "<!channel>" not in pointer.text and "&lt;!channel&gt; &amp; friends" in pointer.text
    assert "<https://x.slack.com/archives/C1/p1%7Cevil|in its thread>" in pointer.text
    assert "in another channel" in ok(followed_elsewhere(monitor, "")).text
