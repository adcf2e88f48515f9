"""Reading a build's log from its event stream (`/api/v1/builds/:id/events`, server-sent events).

The server never closes the stream after `end`: the reader stops there. Log chunks arrive as
`log` events (chunks, not lines, with terminal escapes); `error` events carry a message the
build log shows on a line of its own.
"""

from __future__ import annotations

import re
from typing import Any, Literal

import httpx
import httpx_sse
from pydantic import ValidationError

from workers.concourse._models import ApiModel

# CSI (colours, cursor moves), OSC (titles, hyperlinks) and two-byte escape sequences.
ANSI_ESCAPE = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])")

# How one connection's worth of events ended: `end`, quiet for the read timeout, or cut.
StreamOutcome = Literal["end", "timeout", "broken"]


class EventEnvelope(ApiModel):
    """The JSON of one `event` message: `{"event": "log", "data": {…}, "version": …}`."""

    event: str
    data: dict[str, Any] = {}


def consume(source: httpx_sse.EventSource, tail: LogTail) -> StreamOutcome:
    """Feed events to `tail` until `end`; errors while reading mean the stream broke."""
    try:
        for sse in source.iter_sse():
            if sse.id:
                tail.last_event_id = sse.id
            if sse.event == "end":
                return "end"
            if sse.event == "event":
                tail.add_event(sse.data)
    except httpx.ReadTimeout:
        return "timeout"
    except (httpx.TransportError, httpx.DecodingError):
        return "broken"
    return "broken"  # closed without `end`: a proxy or load balancer cut it


class LogTail:
    """Collects log chunks and error messages, keeping only what the tail can need, and the
    id of the last event read (to resume a broken stream with `Last-Event-ID`)."""

    def __init__(self, max_chars: int) -> None:
        self.max_chars = max_chars
        self.last_event_id: str | None = None
        self._text = ""

    def add_event(self, data: str) -> None:
        """Take the data of one `event` message: a log chunk or an error message."""
        try:
            envelope = EventEnvelope.model_validate_json(data)
        except ValidationError:
            return  # an unparseable event does not spoil a best-effort tail
        if envelope.event == "log":
            self._append(str(envelope.data.get("payload", "")))
        elif envelope.event == "error":
            message = str(envelope.data.get("message", ""))
            if self._text and not self._text.endswith("\n"):
                message = "\n" + message
            self._append(message if message.endswith("\n") else message + "\n")

    def _append(self, chunk: str) -> None:
        self._text += chunk
        # Keep a generous raw margin: escape sequences and overwritten lines shrink the text.
        keep = 2 * self.max_chars + 4096
        if len(self._text) > 2 * keep:
            self._text = self._text[-keep:]

    def text(self) -> str:
        """The tail as a terminal would show it: no escapes, `\\r\\n` → `\\n`, `\\r` overwrites."""
        text = ANSI_ESCAPE.sub("", self._text.replace("\r\n", "\n"))
        if "\r" in text:
            text = "\n".join(_last_overwrite(line) for line in text.split("\n"))
        return text[-self.max_chars :] if self.max_chars > 0 else ""


def _last_overwrite(line: str) -> str:
    """What is left visible of a line that redraws itself with carriage returns."""
    parts = [part for part in line.split("\r") if part]
    return parts[-1] if parts else ""
