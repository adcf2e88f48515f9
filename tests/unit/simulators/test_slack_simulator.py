"""The Slack simulator answers a real slack_sdk WebClient as Slack would, and the request
sender produces requests that Slack's signature check (and a real Bolt app) accepts."""

from __future__ import annotations

import json
import queue
import re
import threading
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
from slack_bolt import Ack, App, BoltRequest, Respond
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import (
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web import SlackResponse

from simulators.slack import SlackSimulator
from simulators.slack_client import SlackRequestSender

TS = re.compile(r"^\d{10}\.\d{6}$")
SECRET = "signing-secret"


@pytest.fixture
def sim() -> Iterator[SlackSimulator]:
    with SlackSimulator() as simulator:
        simulator.add_channel("C1", "deploys")
        yield simulator


@pytest.fixture
def client(sim: SlackSimulator) -> WebClient:
    return sim.web_client()


def error_of(exc: pytest.ExceptionInfo[SlackApiError]) -> Any:
    return exc.value.response["error"]


def section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


# --------------------------------------------------------------------- Web API


def test_auth_test_names_team_and_bot(client: WebClient, sim: SlackSimulator) -> None:
    response = client.auth_test()
    assert (response["team_id"], response["user_id"], response["bot_id"]) == (
        sim.team_id,
        sim.bot_user_id,
        sim.bot_id,
    )
    assert "chat:write" in response.headers["x-oauth-scopes"]


def test_bad_or_missing_token(sim: SlackSimulator) -> None:
    with pytest.raises(SlackApiError) as wrong:
        WebClient(token="xoxb-wrong", base_url=sim.api_url).chat_postMessage(
            channel="C1", text="hi"
        )
    assert wrong.value.response.status_code == 200
    assert error_of(wrong) == "invalid_auth"
    with pytest.raises(SlackApiError) as missing:
        WebClient(base_url=sim.api_url).auth_test()
    assert error_of(missing) == "not_authed"
    assert sim.messages("C1") == []


def test_unknown_method_names_it(client: WebClient) -> None:
    with pytest.raises(SlackApiError) as exc:
        client.api_call("chat.postMessagee", json={"channel": "C1", "text": "hi"})
    assert exc.value.response.status_code == 200
    assert exc.value.response.data == {
        "ok": False,
        "error": "unknown_method",
        "req_method": "chat.postMessagee",
    }


def test_post_thread_broadcast_and_update(client: WebClient, sim: SlackSimulator) -> None:
    blocks = [section("*PR 1234*"), {"type": "divider"}]
    parent = client.chat_postMessage(channel="C1", text="Monitoring PR 1234", blocks=blocks)
    assert parent["channel"] == "C1"
    assert TS.match(parent["ts"])
    assert parent["message"]["blocks"] == blocks

    reply = client.chat_postMessage(channel="C1", thread_ts=parent["ts"], text="build 1 green")
    final = client.chat_postMessage(
        channel="C1", thread_ts=parent["ts"], text="staging failed", reply_broadcast=True
    )
    assert parent["ts"] < reply["ts"] < final["ts"]

    updated = client.chat_update(channel="C1", ts=parent["ts"], text="PR 1234: failed")
    assert updated["ts"] == parent["ts"]

    top = sim.messages("C1")
    assert [m.ts for m in top] == [parent["ts"], final["ts"]]  # a broadcast shows in the channel
    assert top[0].text == "PR 1234: failed"
    assert top[0].blocks == blocks  # chat.update without blocks keeps them
    assert [v.text for v in top[0].history] == ["Monitoring PR 1234"]
    assert top[0].user == sim.bot_user_id
    assert top[1].reply_broadcast and top[1].thread_ts == parent["ts"]

    thread = sim.thread("C1", parent["ts"])
    assert [(m.text, m.reply_broadcast) for m in thread] == [
        ("build 1 green", False),
        ("staging failed", True),
    ]


def test_public_channel_needs_a_join(client: WebClient, sim: SlackSimulator) -> None:
    sim.add_channel("C2", "ops", bot_member=False)
    with pytest.raises(SlackApiError) as exc:
        client.chat_postMessage(channel="C2", text="hi")
    assert error_of(exc) == "not_in_channel"

    joined = client.conversations_join(channel="C2")
    assert joined["channel"]["is_member"] is True
    assert client.chat_postMessage(channel="C2", text="hi")["ok"]
    assert [m.text for m in sim.messages("C2")] == ["hi"]
    assert client.conversations_join(channel="C2")["warning"] == "already_in_channel"


def test_private_channel_is_invisible_until_invited(client: WebClient, sim: SlackSimulator) -> None:
    sim.add_channel("G1", "secret", is_private=True, bot_member=False)
    with pytest.raises(SlackApiError) as post:
        client.chat_postMessage(channel="G1", text="hi")
    assert error_of(post) == "channel_not_found"
    with pytest.raises(SlackApiError) as join:
        client.conversations_join(channel="G1")
    assert error_of(join) == "method_not_supported_for_channel_type"
    with pytest.raises(SlackApiError) as unknown:
        client.chat_postMessage(channel="C404", text="hi")
    assert error_of(unknown) == "channel_not_found"


def test_rate_limit_is_retried_and_stored_once(sim: SlackSimulator) -> None:
    sim.rate_limit_next("chat.postMessage", n=2, retry_after=0)
    client = sim.web_client(retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=2)])
    assert client.chat_postMessage(channel="C1", text="once")["ok"]
    assert [m.text for m in sim.messages("C1")] == ["once"]
    assert [method for method, _ in sim.calls] == ["chat.postMessage"] * 3


