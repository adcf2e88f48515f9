"""Logging: structlog in front of the standard library, one format for every logger.

- JSON lines when stderr is not a terminal (containers, systemd, CI), readable coloured lines
  when it is. `LOG_LEVEL` (default WARNING) applies to every logger.
- Standard-library records (ours, rq's, httpx's) go through the same processors: timestamp,
  level, logger name, and the context bound with `structlog.contextvars` (a tick binds
  `monitor_id`, `commit` and `stage`, so every line it causes carries them).
- A last processor redacts secrets from the rendered line, tracebacks included: the values
  of the secret settings, plus token-shaped strings (`Bearer …`, Slack and GitHub token
  prefixes, URL passwords, Slack `response_url`s) that no setting names, such as the
  Concourse access token obtained at login.

httpx logs one INFO line per request with the method, URL and status only; no client here
puts a credential in a URL (Concourse and GitHub tokens travel in the Authorization header,
the Concourse password in a form body), and the redaction catches URL passwords anyway.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from collections.abc import Iterable
from typing import Any, TextIO

import structlog
from pydantic import SecretStr
from structlog.typing import EventDict, Processor, WrappedLogger

DEFAULT_LEVEL = "WARNING"
REDACTED = "***"
# Shorter values would redact ordinary words; secrets are never this short in practice.
MIN_SECRET_CHARS = 6

# Credentials that look like credentials, whatever setting (or login) they came from.
_TOKEN_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]{8,}"), rf"\1{REDACTED}"),
    (re.compile(r"\b(xox[abposr]|xapp)-[A-Za-z0-9-]{8,}"), rf"\1-{REDACTED}"),
    (re.compile(r"\b(gh[pousr]_|github_pat_)[A-Za-z0-9_]{8,}"), rf"\1{REDACTED}"),
    (re.compile(r"(://[^/\s:@]*:)[^@\s/]+@"), rf"\1{REDACTED}@"),
    # A response_url lets anyone post to the channel for 30 minutes (rq logs job arguments).
    (re.compile(r"(hooks\.slack\.com/[a-z]+/)\S+?(?=['\"\s,)]|$)"), rf"\1{REDACTED}"),
)
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


class Redactor:
    """Replaces known secret values and token-shaped strings in rendered log lines."""

    def __init__(self) -> None:
        self._secrets: list[str] = []  # longest first, so a secret containing another goes whole

    def add(self, *values: str | SecretStr | None) -> None:
        """Never let these values reach a log line (also in their JSON-escaped form)."""
        for value in values:
            raw = value.get_secret_value() if isinstance(value, SecretStr) else value
            if raw and len(raw) >= MIN_SECRET_CHARS:
                known = {*self._secrets, raw, json.dumps(raw)[1:-1]}
                self._secrets = sorted(known, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        for pattern, replacement in _TOKEN_PATTERNS:
            text = pattern.sub(replacement, text)
        return text


# The process's one redactor: configure_logging installs it, redact_settings feeds it.
redactor = Redactor()


def redact_settings(settings: Any) -> None:
    """Register every secret of the settings (any `SecretStr` field, and the Redis password)."""
    for name in type(settings).model_fields:
        value = getattr(settings, name, None)
        if isinstance(value, SecretStr):
            redactor.add(value)
    redis_url = getattr(settings, "redis_url", None)
    if isinstance(redis_url, str):
        from urllib.parse import urlsplit

        redactor.add(urlsplit(redis_url).password)


class _Redacting:
    """Wraps the renderer: the rendered line is the last thing redaction sees."""

    def __init__(self, renderer: Processor, redact: Redactor) -> None:
        self.renderer = renderer
        self.redact = redact

    def __call__(self, logger: WrappedLogger, name: str, event_dict: EventDict) -> str:
        rendered = self.renderer(logger, name, event_dict)
        return self.redact(rendered if isinstance(rendered, str) else str(rendered))


def _strip_ansi(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """rq colours its messages when stdout is a terminal; colours do not belong in JSON."""
    event = event_dict.get("event")
    if isinstance(event, str):
        event_dict["event"] = _ANSI.sub("", event)
    return event_dict


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever `sys.stderr` is now (test runners swap it), not the one at start."""

    _ours = True  # configure_logging replaces its own handler, never pytest's or others'

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _: TextIO) -> None:
        pass  # StreamHandler.__init__ assigns it; the property always answers sys.stderr


def configure_logging(
    level: str | None = None,
    *,
    json_lines: bool | None = None,
    secrets: Iterable[str | SecretStr | None] = (),
) -> None:
    """Route structlog and the standard library through one handler on stderr.

    `level` defaults to `LOG_LEVEL` (then WARNING); `json_lines` defaults to "stderr is not a
    terminal". Calling it again replaces the previous configuration.
    """
    level_name = (level or os.environ.get("LOG_LEVEL") or DEFAULT_LEVEL).upper()
    numeric = logging.getLevelName(level_name)
    if not isinstance(numeric, int):
        numeric, level_name = logging.WARNING, DEFAULT_LEVEL
    if json_lines is None:
        json_lines = not sys.stderr.isatty()
    redactor.add(*secrets)

    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    final: list[Processor]
    if json_lines:
        final = [
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            _strip_ansi,
            structlog.processors.format_exc_info,
            _Redacting(structlog.processors.JSONRenderer(), redactor),
        ]
    else:
        final = [
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            _Redacting(structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty()), redactor),
        ]
    formatter = structlog.stdlib.ProcessorFormatter(foreign_pre_chain=shared, processors=final)

    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_ours", False):
            root.removeHandler(handler)
    handler = _StderrHandler()
    handler.setFormatter(formatter)
    root.addHandler(handler)
    root.setLevel(numeric)

    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
