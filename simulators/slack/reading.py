"""What a person reads in a Slack client: the simulator's stored messages (Block Kit and
mrkdwn) as plain terminal lines. The demo plays the people in the channel with it; what the bot
sent is read here, on Slack's side, never by the bot."""

from __future__ import annotations

from collections.abc import Mapping
from html import unescape
from typing import Any

import httpx

Names = Mapping[str, str]  # Slack user id → the name a reader sees


def plain(text: str, names: Names | None = None) -> str:
    """mrkdwn to terminal text: mentions by name, links by label, entities decoded."""
    for user, name in (names or {}).items():
        text = text.replace(f"<@{user}>", f"@{name}")
    out, i = [], 0
    while i < len(text):
        if text[i] == "<" and (end := text.find(">", i)) != -1:
            inner = text[i + 1 : end]
            out.append(inner.split("|", 1)[1] if "|" in inner else inner)
            i = end + 1
        else:
            out.append(text[i])
            i += 1
    return unescape("".join(out)).replace("```", "")


def blocks_text(blocks: list[dict[str, Any]], names: Names | None = None) -> list[str]:
    """Block Kit as a person would read it, in plain lines."""
    lines: list[str] = []
    for block in blocks:
        kind = block.get("type")
        if kind in ("header", "section"):
            lines.extend(plain(str(block.get("text", {}).get("text", "")), names).splitlines())
        elif kind == "context":
            lines.append(
                " · ".join(plain(str(e.get("text", "")), names) for e in block.get("elements", []))
            )
        elif kind == "actions":
            lines.append(
                "  ".join(
                    f"[{e.get('text', {}).get('text', '')}]" for e in block.get("elements", [])
                )
            )
    return lines


def button_value(blocks: list[dict[str, Any]], action_id: str) -> str | None:
    """The value of the message's button `action_id`, if it has one."""
    for block in blocks:
        for element in [block.get("accessory") or {}, *block.get("elements", [])]:
            if isinstance(element, dict) and element.get("action_id") == action_id:
                return str(element.get("value", ""))
    return None


def ack_text(response: httpx.Response, names: Names | None = None) -> str:
    """A slash command's ack as its sender reads it: Bolt sends text-only acks as text/plain."""
    if response.headers.get("content-type", "").startswith("application/json"):
        return plain(str(response.json().get("text", "")).strip(), names)
    return plain(response.text.strip(), names)


def posted_lines(payload: dict[str, Any], names: Names | None = None) -> list[str]:
    """A response_url post as its reader sees it: its blocks, else its text."""
    blocks = payload.get("blocks")
    lines = blocks_text(blocks, names) if isinstance(blocks, list) else []
    return lines or [plain(str(payload.get("text", "")), names)]
