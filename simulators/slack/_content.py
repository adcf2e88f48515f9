"""What a message may contain: text length limits and the Block Kit rules Slack enforces."""

from __future__ import annotations

from typing import Any

from simulators.slack._model import SlackError
from simulators.slack._params import json_list

# Limits from the chat.postMessage / chat.update docs and slack_sdk's Block Kit validators.
MAX_TEXT_CHARS = 40_000
MAX_UPDATE_TEXT_CHARS = 4_000
MAX_BLOCKS = 50
# A Home tab (or modal) view holds twice as many (views.publish).
MAX_VIEW_BLOCKS = 100
MAX_SECTION_TEXT_CHARS = 3_000
MAX_SECTION_FIELDS = 10
MAX_FIELD_TEXT_CHARS = 2_000
MAX_HEADER_TEXT_CHARS = 150
MAX_ACTIONS_ELEMENTS = 25
MAX_CONTEXT_ELEMENTS = 10
MAX_BLOCK_ID_CHARS = 255
MAX_ACTION_ID_CHARS = 255
MAX_BUTTON_TEXT_CHARS = 75
MAX_BUTTON_VALUE_CHARS = 2_000


def message_content(
    params: dict[str, Any], max_text: int
) -> tuple[str, list[dict[str, Any]], list[dict[str, Any]]]:
    """Validated (text, blocks, attachments) of a message-posting call."""
    text = "" if params.get("text") is None else str(params["text"])
    blocks = _blocks(params.get("blocks"))
    attachments = json_list(params.get("attachments"), "invalid_attachments")
    if not text and not blocks and not attachments:
        raise SlackError("no_text")
    if len(text) > max_text:
        raise SlackError("msg_too_long")
    return text, blocks, attachments


def _blocks(raw: Any) -> list[dict[str, Any]]:
    blocks = json_list(raw, "invalid_blocks_format")
    problems = block_problems(blocks)
    if problems:
        raise SlackError(
            "invalid_blocks",
            errors=problems,
            response_metadata={"messages": [f"[ERROR] {p}" for p in problems]},
        )
    return blocks


def block_problems(
    blocks: list[Any], *, max_blocks: int = MAX_BLOCKS, pointer: str = "/blocks"
) -> list[str]:
    """Block Kit rules Slack enforces that a renderer can plausibly break; `pointer` is where
    the blocks sit in the request (`/blocks` in a message, `/view/blocks` in a view)."""
    problems: list[str] = []
    if len(blocks) > max_blocks:
        problems.append(_at(f"no more than {max_blocks} items allowed", pointer))
    block_ids: set[str] = set()
    for i, block in enumerate(blocks):
        where = f"{pointer}/{i}"
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            problems.append(_at("missing required field: type", where))
            continue
        block_id = block.get("block_id")
        if block_id is not None:
            if len(str(block_id)) > MAX_BLOCK_ID_CHARS:
                problems.append(_at("block_id too long", where))
            if block_id in block_ids:
                problems.append(_at("duplicate block_id", where))
            block_ids.add(str(block_id))
        kind = block["type"]
        if kind == "section":
            problems += _section_problems(block, where)
        elif kind == "header":
            text = _text_of(block.get("text"))
            if text is None or len(text) > MAX_HEADER_TEXT_CHARS:
                problems.append(
                    _at(f"must be 1..{MAX_HEADER_TEXT_CHARS} characters", f"{where}/text")
                )
        elif kind == "actions":
            problems += _actions_problems(block, where)
        elif kind == "context":
            elements = block.get("elements")
            if not isinstance(elements, list) or not 1 <= len(elements) <= MAX_CONTEXT_ELEMENTS:
                problems.append(
                    _at(f"must have 1..{MAX_CONTEXT_ELEMENTS} elements", f"{where}/elements")
                )
    return problems


def _at(message: str, pointer: str) -> str:
    """A block problem worded the way Slack reports it."""
    return f"{message} [json-pointer:{pointer}]"


def _text_of(obj: Any) -> str | None:
    """The `text` of a text object, or None if it is not one."""
    if (
        isinstance(obj, dict)
        and obj.get("type") in ("plain_text", "mrkdwn")
        and isinstance(obj.get("text"), str)
    ):
        return str(obj["text"])
    return None


def _section_problems(block: dict[str, Any], where: str) -> list[str]:
    problems: list[str] = []
    if "text" not in block and "fields" not in block:
        problems.append(_at("must provide text or fields", where))
    if "text" in block:
        text = _text_of(block["text"])
        if text is None:
            problems.append(_at("invalid text object", f"{where}/text"))
        elif not 1 <= len(text) <= MAX_SECTION_TEXT_CHARS:
            problems.append(
                _at(
                    f"must be between 1 and {MAX_SECTION_TEXT_CHARS} characters",
                    f"{where}/text/text",
                )
            )
    accessory = block.get("accessory")
    if isinstance(accessory, dict) and accessory.get("type") == "button":
        problems += _button_problems(accessory, f"{where}/accessory")
    if "fields" in block:
        fields = block["fields"]
        if not isinstance(fields, list) or len(fields) > MAX_SECTION_FIELDS:
            problems.append(
                _at(f"no more than {MAX_SECTION_FIELDS} items allowed", f"{where}/fields")
            )
        else:
            for j, item in enumerate(fields):
                text = _text_of(item)
                if text is None or len(text) > MAX_FIELD_TEXT_CHARS:
                    problems.append(_at("invalid field", f"{where}/fields/{j}"))
    return problems


def _actions_problems(block: dict[str, Any], where: str) -> list[str]:
    elements = block.get("elements")
    if not isinstance(elements, list) or not 1 <= len(elements) <= MAX_ACTIONS_ELEMENTS:
        return [_at(f"must have 1..{MAX_ACTIONS_ELEMENTS} elements", f"{where}/elements")]
    problems: list[str] = []
    action_ids: set[str] = set()
    for j, element in enumerate(elements):
        at = f"{where}/elements/{j}"
        if not isinstance(element, dict):
            problems.append(_at("invalid element", at))
            continue
        action_id = element.get("action_id")
        if action_id is not None:
            if len(str(action_id)) > MAX_ACTION_ID_CHARS:
                problems.append(_at("action_id too long", at))
            if action_id in action_ids:
                problems.append(_at("duplicate action_id", at))
            action_ids.add(str(action_id))
        if element.get("type") == "button":
            problems += _button_problems(element, at)
    return problems


def _button_problems(element: dict[str, Any], at: str) -> list[str]:
    problems: list[str] = []
    label = _text_of(element.get("text"))
    if label is None or len(label) > MAX_BUTTON_TEXT_CHARS:
        problems.append(_at(f"button text must be 1..{MAX_BUTTON_TEXT_CHARS} chars", at))
    if len(str(element.get("value", ""))) > MAX_BUTTON_VALUE_CHARS:
        problems.append(_at("button value too long", at))
    return problems