def test_rate_limit_without_retry_handler(client: WebClient, sim: SlackSimulator) -> None:
    sim.rate_limit_next("chat.postMessage", retry_after=7)
    with pytest.raises(SlackApiError) as exc:
        client.chat_postMessage(channel="C1", text="dropped")
    assert exc.value.response.status_code == 429
    assert exc.value.response.headers["retry-after"] == "7"
    assert error_of(exc) == "ratelimited"
    assert sim.messages("C1") == []
    assert client.chat_postMessage(channel="C1", text="later")["ok"]  # only the next n calls


def test_server_errors(sim: SlackSimulator) -> None:
    sim.fail_next("chat.update", n=1, status=503)
    sim.fail_next("chat.postMessage", n=1)
    with pytest.raises(SlackApiError) as exc:
        sim.web_client().chat_postMessage(channel="C1", text="x")
    assert exc.value.response.status_code == 500
    retrying = sim.web_client(retry_handlers=[ServerErrorRetryHandler(max_retry_count=1)])
    ts = retrying.chat_postMessage(channel="C1", text="x")["ts"]
    assert retrying.chat_update(channel="C1", ts=ts, text="y")["ok"]
    assert [m.text for m in sim.messages("C1")] == ["y"]


def test_scripted_slack_error(client: WebClient, sim: SlackSimulator) -> None:
    sim.error_next("chat.postMessage", "restricted_action_thread_locked")
    with pytest.raises(SlackApiError) as exc:
        client.chat_postMessage(channel="C1", text="x")
    assert exc.value.response.status_code == 200
    assert error_of(exc) == "restricted_action_thread_locked"


def test_update_or_delete_of_a_deleted_message(client: WebClient, sim: SlackSimulator) -> None:
    ts = client.chat_postMessage(channel="C1", text="parent")["ts"]
    sim.delete_message("C1", ts)
    calls: list[Callable[[], SlackResponse]] = [
        lambda: client.chat_update(channel="C1", ts=ts, text="new"),
        lambda: client.chat_update(channel="C1", ts="1.000001", text="new"),
        lambda: client.chat_delete(channel="C1", ts=ts),
    ]
    for call in calls:
        with pytest.raises(SlackApiError) as exc:
            call()
        assert error_of(exc) == "message_not_found"
    assert sim.messages("C1") == []


def test_chat_delete(client: WebClient, sim: SlackSimulator) -> None:
    ts = client.chat_postMessage(channel="C1", text="oops")["ts"]
    assert client.chat_delete(channel="C1", ts=ts)["ts"] == ts
    assert sim.messages("C1") == []
    deleted = sim.message("C1", ts)
    assert deleted is not None and deleted.deleted


def test_permalinks(client: WebClient, sim: SlackSimulator) -> None:
    parent = client.chat_postMessage(channel="C1", text="parent")["ts"]
    reply = client.chat_postMessage(channel="C1", text="reply", thread_ts=parent)["ts"]
    link = client.chat_getPermalink(channel="C1", message_ts=parent)["permalink"]
    assert link == f"https://acme.slack.com/archives/C1/p{parent.replace('.', '')}"
    reply_link = client.chat_getPermalink(channel="C1", message_ts=reply)["permalink"]
    assert reply_link == (
        f"https://acme.slack.com/archives/C1/p{reply.replace('.', '')}?thread_ts={parent}&cid=C1"
    )


