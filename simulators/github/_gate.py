"""What every request passes first, whatever repository it names: the User-Agent rule, the
token, the API version, scripted failures and rate limits; and the `x-ratelimit-*` headers on
every answer. All of it belongs to the token, so it is shared across repositories, as on GitHub."""

from __future__ import annotations

from collections.abc import Callable

from simulators._http import Request, Response
from simulators.github._model import (
    DOCS,
    RATE_LIMIT,
    SECONDARY_MESSAGE,
    SUPPORTED_API_VERSIONS,
    UNAUTHENTICATED_LIMIT,
)
from simulators.github._state import GitHubState


class Gate(GitHubState):
    """Auth, rate limits and injected failures around the REST and GraphQL handlers."""

    def rate_limit_next(
        self, n: int, *, kind: str = "primary", reset_in: int = 60, status: int = 403
    ) -> None:
        """Answer the next `n` requests with a primary or secondary rate limit. A secondary
        limit answers `status`: GitHub documents 403 or 429, with `retry-after`."""
        if kind not in ("primary", "secondary"):
            raise ValueError(f"kind must be primary or secondary, not {kind!r}")
        if status not in (403, 429):
            raise ValueError(f"a rate limit answers 403 or 429, not {status}")
        with self.lock:
            self._limited.extend([(kind, reset_in, status)] * n)

    def fail_next(self, n: int, *, status: int = 502) -> None:
        """Answer the next `n` requests with a server error."""
        with self.lock:
            self._failures.extend([status] * n)

    def _guard(
        self, resource: str, handler: Callable[[Request], Response]
    ) -> Callable[[Request], Response]:
        """Auth, rate limits, injected failures and rate-limit headers around a handler."""

        def guarded(request: Request) -> Response:
            with self.lock:
                if self._is_write(request):
                    self.write_requests += 1  # every attempt counts, refused or not
                response = self._gate(request, resource)
                if response is None:
                    # An unknown repository's 404 counts too: GitHub spent the request.
                    response = handler(request)
                    self._used[resource] += 1
                if not any(name.lower() == "x-ratelimit-limit" for name, _ in response.headers):
                    response.headers.extend(self._rate_headers(request, resource))
                return response

        return guarded

    def _gate(self, request: Request, resource: str) -> Response | None:
        if not request.header("user-agent"):
            return Response.json(
                {
                    "message": "Request forbidden by administrative rules. "
                    "Please make sure your request has a User-Agent header."
                },
                status=403,
            )
        if self.token is not None and not self._authorized(request):
            return Response.json(
                {"message": "Bad credentials", "documentation_url": DOCS, "status": "401"},
                status=401,
            )
        version = request.header("x-github-api-version")
        if version is not None and version not in SUPPORTED_API_VERSIONS:
            return Response.json(
                {"message": f"Unsupported 'X-GitHub-Api-Version' header: {version[:20]}"},
                status=410,
            )
        if self._failures:
            return Response.json({"message": "Server Error"}, status=self._failures.pop(0))
        if self._limited:
            kind, reset_in, status = self._limited.pop(0)
            return self._rate_limited(resource, kind, reset_in, status)
        return None

    def _authorized(self, request: Request) -> bool:
        value = request.header("authorization") or ""
        scheme, _, credential = value.partition(" ")
        return scheme.lower() in ("bearer", "token") and credential.strip() == self.token

    def _is_write(self, request: Request) -> bool:
        if request.method == "GET":
            return False
        if request.path != "/graphql":
            return True
        # GraphQL: only mutations write.
        try:
            query = str((request.json() or {}).get("query") or "")
        except (ValueError, AttributeError):
            return False
        return query.lstrip().startswith("mutation")

    def _rate_headers(self, request: Request, resource: str) -> list[tuple[str, str]]:
        authenticated = self.token is None or self._authorized(request)
        limit = RATE_LIMIT if authenticated else UNAUTHENTICATED_LIMIT
        used = min(self._used[resource], limit)
        return [
            ("x-ratelimit-limit", str(limit)),
            ("x-ratelimit-remaining", str(limit - used)),
            ("x-ratelimit-used", str(used)),
            ("x-ratelimit-reset", str(self._window_reset)),
            ("x-ratelimit-resource", resource),
        ]

    def _rate_limited(self, resource: str, kind: str, reset_in: int, status: int = 403) -> Response:
        now = int(self.clock())
        limit_headers = [
            ("x-ratelimit-limit", str(RATE_LIMIT)),
            ("x-ratelimit-remaining", "0" if kind == "primary" else "4000"),
            ("x-ratelimit-used", str(RATE_LIMIT) if kind == "primary" else "1000"),
            ("x-ratelimit-reset", str(now + reset_in if kind == "primary" else self._window_reset)),
            ("x-ratelimit-resource", resource),
        ]
        if kind == "secondary":
            return Response.json(
                {"message": SECONDARY_MESSAGE, "documentation_url": DOCS},
                status=status,
                headers=[("retry-after", str(reset_in)), *limit_headers],
            )
        message = "API rate limit exceeded for installation ID 1."
        if resource == "graphql":
            # GraphQL reports its primary limit inside a 200, like its other errors.
            return Response.json(
                {
                    "errors": [
                        {"type": "RATE_LIMITED", "code": "graphql_rate_limit", "message": message}
                    ]
                },
                headers=limit_headers,
            )
        return Response.json(
            {"message": message, "documentation_url": DOCS}, status=403, headers=limit_headers
        )
