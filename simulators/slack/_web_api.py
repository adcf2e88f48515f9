"""The Web API's front door: `/api/<method>` dispatch (token, scopes, scripted answers, the
record of calls), `response_url` posts, and the methods about the app itself."""

from __future__ import annotations

import copy
import json
from typing import Any

from simulators._http import Request, Response
from simulators.slack._model import BOT_NAME, METHOD_SCOPES, USER_ID, SlackError, User, WebhookPost
from simulators.slack._params import bearer, parse_params
from simulators.slack._state import SlackState


class WebApi(SlackState):
    """Dispatch, `apps.connections.open`, `auth.test`, `users.info` and
    `users.lookupByEmail`."""

    def _api(self, request: Request) -> Response:
        method = request.params["method"]
        try:
            params = parse_params(request)
        except SlackError as exc:
            return Response.json({"ok": False, "error": exc.error})
        # Slack also takes the token as a body parameter; never keep it in the record.
        body_token = params.pop("token", None)
        token = bearer(request.header("authorization")) or body_token
        with self._changed:
            self._calls.append((method, copy.deepcopy(params)))
            try:
                response = self._answer(method, token, params)
            finally:
                self._changed.notify_all()
        hook = self.on_call
        if hook is not None and response.status == 200:
            hook(method, params, json.loads(response.body or b"{}"))
        return response

    def _answer(self, method: str, token: str | None, params: dict[str, Any]) -> Response:
        scripted = self._scripted.get(method)
        if scripted:
            outcome = scripted.popleft()
            if outcome.after_effect:
                self._perform(method, token, params)  # done; the answer below replaces its own
            headers = []
            if outcome.retry_after is not None:
                headers.append(("Retry-After", str(outcome.retry_after)))
            return Response.json(
                {"ok": False, "error": outcome.error}, status=outcome.status, headers=headers
            )
        return self._perform(method, token, params)

    def _perform(self, method: str, token: str | None, params: dict[str, Any]) -> Response:
        if not token:
            return Response.json({"ok": False, "error": "not_authed"})
        if method == "apps.connections.open":
            return Response.json(self._apps_connections_open(token))
        if self.app_token is not None and token == self.app_token:
            # An app-level token only opens connections; Web API methods want the bot token.
            return Response.json({"ok": False, "error": "not_allowed_token_type"})
        if token != self.token:
            return Response.json({"ok": False, "error": "invalid_auth"})
        scope_header = [("x-oauth-scopes", ",".join(self.scopes))]
        handler = self._methods.get(method)
        if handler is None:
            # Slack names the method it did not recognise.
            body = {"ok": False, "error": "unknown_method", "req_method": method}
            return Response.json(body, headers=scope_header)
        needed = METHOD_SCOPES.get(method)
        if self._enforce_scopes and needed and needed not in self.scopes:
            body = {
                "ok": False,
                "error": "missing_scope",
                "needed": needed,
                "provided": ",".join(self.scopes),
            }
            return Response.json(body, headers=scope_header)
        try:
            body = {"ok": True, **handler(params)}
        except SlackError as exc:
            body = {"ok": False, "error": exc.error, **exc.extra}
        return Response.json(body, headers=scope_header)

    def _webhook(self, request: Request) -> Response:
        try:
            payload = request.json()
        except ValueError:
            payload = None
        if not isinstance(payload, dict):
            payload = {"text": request.body.decode(errors="replace")}
        with self._changed:
            self._webhook_posts.append(WebhookPost(request.path, payload, self._clock()))
            self._changed.notify_all()
        return Response.text("ok")

    def _apps_connections_open(self, token: str) -> dict[str, Any]:
        """Only an app-level token (xapp-) with connections:write opens a connection."""
        if token == self.token:
            return {"ok": False, "error": "not_allowed_token_type"}
        if self.app_token is None or token != self.app_token or self.open_socket is None:
            return {"ok": False, "error": "invalid_auth"}
        return {"ok": True, "url": self.open_socket()}

    def _auth_test(self, params: dict[str, Any]) -> dict[str, Any]:
        return {
            "url": f"https://{self.team_domain}.slack.com/",
            "team": self.team_name,
            "user": BOT_NAME,
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "is_enterprise_install": False,
        }

    def _users_lookup_by_email(self, params: dict[str, Any]) -> dict[str, Any]:
        """users.lookupByEmail: the member with that email (any case), or Slack's
        `users_not_found`; a missing email is `invalid_arguments`, as Slack answers."""
        email = str(params.get("email") or "").strip()
        if not email:
            raise SlackError("invalid_arguments")
        for user in self._users.values():
            if user.email is not None and user.email.lower() == email.lower():
                return {"user": user.to_api(self.team_id)}
        raise SlackError("users_not_found")

    def _users_info(self, params: dict[str, Any]) -> dict[str, Any]:
        user_id = str(params.get("user") or "")
        user = self._users.get(user_id)
        if user is None:
            if not USER_ID.match(user_id):
                raise SlackError("user_not_found")
            user = User(user_id, user_id.lower(), user_id.lower())
        return {"user": user.to_api(self.team_id)}
