"""Who may read what: the Dex password grant, opaque access tokens, team roles, and the
404/401/403 order in which the real API wrappers refuse a request."""

from __future__ import annotations

import base64
import json
import os
import struct
from collections.abc import Callable, Mapping
from typing import Any, TypeVar
from urllib.parse import unquote

from simulators._http import Request, Response
from simulators.concourse._model import (
    CONCOURSE_VERSION,
    FLY_CLIENT,
    Build,
    Caller,
    Job,
    Pipeline,
    Resource,
    Token,
)
from simulators.concourse._state import ConcourseState

_T = TypeVar("_T")

# `atc/api/accessor/roles.go`, highest first; writes (reruns, pauses, pins) need an operator.
ROLES = ("owner", "member", "pipeline-operator", "viewer")
OPERATOR_ROLES = frozenset({"owner", "member", "pipeline-operator"})


class Auth(ConcourseState):
    """Accounts, tokens and access checks; the `/sky` and `/api/v1/user` and `/info` routes."""

    # -- scripting: accounts ----------------------------------------------------------------

    def expire_tokens(self) -> None:
        """Every token issued so far stops working (401), as after `--auth-duration`."""
        with self.lock:
            self._tokens.clear()

    def remove_user_from_team(self, username: str) -> None:
        """The user keeps a valid token but loses their role in the team (403)."""
        with self.lock:
            self._roles.pop(username, None)

    def add_user_to_team(self, username: str, role: str = "member") -> None:
        """Give the user a role in the team again; roles are re-read on every request."""
        self.set_role(username, role)

    def set_role(self, username: str, role: str) -> None:
        """The user's role in the team (`owner`, `member`, `pipeline-operator`, `viewer`)."""
        if role not in ROLES:
            raise ValueError(f"not a Concourse role: {role}")
        with self.lock:
            self._roles[username] = role

    def password(self, username: str) -> str:
        """A local user's password (to give deploy-monitor the account it logs in with)."""
        with self.lock:
            return self._users[username]

    def set_password(self, username: str, password: str) -> None:
        """Change a local user's password (tokens already issued keep working until they
        expire, as in Concourse)."""
        with self.lock:
            self._users[username] = password

    # -- access checks --------------------------------------------------------------------

    def _caller(self, request: Request) -> Caller:
        header = request.header("authorization")
        if not header:
            return Caller("anonymous")
        scheme, _, value = header.partition(" ")
        token = self._tokens.get(value.strip()) if scheme.lower() == "bearer" else None
        if token is None or self.clock() >= token.expires_at:
            return Caller("invalid")
        return Caller("user", token.username, token.federated)

    def _is_member(self, caller: Caller) -> bool:
        return caller.kind == "user" and caller.federated and caller.username in self._roles

    def _may_operate(self, caller: Caller) -> bool:
        """A role that may act on builds and pipelines: pipeline-operator or above."""
        return self._is_member(caller) and self._roles[caller.username] in OPERATOR_ROLES

    def _check_read(self, request: Request, public: bool) -> tuple[Response | None, bool]:
        """(error response or None, caller is a team member) for a team-scoped read.

        Anything visible publicly is served as the anonymous view even with a bad token.
        """
        caller = self._caller(request)
        if self._is_member(caller):
            return None, True
        if public:
            return None, False
        if caller.kind == "user":
            return Response.text("forbidden", 403), False
        return Response.text("not authorized", 401), False

    def _check_anonymous_ok(self, request: Request) -> Response | None:
        """Endpoints open to everyone still reject a token that is present but invalid."""
        if self._caller(request).kind == "invalid":
            return Response.text("not authorized", 401)
        return None

    # -- routes: auth ---------------------------------------------------------------------

    def _token(self, request: Request) -> Response:
        form = request.form()
        client = _basic_credentials(request.header("authorization")) or (
            form.get("client_id", ""),
            form.get("client_secret", ""),
        )
        if client != FLY_CLIENT:
            return _oauth_error("invalid_client", "Invalid client credentials.", 401)
        if form.get("grant_type") != "password":
            return _oauth_error("unsupported_grant_type", "", 400)
        scopes = form.get("scope", "").split()
        if "openid" not in scopes:
            return _oauth_error("invalid_request", 'Missing required scope(s) ["openid"].', 400)
        username, password = form.get("username", ""), form.get("password", "")
        with self.lock:
            if self._users.get(username) != password or not password:
                return _oauth_error("access_denied", "Invalid username or password", 401)
            expires_at = self.clock() + self.token_ttl
            # Concourse's opaque token: 20 random bytes + 8-byte little-endian expiry, base64.
            raw = os.urandom(20) + struct.pack("<q", int(expires_at))
            access_token = base64.b64encode(raw).decode().rstrip("=")
            self._tokens[access_token] = Token(username, expires_at, "federated:id" in scopes)
            self.logins += 1
        body = {
            "access_token": access_token,
            "token_type": "bearer",
            "expires_in": int(expires_at - self.clock()),
            "id_token": _fake_jwt(username, int(expires_at)),
        }
        response = Response.json(body)
        response.headers.append(("Cache-Control", "no-store"))
        return response

    def _info(self, request: Request) -> Response:
        with self.lock:
            if (error := self._check_anonymous_ok(request)) is not None:
                return error
        return Response.json(
            {
                "version": CONCOURSE_VERSION,
                "worker_version": "2.5",
                "external_url": self.url,
                "cluster_name": "simulator",
                "feature_flags": {"build_rerun": False, "resource_causality": False},
            }
        )

    def _user(self, request: Request) -> Response:
        with self.lock:
            caller = self._caller(request)
            if caller.kind != "user":
                return Response.text("not authorized", 401)
            teams = {self.team: [self._roles[caller.username]]} if self._is_member(caller) else {}
        name = caller.username
        return Response.json(
            {
                "sub": base64.b64encode(f"local:{name}".encode()).decode(),
                "name": name,
                "user_id": name,
                "user_name": name,
                "email": name,
                "is_admin": False,
                "is_system": False,
                "teams": teams,
                "connector": "local",
                "display_user_id": name,
            }
        )

    # -- lookups, refused in the order the real wrappers refuse ----------------------------

    def _find_job(self, request: Request) -> tuple[Pipeline, Job, bool] | Response:
        """(pipeline, job, caller is a member), or the 404/401/403 to answer."""
        return self._find_in_pipeline(request, "job", lambda pipeline: pipeline.jobs)

    def _find_in_pipeline(
        self, request: Request, param: str, table: Callable[[Pipeline], Mapping[str, _T]]
    ) -> tuple[Pipeline, _T, bool] | Response:
        """The pipeline, the thing its `table` holds under the URL's `param`, and whether the
        caller is a member; or the 404/401/403 to answer."""
        found = self._read_pipeline(request)
        if isinstance(found, Response):
            return found
        pipeline, member = found
        item = table(pipeline).get(unquote(request.params[param]))
        return (pipeline, item, member) if item is not None else Response(status=404)

    def _read_pipeline(self, request: Request) -> tuple[Pipeline, bool] | Response:
        """The pipeline of a pipeline-scoped read and whether the caller is a team member.

        As the real wrappers do: an unknown team or pipeline is a 404 before any auth check;
        the job, resource or build named after it is looked up only once access is granted.
        """
        if unquote(request.params["team"]) != self.team:
            return Response(status=404)
        pipeline = self._pipelines.get(unquote(request.params["pipeline"]))
        if pipeline is None:
            return Response(status=404)
        error, member = self._check_read(request, pipeline.public)
        return error if error is not None else (pipeline, member)

    def _find_build(self, request: Request) -> Build | Response:
        try:
            build_id = int(request.params["id"])
        except ValueError:
            return Response.text("malformed build id", 400)
        build = self._builds.get(build_id)
        return build if build is not None else Response(status=404)

    def _find_resource(self, request: Request) -> tuple[Pipeline, Resource, bool] | Response:
        """(pipeline, resource, caller is a member), or the 404/401/403 to answer."""
        return self._find_in_pipeline(request, "resource", lambda pipeline: pipeline.resources)


def _basic_credentials(header: str | None) -> tuple[str, str] | None:
    if not header or not header.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:].strip()).decode()
    except ValueError:
        return None
    user, _, password = decoded.partition(":")
    return user, password


def _oauth_error(error: str, description: str, status: int) -> Response:
    return Response.json({"error": error, "error_description": description}, status=status)


def _fake_jwt(username: str, expires_at: int) -> str:
    """A JWT-shaped id_token; the API must not accept it (it only knows access tokens)."""

    def part(payload: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")

    header = part({"alg": "RS256", "kid": "simulator"})
    claims = part({"sub": username, "exp": expires_at, "iss": "/sky/issuer"})
    signature = base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("=")
    return f"{header}.{claims}.{signature}"
