"""Block Kit primitives: Slack's limits, named once, and the blocks `render` composes, built
with slack_sdk's models so every block is validated once, where it is made.

This module knows how Slack text works (escaping, clipping, code fences, block limits) and
nothing of what the bot says; `bot.slack.render` decides the words.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ConfirmObject,
    ContextBlock,
    HeaderBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)

# Block Kit limits: slack_sdk's own where its models define them.
MAX_SECTION_TEXT: int = SectionBlock.text_max_length
MAX_HEADER_TEXT: int = HeaderBlock.text_max_length
MAX_CONTEXT_ELEMENTS: int = ContextBlock.elements_max_length
MAX_BUTTON_TEXT: int = ButtonElement.text_max_length
MAX_BUTTON_VALUE: int = ButtonElement.value_max_length
MAX_CONFIRM_TITLE: int = ConfirmObject.title_max_length
MAX_CONFIRM_TEXT: int = ConfirmObject.text_max_length
MAX_CONFIRM_BUTTON: int = ConfirmObject.confirm_max_length
# slack_sdk checks blocks, not messages: 50 blocks per message is Slack's documented limit.
MAX_BLOCKS = 50
# A context element's text has no documented limit of its own; a section's is safe.
MAX_CONTEXT_TEXT = MAX_SECTION_TEXT
# Slack truncates `text` above 40,000 characters and chat.update refuses more than 4,000;
# 3,000 keeps both postMessage and update safe.
MAX_FALLBACK_TEXT = 3000

_ZERO_WIDTH_SPACE = "\u200b"
_OMITTED = "… ({n} earlier characters omitted)"


@dataclass(frozen=True)
class SlackMessage:
    """What to send: `text` is the notification and screen-reader fallback, `blocks` the body;
    None for a text-only message (then no `blocks` argument is sent at all)."""

    text: str
    blocks: list[dict[str, Any]] | None = None


def message(text: str, blocks: list[dict[str, Any]]) -> SlackMessage:
    """A message with blocks, checked against the limits no single block can check."""
    if not text or len(text) > MAX_FALLBACK_TEXT:
        raise ValueError(f"fallback text of {len(text)} characters")
    if not 1 <= len(blocks) <= MAX_BLOCKS:
        raise ValueError(f"{len(blocks)} blocks in one message")
    return SlackMessage(text=text, blocks=blocks)


# ---------------------------------------------------------------------------------------------
# Text


def escape(text: str) -> str:
    """Escape Slack's three control characters (`&`, `<`, `>`) and nothing else."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def clip(mrkdwn: str, limit: int) -> str:
    """Escaped mrkdwn cut to `limit` characters with an ellipsis, never inside an entity
    (`&amp;`) or a link/mention (`<…>`)."""
    if len(mrkdwn) <= limit:
        return mrkdwn
    cut = mrkdwn[: limit - 1]
    amp = cut.rfind("&")
    if amp != -1 and ";" not in cut[amp:]:
        cut = cut[:amp]
    opened = cut.rfind("<")
    if opened != -1 and ">" not in cut[opened:]:
        cut = cut[:opened]
    return cut + "…"


def _render_code(raw: str) -> str:
    # A zero-width space between adjacent backticks means no run of three can close the fence.
    return re.sub("`(?=`)", "`" + _ZERO_WIDTH_SPACE, escape(raw))


def code_block(text: str, limit: int) -> str:
    """`text` as an escaped ``` code block of at most `limit` characters.

    When it does not fit, the start is dropped (a log's tail holds the error) and the block
    opens with a `… (N earlier characters omitted)` line; N counts characters of `text`.
    Raises ValueError if `limit` cannot even hold the fences and that line.
    """
    body = text.rstrip()

    def fenced(skip: int) -> str:
        kept = _render_code(body[skip:])
        if skip == 0:
            return f"```\n{kept}\n```"
        return f"```\n{_OMITTED.format(n=skip)}\n{kept}\n```"

    if len(fenced(0)) <= limit:
        return fenced(0)
    if len(fenced(len(body))) > limit:
        raise ValueError(f"a code block cannot fit in {limit} characters")
    # Dropping a character never makes the block longer (the count of omitted characters
    # gains a digit only when at least one character goes), so binary search the cut.
    low, high = 1, len(body)
    while low < high:
        mid = (low + high) // 2
        if len(fenced(mid)) <= limit:
            high = mid
        else:
            low = mid + 1
    skip = low
    # Start on a whole line when the cut landed mid-line and a line break is close by.
    if body[skip - 1] != "\n":
        newline = body.find("\n", skip, skip + 200)
        if newline != -1 and newline + 1 < len(body):
            skip = newline + 1
    return fenced(skip)


