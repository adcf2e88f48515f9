"""The digest of what waits on main as Slack renders it: oldest first, authors, the compare
link, outside text escaped, within Block Kit's limits however many commits wait."""

from __future__ import annotations

import json

from bot.slack.blockkit import MAX_BLOCKS
from bot.slack.render import waiting_digest
from workers.digest import Digest, WaitingCommit

NOW = 1_800_000_000.0
HOUR = 3600


def digest(commits: list[WaitingCommit], ahead_by: int | None = None) -> Digest:
    return Digest(
        repository="GaloyMoney/lana-bank",
        staging_sha="5" * 40,
        main_sha="9" * 40,
        ahead_by=len(commits) if ahead_by is None else ahead_by,
        compare_url="https://github.com/GaloyMoney/lana-bank/compare/555...999",
        commits=commits,
        gathered_at=NOW,
    )


def waiting(
    sha: str, age: float, headline: str = "Fix the ledger", author: str = "ann"
) -> WaitingCommit:
    return WaitingCommit(sha=sha, headline=headline, author=author, committed_at=int(NOW - age))


def body(blocks: list[dict[str, object]] | None) -> str:
    return json.dumps(blocks)


def test_lists_the_commits_in_order_with_authors_ages_and_the_compare_link() -> None:
    message = waiting_digest(
        digest([waiting("a" * 40, 5 * HOUR), waiting("b" * 40, 2 * HOUR, author="bo")], 3),
        HOUR,
    )
    text = body(message.blocks)
    assert "2 commits on main not on staging for more than 1h" in message.text
    assert text.index("aaaaaaa") < text.index("bbbbbbb")
    assert "by ann, waiting 5h" in text and "by bo, waiting 2h" in text
    assert "main is 3 commits ahead" in text
    assert "<https://github.com/GaloyMoney/lana-bank/compare/555...999|compare>" in text
    assert "`5555555`" in text


def test_outside_text_is_escaped() -> None:
    message = waiting_digest(
        digest([waiting("a" * 40, 2 * HOUR, headline="<!channel> & co", author="<@U1>")]), HOUR
    )
    text = body(message.blocks)
    assert "<!channel>" not in text and "&lt;!channel&gt; &amp; co" in text
    assert "<@U1>" not in text and "&lt;@U1&gt;" in text


def test_many_commits_stay_within_the_limits() -> None:
    commits = [waiting(f"{i:040x}", 2 * HOUR + i, headline="x" * 300) for i in range(500)]
    message = waiting_digest(digest(commits), HOUR)
    assert message.blocks is not None and len(message.blocks) <= MAX_BLOCKS
    assert "more" in body(message.blocks)
    assert "500 commits" in message.text
