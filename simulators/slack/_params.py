"""Reading a Web API call's arguments, whichever of Slack's three encodings it uses."""

from __future__ import annotations

import copy
import json
from email import policy
from email.parser import BytesParser
from typing import Any
from urllib.parse import parse_qs

from simulators._http import Request
from simulators.slack._model import SlackError


def bearer(header: str | None) -> str | None:
    if header and header.startswith("Bearer "):
        return header.removeprefix("Bearer ").strip() or None
    return None


def parse_params(request: Request) -> dict[str, Any]:
    """Query parameters plus the body, whichever of Slack's three encodings it uses."""
    params: dict[str, Any] = {k: v[0] for k, v in request.query.items()}
    if not request.body:
        return params
    content_type = (request.header("content-type") or "").lower()
    if content_type.startswith("application/json"):
        try:
            body = json.loads(request.body)
        except ValueError as exc:
            raise SlackError("invalid_json") from exc
        if not isinstance(body, dict):
            raise SlackError("invalid_json")
        params.update(body)
    elif content_type.startswith("multipart/form-data"):
        params.update(multipart(request.header("content-type") or "", request.body))
    else:
        try:
            form = parse_qs(request.body.decode(), keep_blank_values=True, strict_parsing=True)
        except (UnicodeDecodeError, ValueError) as exc:
            raise SlackError("invalid_form_data") from exc
        params.update({k: v[0] for k, v in form.items()})
    return params


def multipart(content_type: str, body: bytes) -> dict[str, Any]:
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    parsed = BytesParser(policy=policy.HTTP).parsebytes(head + body)
    if not parsed.is_multipart():
        raise SlackError("invalid_form_data")
    fields: dict[str, Any] = {}
    for part in parsed.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if isinstance(name, str):
            payload = part.get_payload(decode=True)
            fields[name] = payload.decode() if isinstance(payload, bytes) else ""
    return fields


def parse_bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes")
    return bool(value)


def optional_bool(value: Any) -> bool | None:
    return None if value is None else parse_bool(value)


def parse_metadata(value: Any) -> dict[str, Any] | None:
    """Validated message metadata: a JSON object with `event_type` and `event_payload`."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise SlackError("invalid_metadata_format") from exc
    if not isinstance(value, dict):
        raise SlackError("invalid_metadata_format")
    event_type, payload = value.get("event_type"), value.get("event_payload")
    if not isinstance(event_type, str) or not event_type or not isinstance(payload, dict):
        raise SlackError("invalid_metadata_schema")
    return {"event_type": event_type, "event_payload": copy.deepcopy(payload)}


def json_list(value: Any, error: str) -> list[Any]:
    """A list argument that may arrive as JSON (form bodies) or as a list (JSON bodies)."""
    if value is None or value == "":
        return []
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise SlackError(error) from exc
    if not isinstance(value, list):
        raise SlackError(error)
    return value
