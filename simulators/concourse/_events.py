"""Build event streams: replay history, follow live events, `end`, then stay open until the
client hangs up, as Concourse's SSE endpoint does."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

from simulators._http import Request, Response
from simulators.concourse._auth import Auth
from simulators.concourse._model import Build

# After `end` the real server waits for the client to hang up; cap it so threads don't leak.
STREAM_LINGER_SECONDS = 30.0
_WAKE_SECONDS = 0.05  # how often a waiting stream checks whether its client has gone


class EventStreams(Auth):
    """The `/api/v1/builds/<id>/events` route."""

    def _build_events(self, request: Request) -> Response:
        with self.lock:
            build = self._find_build(request)
            if isinstance(build, Response):
                return build
            # Events need the job to be public too; simulated jobs never are.
            error, _ = self._check_read(request, public=False)
            if error is not None:
                return error
        last_event_id = request.header("last-event-id")
        start = 0
        if last_event_id is not None:
            try:
                start = int(last_event_id) + 1
            except ValueError:
                return Response.text("malformed Last-Event-ID", 400)
        return Response(
            headers=[
                ("Content-Type", "text/event-stream; charset=utf-8"),
                ("Cache-Control", "no-cache, no-store, must-revalidate"),
                ("X-Accel-Buffering", "no"),
                ("X-ATC-Stream-Version", "2.0"),
            ],
            stream=self._event_stream(build, start, request),
        )

    def _event_stream(self, build: Build, position: int, request: Request) -> Iterator[bytes]:
        """Replay from `position`, then follow live events until the build finishes."""
        with self.lock:
            self.open_streams += 1
        try:
            while True:
                with self._changed:
                    if self._stopping:
                        return
                    if position >= len(build.events) and not build.finished:
                        self._changed.wait(timeout=_WAKE_SECONDS)
                    pending = build.events[position:]
                    finished = build.finished  # the final status event is already in `pending`
                if pending:
                    for envelope in pending:
                        yield _frame(position, "event", json.dumps(envelope))
                        position += 1
                elif request.client_gone():
                    return
                if finished and position >= len(build.events):
                    break
            yield _frame(position, "end", None)
            # Like Concourse (concourse/concourse#4466): keep the stream open after `end`.
            deadline = time.monotonic() + STREAM_LINGER_SECONDS
            while time.monotonic() < deadline and not request.client_gone():
                with self._changed:
                    if self._stopping:
                        return
                    self._changed.wait(timeout=_WAKE_SECONDS)
        finally:
            with self.lock:
                self.open_streams -= 1


def _frame(position: int, event: str, data: str | None) -> bytes:
    """One SSE frame; `end` has a bare `data` line, as Concourse sends it."""
    data_line = "data" if data is None else f"data: {data}"
    return f"id: {position}\nevent: {event}\n{data_line}\n\n".encode()
