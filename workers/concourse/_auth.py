"""Logging in to Concourse: the password grant of the public `fly` OAuth client.

Send the opaque `access_token` of the grant, never its `id_token`. There is no refresh token:
log in again shortly before `expires_in` runs out, or once on a 401; never per request (each
grant adds a row to Concourse's database). See /work/shared/reference/concourse-api.md.
"""

from __future__ import annotations

import base64
import json

import httpx
from pydantic import TypeAdapter

from workers.concourse._models import ApiModel

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


def oauth_error(response: httpx.Response) -> str:
    """`400 invalid_grant`: the status and the OAuth `error` code of a refused login."""
    try:
        payload = json.loads(response.content)
    except ValueError:
        return f"{response.status_code}"
    if isinstance(payload, dict) and isinstance(payload.get("error"), str):
        return f"{response.status_code} {payload['error']}"
    return f"{response.status_code}"
