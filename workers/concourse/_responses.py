"""Reading Concourse's answers: a status becomes one of the `ConcourseError` family of
`workers.errors`, a body becomes a model. Messages name the route and the status, never a
password or a token.
"""

from __future__ import annotations

from typing import TypeVar

import httpx
from pydantic import TypeAdapter, ValidationError

from workers.errors import (
    ConcourseAuthError,
    ConcourseError,
    ConcourseNotFound,
    ConcourseUnavailable,
)

_T = TypeVar("_T")


def raise_for_status(
    response: httpx.Response, what: tuple[str, str], *, unauthorized: str, forbidden: str
) -> None:
    """Raise the error a status of 400 or more means; `what` (kind, name) names a 404,
    `unauthorized` explains a 401 and `forbidden` says who lacks which role on a 403."""
    status = response.status_code
    if status < 400:
        return
    where = f"{response.request.method} {response.request.url.path}"
    if status == 401:
        raise ConcourseAuthError(
            f"Concourse answered 401 not authorized on {where} {unauthorized}", status=401
        )
    if status == 403:
        raise ConcourseAuthError(f"{forbidden} (403 on {where})", status=403)
    if status == 404:
        kind, name = what
        raise ConcourseNotFound(f"{kind} not found: {name}", status=404)
    if status >= 500:
        raise ConcourseUnavailable(f"Concourse unavailable: {status} on {where}", status=status)
    raise ConcourseError(
        f"Concourse answered {status} on {where}: {_short_body(response)}", status=status
    )


def parse(response: httpx.Response, adapter: TypeAdapter[_T]) -> _T:
    """The body as `adapter`'s type; a body of another shape is a ConcourseError naming the
    first field that did not fit."""
    try:
        return adapter.validate_json(response.content)
    except ValidationError as exc:
        first = exc.errors()[0]
        location = ".".join(str(part) for part in first["loc"]) or "body"
        raise ConcourseError(
            f"unexpected response to {response.request.method} {response.request.url.path}: "
            f"{location}: {first['msg']}"
        ) from None


def _short_body(response: httpx.Response) -> str:
    text = response.text.strip()
    return text[:200] if text else "(empty body)"
