"""Logging in to Concourse: the password grant of the public `fly` OAuth client, as an
`httpx.Auth` flow that every request goes through (plain requests and the event stream alike).

Send the opaque `access_token` of the grant, never its `id_token`. There is no refresh token:
log in again shortly before `expires_in` runs out, or once on a 401; never per request (each
grant adds a row to Concourse's database). See /work/shared/reference/concourse-api.md.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Callable, Generator

import httpx
from pydantic import TypeAdapter

from workers.concourse._models import ApiModel
from workers.concourse._responses import parse, raise_for_status
from workers.errors import ConcourseAuthError

TOKEN_PATH = "/sky/issuer/token"
# Every Concourse hard-codes this public OAuth client for fly; it is not a secret.
FLY_CLIENT_AUTH = "Basic " + base64.b64encode(b"fly:Zmx5").decode()
# `federated:id` carries the connector id that team roles match on; `openid` is mandatory.
LOGIN_SCOPE = "openid profile email federated:id groups"


class TokenGrant(ApiModel):
    """The token endpoint's answer (an `id_token` comes too, and is ignored)."""

    access_token: str
    token_type: str = "bearer"
    expires_in: float | None = None


TOKEN_GRANT = TypeAdapter(TokenGrant)

# One step of a flow: it yields requests for the client to send and gets their responses.
_Flow = Generator[httpx.Request, httpx.Response, None]


class ConcourseAuth(httpx.Auth):
    """Adds the bearer token to each request; with a username and password, logs in first
    (when there is no token yet or it is about to expire) and once more after a 401, then
    sends the request again. A given `token` is sent as is and never replaced; with neither,
    requests go out anonymous.

    Thread-safe, for a synchronous `httpx.Client`: one login at a time, and a request that
    got its 401 with a token another thread already replaced is retried without a new login.
    The response body is never read here (the event stream must stay a stream); only the
    token endpoint's answer is.
    """

    def __init__(
        self,
        base_url: str,
        *,
        username: str | None = None,
        password: str | None = None,
        token: str | None = None,
        clock: Callable[[], float],
        refresh_margin: float = 300.0,
        timeout: float = 10.0,
    ) -> None:
        if (username is None) != (password is None):
            raise ValueError("username and password must be given together")
        self.token_url = base_url.rstrip("/") + TOKEN_PATH
        self.username = username
        self._password = password
        self._token = token
        self._expires_at: float | None = None  # None: unknown, e.g. a token handed to us
        self._clock = clock
        self._refresh_margin = refresh_margin
        self._timeout = httpx.Timeout(timeout)
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"ConcourseAuth(user={self.username!r})"

    @property
    def can_login(self) -> bool:
        """Whether a rejected or expiring token can be replaced by logging in."""
        return self.username is not None

    def auth_flow(self, request: httpx.Request) -> _Flow:
        """Send `request` with a valid token; after a 401, log in again and send it once more.
        A 401 on the second try is the caller's to report."""
        yield from self._login_if(request, lambda token: token is None or self._expiring())
        sent = self._token
        response = yield self._authorized(request, sent)
        if response.status_code != 401 or not self.can_login:
            return
        # Unless another thread already replaced the token this request was refused with.
        yield from self._login_if(request, lambda token: token == sent)
        yield self._authorized(_copy(request), self._token)

    @staticmethod
    def _authorized(request: httpx.Request, token: str | None) -> httpx.Request:
        if token:
            request.headers["Authorization"] = f"Bearer {token}"
        return request

    def _expiring(self) -> bool:
        return self._expires_at is not None and self._clock() > self._expires_at

    def _login_if(self, request: httpx.Request, needed: Callable[[str | None], bool]) -> _Flow:
        """Log in when `needed(current token)` holds, checked under the lock so concurrent
        requests log in once. The lock is held while the token request is out: the others
        need its token anyway."""
        if not self.can_login:
            return
        with self._lock:
            if not needed(self._token):
                return
            obtained_at = self._clock()
            response = yield self._token_request(request)
            response.read()
            self._take(self._grant(response), obtained_at)

    def _token_request(self, request: httpx.Request) -> httpx.Request:
        form = {
            "grant_type": "password",
            "username": self.username or "",
            "password": self._password or "",
            "scope": LOGIN_SCOPE,
        }
        headers = {"Authorization": FLY_CLIENT_AUTH}
        if "user-agent" in request.headers:
            headers["User-Agent"] = request.headers["user-agent"]
        # The client's own timeouts, not the request's (an event stream may wait for minutes).
        timeout = {"timeout": self._timeout.as_dict()}
        return httpx.Request("POST", self.token_url, data=form, headers=headers, extensions=timeout)

    def _grant(self, response: httpx.Response) -> TokenGrant:
        user = self.username
        if response.status_code == 401:
            raise ConcourseAuthError(
                f"Concourse login failed for user {user}: invalid username or password",
                status=401,
            )
        if response.status_code == 400:
            raise ConcourseAuthError(
                f"Concourse refused the password login for user {user} "
                f"({oauth_error(response)}): is a local user or password connector configured?",
                status=400,
            )
        raise_for_status(
            response,
            ("token endpoint", TOKEN_PATH),
            unauthorized="(no valid credentials)",
            forbidden=f"Concourse refused the login of user {user}",
        )
        return parse(response, TOKEN_GRANT)

    def _take(self, grant: TokenGrant, obtained_at: float) -> None:
        self._token = grant.access_token
        if grant.expires_in is None:
            self._expires_at = None
        else:
            # Never renew more often than every half lifetime, even with a short-lived token.
            margin = min(self._refresh_margin, grant.expires_in / 2)
            self._expires_at = obtained_at + grant.expires_in - margin


def _copy(request: httpx.Request) -> httpx.Request:
    """The same request as a new object: the refused one stays as it was sent."""
    return httpx.Request(
        request.method,
        request.url,
        headers=request.headers,
        stream=request.stream,
        extensions=request.extensions,
    )


def oauth_error(response: httpx.Response) -> str:
    """`400 invalid_grant`: the status and the OAuth `error` code of a refused login."""
    try:
        payload = json.loads(response.content)
    except ValueError:
        return f"{response.status_code}"
    if isinstance(payload, dict) and isinstance(payload.get("error"), str):
        return f"{response.status_code} {payload['error']}"
    return f"{response.status_code}"
