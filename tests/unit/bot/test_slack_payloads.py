"""The typed Slack edge: every payload model accepts what Slack sends (shapes from Slack's docs,
bolt-python's fixtures and the request sender) and refuses what is malformed with
`SlackPayloadError`, naming the fields at fault but never their values."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.web import SlackResponse

from bot.slack.payloads import (
    AppHomeOpened,
    AuthTest,
    BlockActions,
    ConversationInfo,
    ErrorAnswer,
    EventCallback,
    FileItem,
    ListedMessage,
    MessageContainer,
    MessageItem,
    MessagePage,
    OpenedConversation,
    Permalink,
    PostedMessage,
    PostMark,
    PublishedHome,
    ReactionAdded,
    ReactionRemoved,
    SlackPayloadError,
    SlashCommand,
    ViewContainer,
)
from simulators.slack import SlackSimulator
from simulators.slack_client import SlackPayloads

MARK_TYPE = "deploy_monitor_post"
SLACK = SlackPayloads()

# As Slack documents the envelope of a reaction_added delivery (/work/shared/reference/slack.md).
DOCUMENTED_REACTION = {
    "type": "event_callback",
    "team_id": "T1",
    "api_app_id": "A1",
    "event_id": "Ev1",
    "event_time": 1599616881,
    "event": {
        "type": "reaction_added",
        "user": "U_REACTOR",
        "reaction": "octagonal_sign",
        "item_user": "U_AUTHOR",
        "item": {"type": "message", "channel": "C1", "ts": "1599529504.000400"},
        "event_ts": "1599616881.000800",
    },
}


@pytest.fixture
def sim() -> Iterator[SlackSimulator]:
    with SlackSimulator() as simulator:
        simulator.add_channel("C1", "deploys")
        yield simulator


@pytest.fixture
def client(sim: SlackSimulator) -> WebClient:
    return sim.web_client()


def _step(part: str) -> str | int:
    return int(part) if part.isdigit() else part  # a list index


def without(data: dict[str, Any], *path: str) -> dict[str, Any]:
    """A copy of `data` without the field at `path` ("0" indexes a list)."""
    copied = copy.deepcopy(data)
    node: Any = copied
    for part in path[:-1]:
        node = node[_step(part)]
    del node[_step(path[-1])]
    return copied


def replaced(data: dict[str, Any], value: Any, *path: str) -> dict[str, Any]:
    """A copy of `data` with the field at `path` set to `value`."""
    copied = copy.deepcopy(data)
    node: Any = copied
    for part in path[:-1]:
        node = node[_step(part)]
    node[_step(path[-1])] = value
    return copied


# -- slash commands ------------------------------------------------------------------------


def test_a_slash_command_as_slack_sends_it() -> None:
    fields = SLACK.command_fields("1234", user_id="U0ALICE", channel_id="C0DEPLOYS")
    command = SlashCommand.parse(fields)
    assert (command.command, command.text) == ("/deploy-monitor", "1234")
    assert (command.user_id, command.channel_id) == ("U0ALICE", "C0DEPLOYS")
    assert command.response_url == fields["response_url"]
    assert command.trigger_id == fields["trigger_id"]
    assert command.team_id == SLACK.team_id


def test_a_slash_command_without_text_reads_as_empty() -> None:
    fields = SLACK.command_fields("", user_id="U0ALICE", channel_id="C0DEPLOYS")
    minimal = {k: fields[k] for k in ("command", "user_id", "channel_id")}
    command = SlashCommand.parse(minimal)
    assert (command.text, command.response_url, command.trigger_id) == ("", "", "")


@pytest.mark.parametrize("field", ["user_id", "channel_id", "command"])
def test_a_slash_command_missing_who_or_where_is_refused(field: str) -> None:
    fields = SLACK.command_fields("1234", user_id="U0ALICE", channel_id="C0DEPLOYS")
    with pytest.raises(SlackPayloadError, match=field) as caught:
        SlashCommand.parse(without(fields, field))
    assert caught.value.kind == "SlashCommand"
    assert isinstance(caught.value, ValueError)


def test_an_empty_user_id_is_refused() -> None:
    fields = SLACK.command_fields("1234", user_id="U0ALICE", channel_id="C0DEPLOYS")
    with pytest.raises(SlackPayloadError, match="user_id"):
        SlashCommand.parse({**fields, "user_id": ""})


@pytest.mark.parametrize("body", [None, "text=1234", ["user_id"], 42])
def test_a_slash_command_that_is_not_a_form_is_refused(body: object) -> None:
    with pytest.raises(SlackPayloadError, match="malformed SlashCommand"):
        SlashCommand.parse(body)


def test_the_error_names_fields_never_their_values() -> None:
    secret = "xoxb-not-to-be-logged"
    with pytest.raises(SlackPayloadError) as caught:
        SlashCommand.parse({"command": "/deploy-monitor", "user_id": ["x"], "text": secret})
    message = str(caught.value)
    assert "user_id" in message and "channel_id" in message
    assert secret not in message and "'x'" not in message


# -- block_actions -------------------------------------------------------------------------


def click() -> dict[str, Any]:
    return SLACK.block_actions("U0ALICE", "dm_stop", "m-1:2", "C0DEPLOYS", "1700000000.000100")


def test_a_button_click_as_slack_sends_it() -> None:
    payload = click()
    parsed = BlockActions.parse(payload)
    assert parsed.user.id == "U0ALICE"
    assert (parsed.action.action_id, parsed.action.value) == ("dm_stop", "m-1:2")
    assert parsed.action.type == "button"
    assert isinstance(parsed.container, MessageContainer)
    assert parsed.container.channel_id == "C0DEPLOYS"
    assert parsed.container.message_ts == "1700000000.000100"
    assert parsed.channel is not None and parsed.channel.id == "C0DEPLOYS"
    assert parsed.message is not None and parsed.message.ts == "1700000000.000100"
    assert parsed.response_url == payload["response_url"]


def test_a_click_on_a_threaded_message_knows_its_thread() -> None:
    payload = SLACK.block_actions(
        "U0ALICE", "dm_stop", "m-1:2", "C0DEPLOYS", "1700000000.000200", thread_ts="1.000100"
    )
    parsed = BlockActions.parse(payload)
    assert isinstance(parsed.container, MessageContainer)
    assert parsed.container.thread_ts == "1.000100"
    assert parsed.message is not None and parsed.message.thread_ts == "1.000100"


def test_a_click_in_a_view_has_a_view_container() -> None:
    payload = replaced(click(), {"type": "view", "view_id": "V1"}, "container")
    parsed = BlockActions.parse(without(without(payload, "channel"), "message"))
    assert isinstance(parsed.container, ViewContainer)
    assert parsed.channel is None and parsed.message is None


def test_a_button_without_a_value_reads_as_empty() -> None:
    assert BlockActions.parse(without(click(), "actions", "0", "value")).action.value == ""


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        (without(click(), "user"), "user"),
        (without(click(), "user", "id"), "user.id"),
        (without(click(), "actions"), "actions"),
        (replaced(click(), [], "actions"), "actions"),
        (without(click(), "actions", "0", "action_id"), "actions.0.action_id"),
        (replaced(click(), "overflow", "actions", "0", "type"), "actions.0.type"),
        (replaced(click(), "message_attachment", "container", "type"), "container"),
        (without(click(), "container", "message_ts"), "container.message.message_ts"),
        (replaced(click(), "view_submission", "type"), "type"),
    ],
)
def test_a_malformed_click_is_refused(payload: dict[str, Any], field: str) -> None:
    with pytest.raises(SlackPayloadError, match="malformed BlockActions") as caught:
        BlockActions.parse(payload)
    assert any(problem.startswith(field) for problem in caught.value.problems), caught.value


# -- the Events API ------------------------------------------------------------------------


def test_the_documented_reaction_added_delivery() -> None:
    delivery = EventCallback.parse(DOCUMENTED_REACTION)
    assert delivery.event_id == "Ev1" and delivery.event_time == 1599616881
    event = delivery.event
    assert isinstance(event, ReactionAdded)
    assert (event.user, event.reaction, event.item_user) == (
        "U_REACTOR",
        "octagonal_sign",
        "U_AUTHOR",
    )
    assert isinstance(event.item, MessageItem)
    assert (event.item.channel, event.item.ts) == ("C1", "1599529504.000400")


def test_a_reaction_envelope_from_the_request_sender() -> None:
    event = SLACK.reaction_event("U0BOB", "+1::skin-tone-4", "C0DEPLOYS", "1.000100")
    envelope = SLACK.event_envelope(event, event_id="Ev42")
    delivery = EventCallback.parse(envelope)
    assert delivery.event_id == "Ev42" and delivery.team_id == SLACK.team_id
    assert delivery.event.reaction == "+1::skin-tone-4"


def test_reaction_removed_has_the_same_shape() -> None:
    removed = replaced(DOCUMENTED_REACTION, "reaction_removed", "event", "type")
    event = EventCallback.parse(removed).event
    assert isinstance(event, ReactionRemoved)
    assert isinstance(event.item, MessageItem) and event.item.ts == "1599529504.000400"


def test_a_reaction_on_a_file_is_read_not_refused() -> None:
    on_file = replaced(DOCUMENTED_REACTION, {"type": "file", "file": "F1"}, "event", "item")
    item = EventCallback.parse(on_file).event.item
    assert isinstance(item, FileItem) and item.file == "F1"


def test_a_reaction_without_item_user_is_read() -> None:
    event = EventCallback.parse(without(DOCUMENTED_REACTION, "event", "item_user")).event
    assert event.item_user == ""


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        (without(DOCUMENTED_REACTION, "event_id"), "event_id"),
        (replaced(DOCUMENTED_REACTION, "", "event_id"), "event_id"),
        (without(DOCUMENTED_REACTION, "event"), "event"),
        (replaced(DOCUMENTED_REACTION, "app_mention", "event", "type"), "event"),
        (without(DOCUMENTED_REACTION, "event", "user"), "event.reaction_added.user"),
        (without(DOCUMENTED_REACTION, "event", "item", "ts"), "event.reaction_added.item"),
        (replaced(DOCUMENTED_REACTION, {"type": "channel"}, "event", "item"), "event"),
        (replaced(DOCUMENTED_REACTION, "url_verification", "type"), "type"),
    ],
)
def test_a_malformed_delivery_is_refused(payload: dict[str, Any], field: str) -> None:
    with pytest.raises(SlackPayloadError, match="malformed EventCallback") as caught:
        EventCallback.parse(payload)
    assert any(problem.startswith(field) for problem in caught.value.problems), caught.value


# As Slack documents an app_home_opened delivery's event (docs.slack.dev events/app_home_opened).
DOCUMENTED_HOME_OPENED = {
    **DOCUMENTED_REACTION,
    "event": {
        "type": "app_home_opened",
        "user": "U061F7AUR",
        "channel": "D0LAN2Q65",
        "event_ts": "1515449522000016",
        "tab": "home",
        "view": {
            "id": "VPASKP233",
            "team_id": "T21312902",
            "type": "home",
            "blocks": [],
            "private_metadata": "",
            "callback_id": "",
            "state": {},
            "hash": "1231232323.12321312",
            "clear_on_close": False,
            "notify_on_close": False,
            "root_view_id": "VPASKP233",
            "app_id": "A21SDS90",
            "external_id": "",
            "app_installed_team_id": "T21312902",
            "bot_id": "BSDKSAO2",
        },
    },
}


def test_the_documented_app_home_opened_delivery() -> None:
    event = EventCallback.parse(DOCUMENTED_HOME_OPENED).event
    assert isinstance(event, AppHomeOpened)
    assert (event.user, event.tab, event.channel) == ("U061F7AUR", "home", "D0LAN2Q65")
    assert event.view is not None and event.view.id == "VPASKP233"
    assert event.view.hash == "1231232323.12321312"


def test_app_home_opened_before_any_publish_has_no_view() -> None:
    envelope = SLACK.event_envelope(SLACK.app_home_opened_event("U0ALICE", tab="messages"))
    event = EventCallback.parse(envelope).event
    assert isinstance(event, AppHomeOpened)
    assert (event.user, event.tab, event.view) == ("U0ALICE", "messages", None)


@pytest.mark.parametrize("field", ["user", "tab"])
def test_app_home_opened_without_who_or_which_tab_is_refused(field: str) -> None:
    with pytest.raises(SlackPayloadError) as caught:
        EventCallback.parse(without(DOCUMENTED_HOME_OPENED, "event", field))
    assert any(p.startswith(f"event.app_home_opened.{field}") for p in caught.value.problems)


def test_a_click_in_the_app_home() -> None:
    view = {"id": "V1", "type": "home", "hash": "1.2", "blocks": []}
    parsed = BlockActions.parse(SLACK.home_block_actions("U0ALICE", "home_stop", "m-1", view))
    assert isinstance(parsed.container, ViewContainer) and parsed.container.view_id == "V1"
    assert parsed.view is not None and (parsed.view.id, parsed.view.hash) == ("V1", "1.2")
    assert (parsed.action.action_id, parsed.action.value) == ("home_stop", "m-1")
    assert parsed.channel is None and parsed.message is None and parsed.response_url is None


# -- Web API answers, as the simulator gives them to a real WebClient --------------------------


def test_chat_post_message(client: WebClient) -> None:
    posted = PostedMessage.parse(client.chat_postMessage(channel="C1", text="hello"))
    assert posted.channel == "C1" and posted.ts.count(".") == 1


def test_conversations_open_and_info(client: WebClient, sim: SlackSimulator) -> None:
    opened = OpenedConversation.parse(client.conversations_open(users="U0ALICE"))
    assert opened.channel.id == sim.dm_channel_id("U0ALICE")
    info = ConversationInfo.parse(client.conversations_info(channel="C1")).channel
    assert (info.id, info.is_member, info.is_private, info.is_im) == ("C1", True, False, False)
    sim.add_channel("C2", "secret", is_private=True, bot_member=True)
    assert ConversationInfo.parse(client.conversations_info(channel="C2")).channel.is_private


def test_a_page_of_history_and_the_marks_of_our_posts(client: WebClient) -> None:
    mark = PostMark(monitor="m-1", run="r1", key="event:3")
    client.chat_postMessage(channel="C1", text="ours", metadata=mark.metadata(MARK_TYPE))
    client.chat_postMessage(
        channel="C1",
        text="someone else's",
        metadata={"event_type": "other_app", "event_payload": {"anything": [1, 2]}},
    )
    client.chat_postMessage(channel="C1", text="plain")
    answer = client.conversations_history(channel="C1", include_all_metadata=True, limit=2)
    page = MessagePage.parse(answer)
    assert page.has_more and page.next_cursor
    rest = MessagePage.parse(
        client.conversations_history(
            channel="C1", include_all_metadata=True, limit=2, cursor=page.next_cursor
        )
    )
    assert not rest.has_more and rest.next_cursor == ""
    marks = [m.mark(MARK_TYPE) for m in [*page.messages, *rest.messages]]
    assert marks == [None, None, mark]  # newest first


def test_conversations_replies_pages_too(client: WebClient) -> None:
    parent = PostedMessage.parse(client.chat_postMessage(channel="C1", text="parent"))
    client.chat_postMessage(channel="C1", text="reply", thread_ts=parent.ts)
    page = MessagePage.parse(client.conversations_replies(channel="C1", ts=parent.ts))
    assert page.messages[0].ts == parent.ts and len(page.messages) == 2


@pytest.mark.parametrize(
    "metadata",
    [
        None,
        {"event_type": MARK_TYPE},
        {"event_type": MARK_TYPE, "event_payload": "m-1"},
        {"event_type": MARK_TYPE, "event_payload": {"monitor": "m-1", "run": "r1"}},
        {"event_type": MARK_TYPE, "event_payload": {"monitor": 1, "run": "r1", "key": "k"}},
        {"event_type": "other", "event_payload": {"monitor": "m-1", "run": "r1", "key": "k"}},
    ],
)
def test_metadata_that_is_not_our_mark_is_no_mark(metadata: dict[str, Any] | None) -> None:
    message = ListedMessage.parse({"ts": "1.000100", "metadata": metadata})
    assert message.mark(MARK_TYPE) is None


def test_a_mark_with_extra_fields_is_still_ours() -> None:
    payload = {"monitor": "m-1", "run": "r1", "key": "dm", "extra": True}
    message = ListedMessage.parse(
        {"ts": "1.000100", "metadata": {"event_type": MARK_TYPE, "event_payload": payload}}
    )
    assert message.mark(MARK_TYPE) == PostMark(monitor="m-1", run="r1", key="dm")


def test_a_page_without_messages_is_empty() -> None:
    page = MessagePage.parse({"ok": True})
    assert (page.messages, page.has_more, page.next_cursor) == ([], False, "")


def test_a_listed_message_without_ts_is_refused() -> None:
    with pytest.raises(SlackPayloadError, match=r"messages\.0\.ts"):
        MessagePage.parse({"messages": [{"text": "no ts"}]})


def test_chat_get_permalink(client: WebClient, sim: SlackSimulator) -> None:
    ts = PostedMessage.parse(client.chat_postMessage(channel="C1", text="x")).ts
    link = Permalink.parse(client.chat_getPermalink(channel="C1", message_ts=ts)).permalink
    assert link.startswith(f"https://{sim.team_domain}.slack.com/archives/C1/p")


def test_auth_test_with_its_granted_scopes(client: WebClient, sim: SlackSimulator) -> None:
    answer = AuthTest.parse(client.auth_test())
    assert (answer.user_id, answer.team_id, answer.bot_id) == (
        sim.bot_user_id,
        sim.team_id,
        sim.bot_id,
    )
    assert answer.scopes == frozenset(sim.scopes)


def test_auth_test_without_the_scopes_header_says_none() -> None:
    response = SlackResponse(
        client=None,
        http_verb="POST",
        api_url="https://slack.com/api/auth.test",
        req_args={},
        data={"ok": True, "user_id": "U1", "team_id": "T1"},
        headers={"content-type": "application/json"},
        status_code=200,
    )
    assert AuthTest.parse(response).scopes is None
    listed = SlackResponse(
        client=None,
        http_verb="POST",
        api_url="https://slack.com/api/auth.test",
        req_args={},
        data={"ok": True, "user_id": "U1", "team_id": "T1"},
        headers={"X-OAuth-Scopes": ["chat:write, commands"]},
        status_code=200,
    )
    assert AuthTest.parse(listed).scopes == {"chat:write", "commands"}


@pytest.mark.parametrize(
    ("model", "answer"),
    [
        (PostedMessage, {"ok": True, "channel": "C1"}),
        (OpenedConversation, {"ok": True, "channel": {}}),
        (ConversationInfo, {"ok": True}),
        (Permalink, {"ok": True, "permalink": ""}),
        (AuthTest, {"ok": True, "user_id": "U1"}),
    ],
)
def test_an_answer_missing_what_the_bot_reads_is_refused(model: Any, answer: Any) -> None:
    with pytest.raises(SlackPayloadError, match=f"malformed {model.__name__}"):
        model.parse(answer)


# -- error answers -------------------------------------------------------------------------


def test_the_error_code_of_a_refused_call(client: WebClient) -> None:
    with pytest.raises(SlackApiError) as caught:
        client.chat_postMessage(channel="C404", text="x")
    assert ErrorAnswer.of(caught.value.response).error == "channel_not_found"


@pytest.mark.parametrize("data", [b"<html>502</html>", {"ok": False}, {"error": ""}, {"error": 7}])
def test_an_error_answer_without_a_code_has_none(data: Any) -> None:
    response = SlackResponse(
        client=None,
        http_verb="POST",
        api_url="https://slack.com/api/chat.postMessage",
        req_args={},
        data=data,
        headers={},
        status_code=502,
    )
    assert ErrorAnswer.of(response).error is None


def test_views_publish_answer(client: WebClient) -> None:
    answer = client.views_publish(
        user_id="U0ALICE", view={"type": "home", "blocks": [{"type": "divider"}]}
    )
    published = PublishedHome.parse(answer)
    assert published.view.id.startswith("V") and published.view.type == "home"
    assert published.view.hash
