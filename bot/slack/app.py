"""The Bolt app (slash command, buttons, reactions) and the HTTP server around it.

HTTP mode serves `POST /slack/events` (commands, events and interactivity, signature checked
by Bolt) and `GET /healthz` through waitress, a production WSGI server. Socket Mode is used
when `SLACK_APP_TOKEN` is set.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable, Iterable
from typing import Any

import redis
from rq import Retry
from slack_bolt import Ack, App, Respond
from slack_bolt.adapter.wsgi import SlackRequestHandler

from bot.slack import render
from bot.slack.commands import (
    START_RETRIES,
    dm_reply,
    link_reply,
    list_reply,
    named_repository,
    parse_command,
    stop_monitor,
    stop_reply,
    subscribe_reply,
    subscriptions_reply,
    unsubscribe_reply,
    use_reply,
)
from bot.slack.decisions import choice_for_reaction, decide, rerun
from bot.slack.face import SlackFace
from bot.slack.payloads import (
    AppHomeOpened,
    BlockActions,
    EventCallback,
    MessageContainer,
    MessageItem,
    ReactionAdded,
    SlackPayloadError,
    SlashCommand,
)
from bot.slack.render import (
    FOLLOW_ACTION,
    HOME_DM_ACTION,
    HOME_STOP_ACTION,
    REDIS_DOWN,
    RERUN_ACTION,
    UNREADABLE,
)
from workers import keys, metrics
from workers.errors import TargetError
from workers.events import DecisionChoice

log = logging.getLogger(__name__)

# Slack's payloads are small; anything bigger is not Slack.
MAX_BODY_BYTES = 256 * 1024
# What Slack sends as X-Slack-Request-Timestamp: epoch seconds.
_TIMESTAMP = re.compile(r"[0-9]{1,12}")

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


# Subscriptions, links and the DM choice: quick Redis writes, answered in the ack.
SETTINGS_REPLIES: dict[str, Callable[[SlackFace, str, str, str], str]] = {
    "subscribe": subscribe_reply,
    "unsubscribe": lambda face, argument, _user, channel: unsubscribe_reply(
        face, argument, channel
    ),
    "subscriptions": lambda face, argument, _user, channel: subscriptions_reply(
        face, argument, channel
    ),
    "link": lambda face, argument, user, _channel: link_reply(face, argument, user),
    "dm": lambda face, argument, user, _channel: dm_reply(face, argument, user),
    "use": lambda face, argument, _user, channel: use_reply(face, argument, channel),
}


def create_app(face: SlackFace) -> App:
    """The Bolt app with every listener registered."""
    settings = face.settings
    app = App(
        client=face.client,
        signing_secret=(
            settings.slack_signing_secret.get_secret_value()
            if settings.slack_signing_secret
            else None
        ),
        # Verify the token lazily: a bot must start even when Slack is briefly unreachable.
        token_verification_enabled=False,
    )

    @app.command("/deploy-monitor")
    def on_command(ack: Ack, body: dict[str, Any]) -> None:
        try:
            command = SlashCommand.parse(body)
        except SlackPayloadError as exc:
            log.warning("/deploy-monitor not handled: %s", exc)
            ack(UNREADABLE)
            return
        try:
            answer_command(ack, command)
        except redis.exceptions.RedisError:
            # Every answer reads or queues in Redis before it acks: the user hears why.
            log.exception("Redis unreachable: /deploy-monitor not handled")
            ack(REDIS_DOWN)

    def answer_command(ack: Ack, command: SlashCommand) -> None:
        user_id, channel_id = command.user_id, command.channel_id
        parsed = parse_command(command.text)
        if parsed.kind != "follow":
            metrics.COMMANDS.labels(parsed.kind).inc()
        if parsed.kind == "help":
            ack(render.help_text(face.targeting(channel_id)))
            return
        if parsed.kind == "list":
            ack(list_reply(face))
            return
        if parsed.kind == "stop":
            ack(stop_reply(face, parsed.argument, user_id, channel_id))
            return
        if parsed.kind in SETTINGS_REPLIES:
            ack(SETTINGS_REPLIES[parsed.kind](face, parsed.argument, user_id, channel_id))
            return
        trigger = command.trigger_id or f"{user_id}{channel_id}{command.text}"
        command_id = hashlib.sha256(trigger.encode()).hexdigest()[:20]
        if parsed.kind == "status":
            repository = named_repository(face, parsed.argument, channel_id)
            if repository is None:
                metrics.COMMANDS.labels("usage").inc()
                ack(render.repository_usage(parsed.argument, face.engine.repositories.names))
                return
            # The chain view reads Concourse and GitHub: a worker answers, never the ack.
            ask(
                "bot.slack.commands.status_from_slack",
                command_id,
                command.response_url,
                repository,
                channel_id,
            )
            ack(render.LOOKING_AT_THE_CHAIN)
            return
        targeting = face.targeting(channel_id)
        try:
            spec = targeting.parse(parsed.argument)
        except TargetError as exc:
            metrics.COMMANDS.labels("usage").inc()
            ack(render.usage_reply(str(exc), targeting))
            return
        if parsed.kind == "where":
            ask(
                "bot.slack.commands.where_from_slack",
                command_id,
                parsed.argument,
                user_id,
                channel_id,
                command.response_url,
            )
            ack(render.looking_where(spec, several=targeting.several))
            return
        metrics.COMMANDS.labels("follow").inc()
        # GitHub work (approval, merge) happens in a worker, never in the 3-second ack path;
        # queued before the ack, so "Looking up" is never said of work that was not queued.
        start(parsed.argument, user_id, channel_id, command.response_url, command_id)
        ack(render.looking_up(spec, several=targeting.several))

    def start(
        target: str, user_id: str, channel_id: str, response_url: str, command_id: str
    ) -> None:
        face.engine.queue.enqueue(
            "bot.slack.commands.start_from_slack",
            target,
            user_id,
            channel_id,
            response_url,
            command_id,
            job_id=keys.start_job(face.engine.settings.queue_name, command_id),
            job_timeout=int(settings.start_timeout),
            # The job can be run again (see start_from_slack): a killed worker loses nothing.
            retry=Retry(max=START_RETRIES),
            result_ttl=keys.START_RESULT_TTL_SECONDS,
        )

    def ask(function: str, command_id: str, *args: str) -> None:
        # A question only reads: running it again after a killed worker is harmless.
        face.engine.queue.enqueue(
            function,
            *args,
            job_id=keys.question_job(face.engine.settings.queue_name, command_id),
            job_timeout=int(settings.start_timeout),
            retry=Retry(max=START_RETRIES),
            result_ttl=keys.START_RESULT_TTL_SECONDS,
        )

    @app.action(FOLLOW_ACTION)
    def on_follow(ack: Ack, body: dict[str, Any], respond: Respond) -> None:
        ack()
        try:
            click = BlockActions.parse(body)
        except SlackPayloadError as exc:
            log.warning("Follow click not handled: %s", exc)
            return
        channel = (
            click.container.channel_id
            if isinstance(click.container, MessageContainer)
            else (click.channel.id if click.channel else "")
        )
        targeting = face.targeting(channel)
        try:
            spec = targeting.parse(click.action.value)
        except TargetError:
            spec = None
        if not channel or spec is None or spec.kind != "sha":
            log.warning("Follow click without a channel or a commit: not handled")
            if click.response_url:
                respond(text=UNREADABLE, response_type="ephemeral", replace_original=False)
            return
        metrics.COMMANDS.labels("follow").inc()
        # Each click is its own start job: the start path finds the monitor an earlier click
        # (anyone's) started, so two clicks follow the commit once.
        trigger = click.trigger_id or f"{click.user.id}{channel}{click.action.action_ts}"
        command_id = hashlib.sha256(trigger.encode()).hexdigest()[:20]
        start(click.action.value, click.user.id, channel, click.response_url or "", command_id)
        if click.response_url:
            respond(
                text=render.looking_up(spec, several=targeting.several),
                response_type="ephemeral",
                replace_original=False,
            )

    def on_button(choice: str) -> Callable[..., None]:
        def handler(ack: Ack, body: dict[str, Any], respond: Respond) -> None:
            ack()
            try:
                click = BlockActions.parse(body)
            except SlackPayloadError as exc:
                log.warning("button click not handled: %s", exc)
                if respond.response_url:
                    respond(text=UNREADABLE, response_type="ephemeral", replace_original=False)
                return
            monitor_id, _, prompt_no = click.action.value.rpartition(":")
            prompt = (
                face.threads.prompt(monitor_id, int(prompt_no)) if prompt_no.isdigit() else None
            )
            if prompt is None:
                respond(
                    text=render.PROMPT_GONE,
                    response_type="ephemeral",
                    replace_original=False,
                )
                return
            if choice == "rerun":
                refusal = rerun(face, prompt, click.user.id)
                metrics.DECISIONS.labels("rerun", "button", "refused" if refusal else "taken").inc()
            else:
                decided: DecisionChoice = "stop" if choice == "stop" else "continue"
                refusal = decide(face, prompt, decided, click.user.id)
                outcome = "refused" if refusal else "taken"
                metrics.DECISIONS.labels(decided, "button", outcome).inc()
            if refusal is not None:
                respond(text=refusal, response_type="ephemeral", replace_original=False)

        return handler

    app.action("dm_continue")(on_button("continue"))
    app.action("dm_stop")(on_button("stop"))
    app.action(RERUN_ACTION)(on_button("rerun"))

    @app.event("app_home_opened")
    def on_home_opened(body: dict[str, Any]) -> None:
        # Bolt acknowledged the delivery already: this runs after the ack.
        try:
            event = EventCallback.parse(body).event
        except SlackPayloadError as exc:
            log.warning("app_home_opened not handled: %s", exc)
            return
        if isinstance(event, AppHomeOpened) and event.tab == "home":
            face.home.publish(event.user)

    @app.action(HOME_STOP_ACTION)
    def on_home_stop(ack: Ack, body: dict[str, Any]) -> None:
        ack()
        click = _home_click(body)
        if click is None:
            return
        monitor = face.engine.store.load(click.action.value)
        if monitor is None or monitor.done:
            notice = render.NO_LONGER_FOLLOWED
        else:
            notice = stop_monitor(face, monitor, click.user.id)
        # A Home click has no response_url: the answer is a line at the top of the Home.
        face.home.publish(click.user.id, notice=notice)

    @app.action(HOME_DM_ACTION)
    def on_home_dm(ack: Ack, body: dict[str, Any]) -> None:
        ack()
        click = _home_click(body)
        if click is None:
            return
        face.home.people.set_dm(click.user.id, click.action.value == "on")
        face.home.publish(click.user.id)

    @app.event("reaction_added")
    def on_reaction(body: dict[str, Any]) -> None:
        try:
            delivery = EventCallback.parse(body)
        except SlackPayloadError as exc:
            log.warning("reaction not handled: %s", exc)
            return  # nobody to tell: Bolt already acknowledged the delivery
        if not face.threads.first_delivery(delivery.event_id):
            return  # a retry of a delivery we already handled
        event = delivery.event
        if not isinstance(event, ReactionAdded):
            return
        choice = choice_for_reaction(event.reaction)
        if not isinstance(event.item, MessageItem) or choice is None:
            return
        prompt = face.threads.prompt_at(event.item.channel, event.item.ts)
        if prompt is None:
            return  # a reaction on some other message
        refusal = decide(face, prompt, choice, event.user)
        metrics.DECISIONS.labels(choice, "reaction", "refused" if refusal else "taken").inc()
        if refusal is not None:
            # The face's client, not Bolt's per-request copy: its calls are counted.
            face.client.chat_postEphemeral(channel=prompt.channel, user=event.user, text=refusal)

    return app


def _home_click(body: dict[str, Any]) -> BlockActions | None:
    """A click in the App Home, or None (logged) when Slack sent something unreadable."""
    try:
        return BlockActions.parse(body)
    except SlackPayloadError as exc:
        log.warning("Home click not handled: %s", exc)
        return None


def wsgi_app(face: SlackFace, app: App) -> WsgiApp:
    """`/slack/events` for Bolt, `/healthz` for load balancers, `/metrics` for Prometheus;
    everything else 404."""
    bolt = SlackRequestHandler(app, path="/slack/events")
    prometheus = metrics.wsgi_app(face.engine.census)

    def application(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path, method = environ.get("PATH_INFO", ""), environ.get("REQUEST_METHOD", "")
        if path == "/healthz" and method == "GET":
            try:
                face.engine.redis.ping()
            except Exception:
                start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
                return [b"redis unreachable\n"]
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"ok\n"]
        if path == "/slack/events" and method == "POST":
            if not _TIMESTAMP.fullmatch(environ.get("HTTP_X_SLACK_REQUEST_TIMESTAMP", "0")):
                # slack_sdk's verifier raises on it: a 500 and an error logged per request.
                start_response("401 Unauthorized", [("Content-Type", "application/json")])
                return [b'{"error": "invalid request"}']
            return bolt(environ, start_response)
        if path == "/metrics" and method == "GET":
            return prometheus(environ, start_response)
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found\n"]

    return application


def serve(face: SlackFace, app: App) -> None:
    """Run until interrupted: Socket Mode with an app token, else HTTP on PORT."""
    settings = face.settings
    if settings.slack_app_token is not None:
        from slack_bolt.adapter.socket_mode import SocketModeHandler

        SocketModeHandler(app, settings.slack_app_token.get_secret_value()).start()  # type: ignore[no-untyped-call]
        return
    import waitress

    log.warning("serving /slack/events, /healthz and /metrics on port %d", settings.port)
    waitress.serve(
        wsgi_app(face, app),
        host="0.0.0.0",
        port=settings.port,
        threads=16,
        max_request_body_size=MAX_BODY_BYTES,
        ident="deploy-monitor",
    )
