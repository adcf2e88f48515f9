"""Slack's Socket Mode end, on loopback, for the Slack Web API simulator.

How Slack does it (api.slack.com/apis/socket-mode): the app calls `apps.connections.open` with
its app-level token (`xapp-…`; a bot token gets `not_allowed_token_type`) and receives a
single-use WebSocket URL. On connecting it is sent `{"type": "hello", …}`. Slack then pushes
envelopes (`{"envelope_id", "type": "slash_commands" | "events_api" | "interactive",
"payload", "accepts_response_payload", …}`); the app acknowledges each by sending back
`{"envelope_id": …}`, with a `payload` (e.g. the slash command's reply) where one is accepted.
Slack may ask a client to reconnect with `{"type": "disconnect", "reason": "refresh_requested"}`.

    slack = SlackSimulator(); slack.start()
    sockets = SocketModeSimulator(slack); sockets.start()  # apps.connections.open works now
    ... run the bot with SLACK_APP_TOKEN=sockets.app_token ...
    sockets.wait_connected()
    ack = sockets.slash_command("1234", user_id="U1", channel_id="C1")   # the bot's reply

Envelopes go to one open connection (Slack picks any of an app's connections); a reply not
acknowledged within `ack_timeout` raises `TimeoutError`, as Slack would give up (and, for
events, retry).
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request as WsRequest
from websockets.http11 import Response as WsResponse
from websockets.sync.server import Server, ServerConnection, serve

from simulators.slack import DEFAULT_APP_ID, SlackSimulator
from simulators.slack_client import SlackPayloads

DEFAULT_APP_TOKEN = "xapp-1-A0APP-1-simulated-app-token"
ACK_TIMEOUT_SECONDS = 3.0  # Slack waits 3 seconds for a slash command or event ack


class SocketModeSimulator:
    """Hands out WebSocket URLs through `apps.connections.open` and pushes envelopes."""

    def __init__(
        self,
        slack: SlackSimulator,
        *,
        app_token: str = DEFAULT_APP_TOKEN,
        payloads: SlackPayloads | None = None,
        ack_timeout: float = ACK_TIMEOUT_SECONDS,
    ) -> None:
        self.slack = slack
        self.app_token = app_token
        self.payloads = payloads or SlackPayloads(response_url_base=slack.url + "/hooks")
        self.ack_timeout = ack_timeout
        self.connections_opened = 0
        self._lock = threading.Condition()
        self._tickets: set[str] = set()
        self._open: list[ServerConnection] = []
        # Told to reconnect: Slack sends them nothing more and waits for them to go.
        self._retiring: set[ServerConnection] = set()
        self._acks: dict[str, dict[str, Any]] = {}
        self._server: Server | None = None

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> None:
        """Serve WebSockets on a free loopback port and let the Web API simulator open them."""
        self._server = serve(self._handle, "127.0.0.1", 0, process_request=self._check_ticket)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        self.slack.app_token = self.app_token
        self.slack.open_socket = self._new_url

    def stop(self) -> None:
        self.slack.open_socket = None
        if self._server is not None:
            self._server.shutdown()

    @property
    def url(self) -> str:
        assert self._server is not None, "not started"
        host, port = self._server.socket.getsockname()[:2]
        return f"ws://{host}:{port}"

    def wait_connected(self, count: int = 1, timeout: float = 20.0) -> None:
        """Wait until `count` clients are connected (and were sent their hello)."""
        with self._lock:
            if not self._lock.wait_for(lambda: len(self._usable()) >= count, timeout):
                raise TimeoutError(
                    f"{len(self._usable())} Socket Mode connection(s), wanted {count}"
                )

    def wait_refreshed(self, timeout: float = 20.0) -> None:
        """Wait until every client told to reconnect has closed its old connection (a client
        may read its new connection only from then on)."""
        with self._lock:
            if not self._lock.wait_for(lambda: not self._retiring, timeout):
                raise TimeoutError(f"{len(self._retiring)} old connection(s) still open")

    @property
    def connected(self) -> int:
        with self._lock:
            return len(self._usable())

    # ----------------------------------------------------------------- what Slack sends

    def slash_command(self, text: str, *, user_id: str, channel_id: str) -> dict[str, Any]:
        """Push a slash command; the payload of the app's ack (its reply), `{}` if none."""
        fields = self.payloads.command_fields(text, user_id=user_id, channel_id=channel_id)
        return self.send("slash_commands", fields, accepts_response_payload=True)

    def reaction_added(self, user_id: str, reaction: str, channel: str, ts: str) -> None:
        event = self.payloads.reaction_event(user_id, reaction, channel, ts)
        self.send("events_api", self.payloads.event_envelope(event))

    def block_action(
        self, user_id: str, action_id: str, value: str, channel: str, message_ts: str
    ) -> None:
        payload = self.payloads.block_actions(user_id, action_id, value, channel, message_ts)
        self.send("interactive", payload)

    def send(
        self,
        kind: str,
        payload: Mapping[str, Any],
        *,
        accepts_response_payload: bool = False,
        retry_attempt: int = 0,
        retry_reason: str = "",
    ) -> dict[str, Any]:
        """Push one envelope to a connected client and wait for its acknowledgement."""
        envelope_id = str(uuid.uuid4())
        envelope: dict[str, Any] = {
            "envelope_id": envelope_id,
            "type": kind,
            "payload": dict(payload),
            "accepts_response_payload": accepts_response_payload,
        }
        if kind == "events_api":
            envelope["retry_attempt"] = retry_attempt
            envelope["retry_reason"] = retry_reason
        with self._lock:
            if not self._lock.wait_for(lambda: bool(self._usable()), self.ack_timeout):
                raise TimeoutError("no Socket Mode connection to send to")
            connection = self._usable()[-1]  # the newest
        connection.send(json.dumps(envelope))
        with self._lock:
            if not self._lock.wait_for(lambda: envelope_id in self._acks, self.ack_timeout):
                raise TimeoutError(f"{kind} envelope not acknowledged in {self.ack_timeout}s")
            ack = self._acks.pop(envelope_id)
        return dict(ack.get("payload") or {})

    def request_refresh(self) -> None:
        """Ask every connected client to reconnect, as Slack does every few hours."""
        with self._lock:
            connections = self._usable()
            self._retiring.update(connections)
        for connection in connections:
            connection.send(json.dumps({"type": "disconnect", "reason": "refresh_requested"}))

    # ----------------------------------------------------------------- the server side

    def _new_url(self) -> str:
        # Called by the Web API simulator under its own lock: no calls back into it.
        ticket = uuid.uuid4().hex
        with self._lock:
            self._tickets.add(ticket)
            self.connections_opened += 1
        return f"{self.url}/link/?ticket={ticket}&app_id={DEFAULT_APP_ID}"

    def _check_ticket(self, connection: ServerConnection, request: WsRequest) -> WsResponse | None:
        """Refuse the handshake of a URL not handed out, or already used (403)."""
        ticket = (parse_qs(urlsplit(request.path).query).get("ticket") or [""])[0]
        with self._lock:
            valid = ticket in self._tickets
            self._tickets.discard(ticket)  # single use
        return None if valid else connection.respond(403, "invalid or used ticket\n")

    def _handle(self, connection: ServerConnection) -> None:
        connection.send(
            json.dumps(
                {
                    "type": "hello",
                    "num_connections": self.connected + 1,
                    "debug_info": {
                        "host": "applink-simulated",
                        "approximate_connection_time": 18060,
                    },
                    "connection_info": {"app_id": DEFAULT_APP_ID},
                }
            )
        )
        with self._lock:
            self._open.append(connection)
            self._lock.notify_all()
        try:
            for message in connection:
                ack = json.loads(message)
                if isinstance(ack, dict) and "envelope_id" in ack:
                    with self._lock:
                        self._acks[str(ack["envelope_id"])] = ack
                        self._lock.notify_all()
        except (ConnectionClosed, json.JSONDecodeError):
            pass
        finally:
            with self._lock:
                self._open.remove(connection)
                self._retiring.discard(connection)
                self._lock.notify_all()

    def _usable(self) -> list[ServerConnection]:
        """Open connections not told to go, oldest first (call with the lock held)."""
        return [c for c in self._open if c not in self._retiring]