def test_size_limits(client: WebClient, sim: SlackSimulator) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"text": "x" * 40_001}, "msg_too_long"),
        ({"text": "x", "blocks": [section("b")] * 51}, "invalid_blocks"),
        ({"text": "x", "blocks": [section("y" * 3_001)]}, "invalid_blocks"),
    ]
    for kwargs, error in cases:
        with pytest.raises(SlackApiError) as exc:
            client.chat_postMessage(channel="C1", **kwargs)
        assert error_of(exc) == error
    with pytest.raises(SlackApiError) as empty:
        client.api_call("chat.postMessage", json={"channel": "C1"})  # the SDK would warn
    assert error_of(empty) == "no_text"
    assert client.chat_postMessage(channel="C1", text="x" * 40_000, blocks=[section("y" * 3_000)])
    ts = sim.messages("C1")[0].ts
    with pytest.raises(SlackApiError) as exc:
        client.chat_update(channel="C1", ts=ts, text="x" * 4_001)
    assert error_of(exc) == "msg_too_long"
    assert len(sim.messages("C1")) == 1


def test_invalid_blocks_say_where(client: WebClient) -> None:
    with pytest.raises(SlackApiError) as exc:
        client.chat_postMessage(
            channel="C1", text="x", blocks=[section("ok"), section("y" * 3_001)]
        )
    assert any("/blocks/1/text" in e for e in exc.value.response["errors"])


def test_invalid_thread_ts(client: WebClient, sim: SlackSimulator) -> None:
    with pytest.raises(SlackApiError) as exc:
        client.chat_postMessage(channel="C1", text="x", thread_ts="0")
    assert error_of(exc) == "invalid_thread_ts"
    # Well-formed but unknown (e.g. a ts mangled through float): accepted, and lost.
    assert client.chat_postMessage(channel="C1", text="x", thread_ts="1602251441.0017")["ok"]
    assert sim.messages("C1") == []


def test_ephemerals_are_kept_apart(client: WebClient, sim: SlackSimulator) -> None:
    response = client.chat_postEphemeral(channel="C1", user="U1", text="only you")
    assert TS.match(response["message_ts"])
    assert sim.messages("C1") == []
    (ephemeral,) = sim.ephemerals
    assert (ephemeral.channel, ephemeral.user, ephemeral.text) == ("C1", "U1", "only you")


def test_reactions(client: WebClient, sim: SlackSimulator) -> None:
    ts = client.chat_postMessage(channel="C1", text="done")["ts"]
    client.reactions_add(channel="C1", timestamp=ts, name="white_check_mark")
    with pytest.raises(SlackApiError) as exc:
        client.reactions_add(channel="C1", timestamp=ts, name="white_check_mark")
    assert error_of(exc) == "already_reacted"
    message = sim.message("C1", ts)
    assert message is not None
    assert message.reactions == {"white_check_mark": [sim.bot_user_id]}


def test_direct_messages_and_users(client: WebClient, sim: SlackSimulator) -> None:
    opened = client.conversations_open(users="U1")
    dm = opened["channel"]["id"]
    assert dm.startswith("D") and dm == sim.dm_channel_id("U1")
    assert client.conversations_open(users="U1")["already_open"] is True
    assert client.chat_postMessage(channel=dm, text="your deploy is done")["channel"] == dm
    # Posting to a user id lands in the same DM, as in Slack.
    assert client.chat_postMessage(channel="U1", text="again")["channel"] == dm
    assert [m.text for m in sim.messages(dm)] == ["your deploy is done", "again"]
    with pytest.raises(SlackApiError) as exc:
        client.conversations_join(channel=dm)
    assert error_of(exc) == "method_not_supported_for_channel_type"

    sim.add_user("U2", "guest", is_restricted=True)
    assert client.users_info(user="U2")["user"]["is_restricted"] is True
    assert client.users_info(user="U1")["user"]["id"] == "U1"
    with pytest.raises(SlackApiError) as missing:
        client.users_info(user="nobody")
    assert error_of(missing) == "user_not_found"


