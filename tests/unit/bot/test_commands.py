"""Slash-command text: subcommands and targets, and what the user is told back."""

from __future__ import annotations

import pytest

from bot.slack.commands import Command, parse_command
from bot.slack.decisions import choice_for_reaction
from bot.slack.render import describe, help_text, usage_reply
from workers.errors import TargetError
from workers.target import Targeting, parse_target

REPO = "GaloyMoney/lana-bank"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", Command("follow", "")),
        ("   ", Command("follow", "")),
        ("help", Command("help")),
        ("HELP", Command("help")),
        ("--help", Command("help")),
        ("list", Command("list")),
        ("list everything", Command("follow", "list everything")),
        ("stop 1234", Command("stop", "1234")),
        ("stop", Command("stop", "")),
        ("Stop   abc1234 ", Command("stop", "abc1234")),
        ("where", Command("where", "")),
        ("where #1234", Command("where", "#1234")),
        ("WHERE  a1b2c3d ", Command("where", "a1b2c3d")),
        ("status", Command("status")),
        ("status of everything", Command("status", "of everything")),
        ("1234", Command("follow", "1234")),
        ("#1234", Command("follow", "#1234")),
        (
            "<https://github.com/GaloyMoney/lana-bank/pull/12>",
            Command("follow", "<https://github.com/GaloyMoney/lana-bank/pull/12>"),
        ),
    ],
)
def test_parse_command(text: str, expected: Command) -> None:
    assert parse_command(text) == expected


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("1234", "PR #1234"),
        ("#77", "PR #77"),
        ("<https://github.com/GaloyMoney/lana-bank/pull/9|#9>", "PR #9"),
        ("ABCDEF1", "commit `abcdef1`"),
        ("", "the latest commit on main"),
    ],
)
def test_ack_describes_the_parsed_target(text: str, said: str) -> None:
    assert describe(parse_target(text, REPO)) == said


@pytest.mark.parametrize(
    "text", ["two words", "<!channel>", "x" * 500, "zzzzzzz", "😀", "https://gitlab.com/a/b/pull/1"]
)
def test_bad_targets_raise_a_user_facing_error(text: str) -> None:
    with pytest.raises(TargetError) as caught:
        parse_target(text, REPO)
    reply = usage_reply(str(caught.value), Targeting(REPO))
    assert "Give one of" in reply
    assert "<!channel>" not in reply
    assert len(reply) < 1000


def test_help_lists_every_form() -> None:
    text = help_text(Targeting(REPO))
    for form in (
        "`help`",
        "`list`",
        "`stop 1234`",
        "`where 1234`",
        "`status`",
        "Home tab",
        "#1234",
        "SHA",
        f"github.com/{REPO}/pull/",
    ):
        assert form in text
    # Slack reads `<…>` as a link or mention and `&` as an entity: none in the help text.
    assert not set("<>&") & set(text)


@pytest.mark.parametrize(
    ("reaction", "choice"),
    [
        ("arrow_forward", "continue"),
        ("white_check_mark", "continue"),
        ("octagonal_sign", "stop"),
        ("x", "stop"),
        ("white_check_mark::skin-tone-3", "continue"),
        ("tada", None),
        ("", None),
    ],
)
def test_reactions_map_to_decisions(reaction: str, choice: str | None) -> None:
    assert choice_for_reaction(reaction) == choice
