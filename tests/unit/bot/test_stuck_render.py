"""Why is it not moving, as people read it: the terminal line, the thread reply (escaped,
instants in the reader's time zone) and the board while a blocker lasts."""

from __future__ import annotations

from bot.slack.blockkit import SlackMessage
from bot.slack.render import status_board, thread_reply
from bot.wording import text
from tests.unit.bot.test_slack_render import block_kit_problems, sections, texts
from workers.chain import load_chain
from workers.events import Blocker, CommitIgnored, IgnoredFile, StageBlocked, StageUnblocked
from workers.monitor import Monitor, new_monitor

SHA = "abc1234" + "0" * 33
PAUSED_AT = 1_714_550_000  # 2024-05-01 07:53:20 UTC
CHAIN = load_chain()


def monitor(files: list[str] | None = None) -> Monitor:
    m, _ = new_monitor(
        chain=CHAIN,
        repository="GaloyMoney/lana-bank",
        sha=SHA,
        headline="Add fee",
        committed_at=PAUSED_AT,
        files=files or ["core/src/lib.rs"],
        now=PAUSED_AT,
    )
    return m


def valid(message: SlackMessage | None) -> SlackMessage:
    """A valid Slack message; `<!date^…>` is the one control sequence allowed besides ours."""
    assert message is not None
    assert [p for p in block_kit_problems(message) if "'<!date^" not in p] == []
    return message


PAUSED = Blocker(
    reason="paused",
    where="galoy-staging/galoy-staging-lana-bank",
    stage="staging",
    label="staging",
    by="<!channel> alice",
    since=PAUSED_AT,
)
PINNED = Blocker(
    reason="pinned",
    where="galoy-staging/lana-repo",
    stage="staging",
    label="staging",
    version="eeeeeee",
    comment="hold for the <demo> & more",
)


def test_the_terminal_says_who_paused_and_since_when_in_utc() -> None:
    line = text(StageBlocked(**PAUSED.model_dump()), monitor())
    assert line == (
        "⏸ staging waits: galoy-staging/galoy-staging-lana-bank is paused by <!channel> alice "
        "since 2024-05-01 07:53 UTC"
    )
    pipeline = PAUSED.model_copy(update={"where": "galoy-staging", "by": None, "since": None})
    assert text(StageBlocked(**pipeline.model_dump()), monitor()).endswith(
        "pipeline galoy-staging is paused"
    )
    pinned = text(StageBlocked(**PINNED.model_dump()), monitor())
    assert "galoy-staging/lana-repo is pinned to eeeeeee (hold for the <demo> & more)" in pinned
    cleared = StageUnblocked(reason="paused", where=PAUSED.where, stage="staging", label="staging")
    assert text(cleared, monitor()) == (
        "▶ staging: galoy-staging/galoy-staging-lana-bank was unpaused"
    )


def test_the_thread_reply_escapes_concourse_words_and_localises_the_instant() -> None:
    reply = valid(thread_reply(StageBlocked(**PAUSED.model_dump()), monitor()))
    body = " ".join(texts(reply))
    assert "&lt;!channel&gt; alice" in body and "<!channel>" not in body
    assert f"<!date^{PAUSED_AT}^{{date_short_pretty}} {{time}}|2024-05-01 07:53 UTC>" in body
    assert "<!channel>" not in reply.text
    pinned = valid(thread_reply(StageBlocked(**PINNED.model_dump()), monitor()))
    assert "hold for the &lt;demo&gt; &amp; more" in " ".join(texts(pinned))
    cleared = StageUnblocked(reason="pinned", where=PINNED.where, stage="staging", label="staging")
    assert "was unpinned" in " ".join(texts(valid(thread_reply(cleared, monitor()))))


def test_the_board_shows_a_blocker_while_it_lasts() -> None:
    m = monitor()
    m.blockers = [PINNED]
    board = valid(status_board(m))
    lines = sections(board)
    assert any("staging* — waiting, held back" in line for line in lines)
    assert any("waits: galoy-staging/lana-repo is pinned to eeeeeee" in line for line in lines)
    m.blockers = []
    assert not any("held back" in line for line in sections(valid(status_board(m))))


def test_an_ignored_commit_names_each_file_and_its_filter() -> None:
    m = monitor(["ci/tasks/deploy.sh"])
    event = CommitIgnored(
        files=[
            IgnoredFile(
                file="ci/tasks/deploy.sh",
                resource="lana-bank/repo",
                rule="ignore_paths",
                pattern="ci/*",
            ),
            IgnoredFile(file="<b>.md", resource="lana-bank/dagster-src", rule="paths"),
        ],
        more=3,
    )
    lines = text(event, m).splitlines()
    assert (
        lines[1].strip() == "ci/tasks/deploy.sh is ignored by lana-bank/repo (ignore_paths: ci/*)"
    )
    assert lines[2].strip() == "<b>.md is outside the paths lana-bank/dagster-src watches"
    assert "… and 3 more files" in lines[3]
    reply = valid(thread_reply(event, m))
    body = "\n".join(texts(reply))
    assert "ci/tasks/deploy.sh is ignored by lana-bank/repo" in body
    assert "&lt;b&gt;.md" in body
    assert m.ignored
    assert any("by itself" in line for line in sections(valid(status_board(m))))