def test_form_multipart_and_query_bodies(client: WebClient, sim: SlackSimulator) -> None:
    blocks = json.dumps([section("form")])
    client.api_call("chat.postMessage", params={"channel": "C1", "text": "form", "blocks": blocks})
    client.api_call("chat.postMessage", data={"channel": "C1", "text": "multipart"})
    response = httpx.get(
        f"{sim.api_url}chat.postMessage",
        params={"channel": "C1", "text": "query", "token": sim.token},
    )
    assert response.json()["ok"] is True
    messages = sim.messages("C1")
    assert [m.text for m in messages] == ["form", "multipart", "query"]
    assert messages[0].blocks == [section("form")]
    assert all("token" not in params for _, params in sim.calls)


def test_missing_scope(sim: SlackSimulator) -> None:
    limited = SlackSimulator(scopes=["chat:write"])
    with limited:
        limited.add_channel("C1", "deploys")
        client = limited.web_client()
        ts = client.chat_postMessage(channel="C1", text="x")["ts"]
        with pytest.raises(SlackApiError) as exc:
            client.reactions_add(channel="C1", timestamp=ts, name="x")
        assert error_of(exc) == "missing_scope"
        assert exc.value.response["needed"] == "reactions:write"


def test_concurrent_posts_get_unique_increasing_ts(sim: SlackSimulator) -> None:
    def post(n: int) -> None:
        sim.web_client().chat_postMessage(channel="C1", text=str(n))

    threads = [threading.Thread(target=post, args=(n,)) for n in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stamps = [m.ts for m in sim.messages("C1")]
    assert len(stamps) == len(set(stamps)) == 20
    assert stamps == sorted(stamps)


def test_wait_for(sim: SlackSimulator) -> None:
    timer = threading.Timer(0.05, lambda: sim.web_client().chat_postMessage(channel="C1", text="x"))
    timer.start()
    assert sim.wait_for(lambda s: len(s.messages("C1")) == 1, timeout=5)
    assert not sim.wait_for(lambda s: len(s.messages("C1")) == 2, timeout=0.05)
    timer.join()


# --------------------------------------------------------------------- signed requests


class Captured:
    """An httpx transport that keeps requests and answers 200."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(200)


def capturing_sender(**kwargs: Any) -> tuple[SlackRequestSender, Captured]:
    captured = Captured()
    http = httpx.Client(transport=httpx.MockTransport(captured))
    return SlackRequestSender("http://bot.test", SECRET, http=http, **kwargs), captured


def is_valid(request: httpx.Request, secret: str = SECRET) -> bool:
    return SignatureVerifier(secret).is_valid_request(request.content, dict(request.headers))


def test_signatures_verify_and_the_knobs_break_them() -> None:
    sender, captured = capturing_sender()
    sender.slash_command("1234", user_id="U1", channel_id="C1")
    sender.reaction_added("U1", "octagonal_sign", "C1", "1714561000.000100")
    sender.block_action("U1", "stop", "job-1", "C1", "1714561000.000100")
    sender.url_verification("challenge")
    assert all(is_valid(r) for r in captured.requests)
    assert {str(r.url) for r in captured.requests} == {"http://bot.test/slack/events"}

    sender.wrong_secret = True
    sender.slash_command("1234", user_id="U1", channel_id="C1")
    sender.wrong_secret = False
    sender.timestamp_offset = -301
    sender.slash_command("1234", user_id="U1", channel_id="C1")
    assert not is_valid(captured.requests[-2])
    assert not is_valid(captured.requests[-1])


def test_slash_command_form_is_slacks() -> None:
    sender, captured = capturing_sender()
    sender.slash_command("#1234 please", user_id="U1", channel_id="C1")
    (request,) = captured.requests
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    form = parse_qs(request.content.decode(), keep_blank_values=True)
    assert list(form) == [
        "token",
        "team_id",
        "team_domain",
        "channel_id",
        "channel_name",
        "user_id",
        "user_name",
        "command",
        "text",
        "api_app_id",
        "is_enterprise_install",
        "response_url",
        "trigger_id",
    ]
    assert form["text"] == ["#1234 please"]
    assert form["command"] == ["/deploy-monitor"]
    assert form["team_id"] == ["T0001"]


def test_event_envelope_and_retry_headers() -> None:
    sender, captured = capturing_sender()
    sender.reaction_added("U1", "octagonal_sign", "C1", "1714561000.000100")
    event_id = sender.last_event_id
    sender.reaction_added(
        "U1", "octagonal_sign", "C1", "1714561000.000100", event_id=event_id, retry_num=1
    )
    first, retry = (json.loads(r.content) for r in captured.requests)
    assert first["type"] == "event_callback"
    assert first["event_id"] == retry["event_id"] == event_id
    assert first["event"]["item"] == {"type": "message", "channel": "C1", "ts": "1714561000.000100"}
    assert "x-slack-retry-num" not in captured.requests[0].headers
    assert captured.requests[1].headers["x-slack-retry-num"] == "1"
    assert captured.requests[1].headers["x-slack-retry-reason"] == "http_timeout"


# --------------------------------------------------------------------- against a real Bolt app


@pytest.fixture
def bolt(sim: SlackSimulator) -> Iterator[tuple[SlackRequestSender, queue.Queue[Any]]]:
    """A tiny Bolt app, served in-process over WSGI, whose client talks to the simulator."""
    app = App(signing_secret=SECRET, client=sim.web_client())
    seen: queue.Queue[Any] = queue.Queue()

    @app.command("/deploy-monitor")
    def command(ack: Ack, command: dict[str, Any], client: WebClient) -> None:
        ack("Starting")
        client.chat_postMessage(channel=command["channel_id"], text=f"Monitoring {command['text']}")

    @app.event("reaction_added")
    def reaction(body: dict[str, Any], request: BoltRequest) -> None:
        seen.put((body["event_id"], request.headers.get("x-slack-retry-num", [None])[0]))

    @app.action("stop")
    def stop(ack: Ack, body: dict[str, Any], respond: Respond) -> None:
        ack()
        seen.put(body)
        respond(text="Stopped", replace_original=True)

    http = httpx.Client(transport=httpx.WSGITransport(app=SlackRequestHandler(app)))
    sender = SlackRequestSender(
        "http://bot.test", SECRET, http=http, response_url_base=f"{sim.url}/hooks"
    )
    with sender, http:
        yield sender, seen


def test_bolt_accepts_a_slash_command(
    bolt: tuple[SlackRequestSender, queue.Queue[Any]], sim: SlackSimulator
) -> None:
    sender, _ = bolt
    response = sender.slash_command("1234", user_id="U1", channel_id="C1")
    assert response.status_code == 200
    assert response.text == "Starting"
    assert sim.wait_for(lambda s: [m.text for m in s.messages("C1")] == ["Monitoring 1234"])


def test_bolt_refuses_bad_signatures(bolt: tuple[SlackRequestSender, queue.Queue[Any]]) -> None:
    sender, _ = bolt
    sender.wrong_secret = True
    assert sender.slash_command("1234", user_id="U1", channel_id="C1").status_code == 401
    sender.wrong_secret = False
    sender.timestamp_offset = -600
    assert sender.slash_command("1234", user_id="U1", channel_id="C1").status_code == 401


def test_bolt_sees_a_redelivered_event(bolt: tuple[SlackRequestSender, queue.Queue[Any]]) -> None:
    sender, seen = bolt
    assert sender.reaction_added("U1", "octagonal_sign", "C1", "1.000001").status_code == 200
    event_id = sender.last_event_id
    redelivered = sender.reaction_added(
        "U1", "octagonal_sign", "C1", "1.000001", event_id=event_id, retry_num=1
    )
    assert redelivered.status_code == 200
    # Bolt does not dedupe: both deliveries reach the listener, the second marked as a retry.
    deliveries = {seen.get(timeout=5), seen.get(timeout=5)}
    assert deliveries == {(event_id, None), (event_id, "1")}


def test_bolt_button_click_and_respond(
    bolt: tuple[SlackRequestSender, queue.Queue[Any]], sim: SlackSimulator
) -> None:
    sender, seen = bolt
    button = {
        "type": "button",
        "action_id": "stop",
        "text": {"type": "plain_text", "text": "Stop"},
        "value": "job-1",
    }
    blocks = [section("PR 1234"), {"type": "actions", "block_id": "controls", "elements": [button]}]
    ts = sim.web_client().chat_postMessage(channel="C1", text="PR 1234", blocks=blocks)["ts"]
    message = sim.message("C1", ts)
    assert message is not None

    response = sender.block_action("U1", "stop", "job-1", "C1", ts, message=message.to_api())
    assert response.status_code == 200
    body = seen.get(timeout=5)
    assert body["actions"][0]["block_id"] == "controls"
    assert body["actions"][0]["value"] == "job-1"
    assert body["container"]["message_ts"] == ts
    assert body["message"]["blocks"] == blocks
    assert sim.wait_for(lambda s: len(s.webhook_posts) == 1)
    assert sim.webhook_posts[0].payload["text"] == "Stopped"
    assert sim.webhook_posts[0].path.startswith("/hooks/actions/T0001/")


def test_bolt_answers_url_verification(bolt: tuple[SlackRequestSender, queue.Queue[Any]]) -> None:
    sender, _ = bolt
    response = sender.url_verification("3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P")
    assert response.status_code == 200
    assert response.json() == {"challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"}


# --------------------------------------------------------------------- metadata and history

META = {"event_type": "deploy_monitor_post", "event_payload": {"monitor": "m1", "key": "event:1"}}


def test_metadata_is_stored_and_shown_only_when_asked_for(
    client: WebClient, sim: SlackSimulator
) -> None:
    parent = client.chat_postMessage(channel="C1", text="parent")["ts"]
    client.chat_postMessage(channel="C1", text="reply", thread_ts=parent, metadata=META)
    plain = client.conversations_replies(channel="C1", ts=parent)["messages"]
    assert [m["text"] for m in plain] == ["parent", "reply"]
    assert all("metadata" not in m for m in plain)
    full = client.conversations_replies(channel="C1", ts=parent, include_all_metadata=True)
    assert full["messages"][1]["metadata"] == META
    assert full["messages"][0]["reply_count"] == 1
    assert full["messages"][1]["parent_user_id"] == sim.bot_user_id
    for bad, error in (
        ("not json", "invalid_metadata_format"),
        ({"x": 1}, "invalid_metadata_schema"),
    ):
        with pytest.raises(SlackApiError) as exc:
            client.chat_postMessage(channel="C1", text="x", metadata=bad)  # type: ignore[arg-type]
        assert error_of(exc) == error


def test_replies_lead_with_the_parent_filter_by_time_and_page(
    client: WebClient, sim: SlackSimulator
) -> None:
    parent = client.chat_postMessage(channel="C1", text="parent")["ts"]
    replies = [
        client.chat_postMessage(channel="C1", text=f"r{i}", thread_ts=parent)["ts"]
        for i in range(5)
    ]
    answer = client.conversations_replies(channel="C1", ts=replies[2], oldest=replies[1])
    assert [m["text"] for m in answer["messages"]] == ["parent", "r2", "r3", "r4"]
    inclusive = client.conversations_replies(
        channel="C1", ts=parent, oldest=replies[1], inclusive=True
    )
    assert [m["text"] for m in inclusive["messages"]][:2] == ["parent", "r1"]
    seen, cursor = [], None
    while True:
        page = client.conversations_replies(channel="C1", ts=parent, limit=2, cursor=cursor)
        seen += [m["text"] for m in page["messages"]]
        cursor = page.get("response_metadata", {}).get("next_cursor")
        if not page["has_more"]:
            break
    assert seen == ["parent", "r0", "r1", "r2", "r3", "r4"]
    for ts, error in (("1.000001", "thread_not_found"), ("nonsense", "thread_not_found")):
        with pytest.raises(SlackApiError) as exc:
            client.conversations_replies(channel="C1", ts=ts)
        assert error_of(exc) == error
    with pytest.raises(SlackApiError) as exc:
        client.conversations_replies(channel="C1", ts=parent, oldest="yesterday")
    assert error_of(exc) == "invalid_ts_oldest"


def test_a_deleted_parent_with_replies_is_a_tombstone(
    client: WebClient, sim: SlackSimulator
) -> None:
    lonely = client.chat_postMessage(channel="C1", text="lonely")["ts"]
    parent = client.chat_postMessage(channel="C1", text="parent")["ts"]
    client.chat_postMessage(channel="C1", text="reply", thread_ts=parent)
    sim.delete_message("C1", lonely)
    sim.delete_message("C1", parent)
    first = client.conversations_replies(channel="C1", ts=parent)["messages"][0]
    assert first["subtype"] == "tombstone" and first["text"] != "parent"
    with pytest.raises(SlackApiError) as exc:
        client.conversations_replies(channel="C1", ts=lonely)
    assert error_of(exc) == "thread_not_found"
    history = client.conversations_history(channel="C1")["messages"]
    assert [m.get("subtype") for m in history] == ["tombstone"]


def test_history_is_newest_first_with_broadcasts_and_needs_the_type_scope(
    sim: SlackSimulator,
) -> None:
    client = sim.web_client()
    parent = client.chat_postMessage(channel="C1", text="parent", metadata=META)["ts"]
    client.chat_postMessage(channel="C1", text="quiet", thread_ts=parent)
    client.chat_postMessage(channel="C1", text="loud", thread_ts=parent, reply_broadcast=True)
    history = client.conversations_history(channel="C1", include_all_metadata=True)
    assert [m["text"] for m in history["messages"]] == ["loud", "parent"]
    assert history["messages"][1]["metadata"] == META
    dm = client.conversations_open(users="U0ALICE")["channel"]["id"]
    client.chat_postMessage(channel=dm, text="hi")
    sim.add_channel("C2", "elsewhere", bot_member=False)
    with pytest.raises(SlackApiError) as exc:
        client.conversations_history(channel="C2")
    assert error_of(exc) == "not_in_channel"
    scoped = SlackSimulator(scopes=["chat:write", "channels:history", "im:write"])
    with scoped:
        scoped.add_channel("C1", "deploys")
        scoped_client = scoped.web_client()
        assert scoped_client.conversations_history(channel="C1")["ok"]
        dm = scoped_client.conversations_open(users="U0ALICE")["channel"]["id"]
        with pytest.raises(SlackApiError) as exc:
            scoped_client.conversations_history(channel=dm)
        assert error_of(exc) == "missing_scope" and exc.value.response["needed"] == "im:history"


def test_a_lost_answer_still_took_effect_and_on_call_sees_each_call(
    client: WebClient, sim: SlackSimulator
) -> None:
    seen: list[str] = []
    sim.on_call = lambda method, params, answer: seen.append(method)
    sim.lose_answer_next("chat.postMessage", n=1, status=502)
    with pytest.raises(SlackApiError) as exc:
        client.chat_postMessage(channel="C1", text="stored anyway")
    assert exc.value.response.status_code == 502
    assert [m.text for m in sim.messages("C1")] == ["stored anyway"]
    client.chat_postMessage(channel="C1", text="next")
    assert seen == ["chat.postMessage"]  # the lost answer was not a 200


# --------------------------------------------------------------------- the App Home


def home(*blocks: dict[str, Any]) -> dict[str, Any]:
    return {"type": "home", "blocks": list(blocks)}


def test_views_publish_stores_each_users_home(client: WebClient, sim: SlackSimulator) -> None:
    first = client.views_publish(user_id="U1", view=home(section("one")))
    assert first["view"]["type"] == "home" and first["view"]["id"].startswith("V")
    assert first["view"]["blocks"] == [section("one")]
    second = client.views_publish(user_id="U1", view=home(section("two")))
    # One Home per person: the same view id, a new hash for every publish.
    assert second["view"]["id"] == first["view"]["id"]
    assert second["view"]["hash"] != first["view"]["hash"]
    client.views_publish(user_id="U2", view=home(section("theirs")))
    current = sim.home_view("U1")
    assert current is not None and current["blocks"] == [section("two")]
    assert sim.home_view("U3") is None
    assert [(p.user_id, p.blocks) for p in sim.published_views] == [
        ("U1", [section("one")]),
        ("U1", [section("two")]),
        ("U2", [section("theirs")]),
    ]


def test_views_publish_takes_the_view_as_json_text_too(sim: SlackSimulator) -> None:
    answer = httpx.post(
        sim.api_url + "views.publish",
        data={"token": sim.token, "user_id": "U1", "view": json.dumps(home(section("x")))},
    ).json()
    assert answer["ok"] is True
    broken = httpx.post(
        sim.api_url + "views.publish",
        data={"token": sim.token, "user_id": "U1", "view": "{not json"},
    ).json()
    assert broken["ok"] is False and broken["error"] == "invalid_arguments"


def test_views_publish_requires_user_id_and_view(sim: SlackSimulator) -> None:
    answer = httpx.post(sim.api_url + "views.publish", data={"token": sim.token}).json()
    assert answer["error"] == "invalid_arguments"
    assert answer["response_metadata"]["messages"] == [
        "[ERROR] missing required field: user_id",
        "[ERROR] missing required field: view",
    ]
    assert sim.published_views == []


@pytest.mark.parametrize(
    ("view", "pointer"),
    [
        ({"type": "modal", "blocks": [section("x")]}, "/view/type"),
        ({"blocks": [section("x")]}, "/view/type"),
        ({"type": "home"}, "/view/blocks"),
        (home(*[section(str(i)) for i in range(101)]), "/view/blocks"),
        (home({"type": "section", "text": {"type": "mrkdwn", "text": ""}}), "/view/blocks/0"),
        ({**home(section("x")), "private_metadata": "m" * 3001}, "/view/private_metadata"),
    ],
)
def test_views_publish_refuses_a_bad_view_saying_where(
    client: WebClient, sim: SlackSimulator, view: dict[str, Any], pointer: str
) -> None:
    with pytest.raises(SlackApiError) as exc:
        client.views_publish(user_id="U1", view=view)
    assert error_of(exc) == "invalid_arguments"
    messages = exc.value.response["response_metadata"]["messages"]
    assert any(f"[json-pointer:{pointer}" in m for m in messages), messages
    assert sim.home_view("U1") is None


def test_a_home_holds_a_hundred_blocks(client: WebClient) -> None:
    answer = client.views_publish(user_id="U1", view=home(*[section(str(i)) for i in range(100)]))
    assert len(answer["view"]["blocks"]) == 100


def test_views_publish_errors_slack_answers(client: WebClient, sim: SlackSimulator) -> None:
    with pytest.raises(SlackApiError) as exc:
        client.views_publish(user_id="not-a-user", view=home(section("x")))
    assert error_of(exc) == "invalid_arguments"
    with pytest.raises(SlackApiError) as exc:
        client.views_publish(user_id="U1", view=home(section("x" * 2900)) | {"x": "y" * 250_000})
    assert error_of(exc) == "view_too_large"
    first = client.views_publish(user_id="U1", view=home(section("x")))["view"]
    with pytest.raises(SlackApiError) as exc:
        client.views_publish(user_id="U1", view=home(section("y")), hash="stale")
    assert error_of(exc) == "hash_conflict"
    client.views_publish(user_id="U1", view=home(section("y")), hash=first["hash"])
    sim.home_tab_enabled = False
    with pytest.raises(SlackApiError) as exc:
        client.views_publish(user_id="U1", view=home(section("z")))
    assert error_of(exc) == "not_enabled"


def test_a_response_url_post_is_recorded_with_when_it_arrived() -> None:
    with SlackSimulator(clock=lambda: 1_700_000_123.5) as simulator:
        response = httpx.post(f"{simulator.url}/hooks/commands/T0001/1/abc", json={"text": "hi"})
        assert response.status_code == 200 and response.text == "ok"
        (post,) = simulator.webhook_posts
    assert post.path == "/hooks/commands/T0001/1/abc"
    assert post.payload == {"text": "hi"} and post.received_at == 1_700_000_123.5


def test_users_lookup_by_email_answers_as_slack_does(
    client: WebClient, sim: SlackSimulator
) -> None:
    sim.add_user("U7", "dana", email="Dana@Example.com")
    found = client.users_lookupByEmail(email="dana@example.com")["user"]
    assert found["id"] == "U7"
    assert found["profile"]["email"] == "Dana@Example.com"
    with pytest.raises(SlackApiError) as nobody:
        client.users_lookupByEmail(email="ghost@example.com")
    assert error_of(nobody) == "users_not_found"
    with pytest.raises(SlackApiError) as empty:
        client.api_call("users.lookupByEmail", params={})
    assert error_of(empty) == "invalid_arguments"


def test_users_lookup_by_email_needs_its_scope() -> None:
    limited = SlackSimulator(scopes=["chat:write", "users:read"])
    with limited:
        limited.add_user("U7", "dana", email="dana@example.com")
        with pytest.raises(SlackApiError) as exc:
            limited.web_client().users_lookupByEmail(email="dana@example.com")
        assert error_of(exc) == "missing_scope"
        assert exc.value.response["needed"] == "users:read.email"
