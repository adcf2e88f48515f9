"""simulators/slack/reading.py: the bot's messages as a person in the channel reads them."""

from __future__ import annotations

import httpx

from simulators.slack.reading import ack_text, blocks_text, button_value, plain, posted_lines

NAMES = {"U0ALICE": "alice"}


def test_plain_names_people_labels_links_and_decodes_entities() -> None:
    text = "<@U0ALICE> see <https://ci/b/1|build 1> &amp; ```log```"
    assert plain(text, NAMES) == "@alice see build 1 & log"
    assert plain("<@U0BOB>") == "@U0BOB"


def test_blocks_read_line_by_line_with_buttons_in_brackets() -> None:
    blocks = [
        {"type": "header", "text": {"type": "plain_text", "text": "Deploying"}},
        {"type": "section", "text": {"type": "mrkdwn", "text": "a\n<@U0ALICE>"}},
        {"type": "context", "elements": [{"text": "x"}, {"text": "y"}]},
        {
            "type": "actions",
            "elements": [{"text": {"text": "Stop"}, "action_id": "dm_stop", "value": "m:1"}],
        },
        {"type": "divider"},
    ]
    assert blocks_text(blocks, NAMES) == ["Deploying", "a", "@alice", "x · y", "[Stop]"]
    assert button_value(blocks, "dm_stop") == "m:1"
    assert button_value(blocks, "dm_rerun") is None


def test_acks_and_posts_read_as_text() -> None:
    json_ack = httpx.Response(200, json={"text": " <@U0ALICE> ok "})
    assert ack_text(json_ack, NAMES) == "@alice ok"
    assert ack_text(httpx.Response(200, text=" fine ")) == "fine"
    assert posted_lines({"text": "only &lt;text&gt;"}) == ["only <text>"]
    section = {"type": "section", "text": {"text": "*b*"}}
    assert posted_lines({"text": "t", "blocks": [section]}) == ["*b*"]