# ---------------------------------------------------------------------------------------------
# Blocks: each built with slack_sdk's model and validated by its `to_dict()`


def _built(block: Block) -> dict[str, Any]:
    built: dict[str, Any] = block.to_dict()
    return built


def _mrkdwn(text: str, limit: int) -> MarkdownTextObject:
    if not text:
        raise ValueError("empty mrkdwn text")  # slack_sdk would drop it and Slack refuse it
    return MarkdownTextObject(text=clip(text, limit))


def plain(text: str) -> PlainTextObject:
    """A plain_text object with emoji shortcodes on, as on every label the bot shows."""
    return PlainTextObject(text=text, emoji=True)


def header(escaped: str) -> dict[str, Any]:
    """A header block; `escaped` is plain text already escaped, cut to the header limit."""
    return _built(HeaderBlock(text=plain(clip(escaped, MAX_HEADER_TEXT))))


def section(mrkdwn: str) -> dict[str, Any]:
    """A section of mrkdwn, cut to the section limit."""
    return _built(SectionBlock(text=_mrkdwn(mrkdwn, MAX_SECTION_TEXT)))


def context(*mrkdwn: str) -> dict[str, Any]:
    """A context block of the non-empty texts given, at most as many as a context holds."""
    elements = [_mrkdwn(m, MAX_CONTEXT_TEXT) for m in mrkdwn if m][:MAX_CONTEXT_ELEMENTS]
    return _built(ContextBlock(elements=elements))


def confirm(*, title: str, text: str, confirm: str, deny: str) -> ConfirmObject:
    """A danger confirmation dialog; `text` is cut to its limit (plain text, no emoji)."""
    return ConfirmObject(
        title=plain(title),
        text=PlainTextObject(text=text[:MAX_CONFIRM_TEXT]),
        confirm=plain(confirm),
        deny=plain(deny),
        style="danger",
    )


def button(
    *,
    action_id: str,
    label: str,
    value: str,
    style: str,
    confirm: ConfirmObject | None = None,
) -> ButtonElement:
    """A button carrying `value`; a value too long raises (cutting it would misroute the
    click)."""
    if len(value) > MAX_BUTTON_VALUE:
        raise ValueError(f"button value longer than {MAX_BUTTON_VALUE} characters")
    return ButtonElement(
        action_id=action_id, text=plain(label), value=value, style=style, confirm=confirm
    )


def actions(block_id: str, *elements: ButtonElement) -> dict[str, Any]:
    """An actions block of buttons."""
    return _built(ActionsBlock(block_id=block_id, elements=list(elements)))


def line_sections(lines: list[str], max_blocks: int, more: str) -> list[dict[str, Any]]:
    """Lines packed into as few sections as fit the section limit, at most `max_blocks`;
    lines that do not fit are replaced by `more` (formatted with the count left out)."""

    def pack(chunk: list[str]) -> list[str]:
        texts: list[str] = []
        for line in chunk:
            line = clip(line, MAX_SECTION_TEXT)
            if texts and len(texts[-1]) + 1 + len(line) <= MAX_SECTION_TEXT:
                texts[-1] += "\n" + line
            else:
                texts.append(line)
        return texts

    def shortened(keep: int) -> list[str]:
        return pack([*lines[:keep], more.format(n=len(lines) - keep)])

    texts = pack(lines)
    if len(texts) <= max_blocks:
        return [section(t) for t in texts]
    # Keeping fewer lines never needs more sections: binary search the most that fit.
    low, high = 0, len(lines) - 1
    while low < high:
        mid = (low + high + 1) // 2
        if len(shortened(mid)) <= max_blocks:
            low = mid
        else:
            high = mid - 1
    return [section(t) for t in shortened(low)[:max_blocks]]
