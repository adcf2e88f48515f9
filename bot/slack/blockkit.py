"""Block Kit primitives: Slack's limits, named once, and the blocks `render` composes, built
with slack_sdk's models so every block is validated once, where it is made.

This module knows how Slack text works (escaping, clipping, code fences, block limits) and
nothing of what the bot says; `bot.slack.render` decides the words.

Lengths are counted in UTF-16 code units (`slack_len`), everywhere. Slack does not say which unit
its limits use; its clients are JavaScript, which counts UTF-16, and slack_sdk's validators count
code points (`len`), never more than UTF-16 units, so text within a limit by this count passes
both. Text is cut only between grapheme clusters (an emoji with its skin tone or ZWJ family, a
flag's two letters, a letter and its accents stay whole), never inside an entity (`&amp;`), a
link or mention (`<…>`), and a bold or code span the cut leaves open is closed after the `…`.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ConfirmObject,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)
from slack_sdk.models.views import View

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
# A Home tab view holds twice as many (slack_sdk's View checks it too).
MAX_VIEW_BLOCKS: int = View.blocks_max_length
# A context element's text has no documented limit of its own; a section's is safe.
MAX_CONTEXT_TEXT = MAX_SECTION_TEXT
# Slack truncates `text` above 40,000 characters and chat.update refuses more than 4,000;
# 3,000 keeps both postMessage and update safe.
MAX_FALLBACK_TEXT = 3000

_ZERO_WIDTH_SPACE = "\u200b"
_ZERO_WIDTH_JOINER = "\u200d"
_ELLIPSIS = "…"
_OMITTED = "… ({n} earlier characters omitted)"
# What a cut in mrkdwn keeps whole: an entity, a link/mention up to its `>`, a run of backticks.
_MRKDWN_UNIT = re.compile(r"&(?:[a-z]+|#[0-9]+);|<[^>]*>?|`+")
# Unicode's Prepend characters that a text may hold (Arabic number signs and the like).
_PREPEND = frozenset("\u0600\u0601\u0602\u0603\u0604\u0605\u06dd\u070f\u0890\u0891\u08e2")


@dataclass(frozen=True)
class SlackMessage:
    """What to send: `text` is the notification and screen-reader fallback, `blocks` the body;
    None for a text-only message (then no `blocks` argument is sent at all)."""

    text: str
    blocks: list[dict[str, Any]] | None = None

    def __post_init__(self) -> None:
        if self.blocks == []:
            raise ValueError("a text-only message has blocks=None, never blocks=[]")


def home_view(blocks: list[dict[str, Any]]) -> dict[str, Any]:
    """A Home tab view of `blocks` (views.publish's `view`), validated by slack_sdk."""
    if not 1 <= len(blocks) <= MAX_VIEW_BLOCKS:
        raise ValueError(f"{len(blocks)} blocks in one Home view")
    built: dict[str, Any] = View(type="home", blocks=blocks).to_dict()
    return built


def message(text: str, blocks: list[dict[str, Any]]) -> SlackMessage:
    """A message with blocks, checked against the limits no single block can check."""
    if not text or slack_len(text) > MAX_FALLBACK_TEXT:
        raise ValueError(f"fallback text of {slack_len(text)} characters")
    if not 1 <= len(blocks) <= MAX_BLOCKS:
        raise ValueError(f"{len(blocks)} blocks in one message")
    return SlackMessage(text=text, blocks=blocks)


# ---------------------------------------------------------------------------------------------
# Text


def escape(text: str) -> str:
    """Escape Slack's three control characters (`&`, `<`, `>`) and nothing else."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_len(text: str) -> int:
    """The length of `text` as Slack's limits are counted here: UTF-16 code units."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def _hangul(char: str) -> str:
    """The Hangul syllable type of `char`: L, V, T, LV, LVT, or "" for anything else."""
    code = ord(char)
    if 0x1100 <= code <= 0x115F or 0xA960 <= code <= 0xA97C:
        return "L"
    if 0x1160 <= code <= 0x11A7 or 0xD7B0 <= code <= 0xD7C6:
        return "V"
    if 0x11A8 <= code <= 0x11FF or 0xD7CB <= code <= 0xD7FB:
        return "T"
    if 0xAC00 <= code <= 0xD7A3:
        return "LV" if (code - 0xAC00) % 28 == 0 else "LVT"
    return ""


def _regional_indicator(char: str) -> bool:
    return 0x1F1E6 <= ord(char) <= 0x1F1FF


def _extends(char: str) -> bool:
    """Whether `char` belongs to the cluster before it: marks, joiners, variation selectors,
    emoji skin tones and the tag characters of subdivision flags."""
    code = ord(char)
    return (
        unicodedata.category(char) in ("Mn", "Me", "Mc")
        or char in (_ZERO_WIDTH_JOINER, "\u200c")
        or 0x1F3FB <= code <= 0x1F3FF
        or 0xE0020 <= code <= 0xE007F
    )


def is_boundary(text: str, i: int) -> bool:
    """Whether cutting `text` before index `i` falls between grapheme clusters.

    Unicode's rules (UAX #29) without its property tables, and erring towards "no": a cut it
    refuses only moves earlier, one it allowed wrongly would split what a reader sees as one
    character."""
    if i <= 0 or i >= len(text):
        return True
    before, char = text[i - 1], text[i]
    if before == "\r" and char == "\n":
        return False
    if before in "\r\n" or char in "\r\n":
        return True
    if _extends(char):
        return False
    if before == _ZERO_WIDTH_JOINER and not char.isascii():
        return False  # an emoji ZWJ sequence (family, profession, …)
    if before in _PREPEND:
        return False
    if _regional_indicator(before) and _regional_indicator(char):
        run = 0
        while run < i and _regional_indicator(text[i - 1 - run]):
            run += 1
        return run % 2 == 0  # flags pair their letters from the start of the run
    jamo_before, jamo = _hangul(before), _hangul(char)
    if jamo_before == "L" and jamo in ("L", "V", "LV", "LVT"):
        return False
    if jamo_before in ("LV", "V") and jamo in ("V", "T"):
        return False
    if jamo_before in ("LVT", "T") and jamo == "T":
        return False
    # A virama joining two consonants (Indic conjuncts) holds them in one cluster.
    return not (unicodedata.combining(before) == 9 and unicodedata.category(char) == "Lo")


def prefix(text: str, limit: int) -> str:
    """The longest start of `text` within `limit` UTF-16 units that ends between clusters."""
    if slack_len(text) <= limit:
        return text
    end, used = 0, 0
    for i, char in enumerate(text):
        used += 2 if ord(char) > 0xFFFF else 1
        if used > limit:
            end = i
            break
    while end > 0 and not is_boundary(text, end):
        end -= 1
    return text[:end]


def _units(text: str) -> Iterator[tuple[int, int]]:
    """Where the pieces of `text` a cut may fall between start and end: grapheme clusters,
    whole entities, whole `<…>` links and mentions, and whole runs of backticks."""
    start = 0
    while start < len(text):
        found = _MRKDWN_UNIT.match(text, start)
        end = found.end() if found is not None else start + 1
        while end < len(text) and not is_boundary(text, end):
            end += 1
        yield start, end
        start = end


def clip(text: str, limit: int, *, mrkdwn: bool = True) -> str:
    """`text` (escaped) cut to `limit` UTF-16 units with an ellipsis, between grapheme clusters
    and never inside an entity (`&amp;`) or a link/mention (`<…>`).

    With `mrkdwn`, a `*bold*` or `` `code` `` span left open by the cut is closed after the
    ellipsis; plain text (a header, a notification's fallback) has no spans to close."""
    if slack_len(text) <= limit:
        return text
    if limit < 1:
        return ""
    kept, closing = 0, ""  # the longest start that fits, and what closes its open spans
    used = 0
    code = ""  # the run of backticks that opened the code span the cut is in, if any
    bold = False
    for start, end in _units(text):
        unit = text[start:end]
        used += slack_len(unit)
        if used + 1 > limit:
            break
        if mrkdwn and unit.startswith("`"):
            run = "`" * (len(unit) - len(unit.lstrip("`")))
            code = run if not code else ("" if run == code else code)
        elif mrkdwn and unit.startswith("*") and not code:
            bold = not bold
        closers = code + ("*" if bold else "")
        if used + 1 + len(closers) <= limit:
            kept, closing = end, closers
    return text[:kept] + _ELLIPSIS + closing


def _render_code(raw: str) -> str:
    # A zero-width space between adjacent backticks means no run of three can close the fence.
    return re.sub("`(?=`)", "`" + _ZERO_WIDTH_SPACE, escape(raw))


def code_block(text: str, limit: int) -> str:
    """`text` as an escaped ``` code block of at most `limit` UTF-16 units.

    When it does not fit, the start is dropped (a log's tail holds the error), between
    grapheme clusters, and the block opens with a `… (N earlier characters omitted)` line; N
    counts characters (code points) of `text`. Raises ValueError if `limit` cannot even hold
    the fences and that line.
    """
    body = text.rstrip()

    def fenced(skip: int) -> str:
        kept = _render_code(body[skip:])
        if skip == 0:
            return f"```\n{kept}\n```"
        return f"```\n{_OMITTED.format(n=skip)}\n{kept}\n```"

    if slack_len(fenced(0)) <= limit:
        return fenced(0)
    if slack_len(fenced(len(body))) > limit:
        raise ValueError(f"a code block cannot fit in {limit} characters")
    # Dropping a character never makes the block longer (the count of omitted characters
    # gains a digit only when at least one character goes), so binary search the cut.
    low, high = 1, len(body)
    while low < high:
        mid = (low + high) // 2
        if slack_len(fenced(mid)) <= limit:
            high = mid
        else:
            low = mid + 1
    skip = low
    while not is_boundary(body, skip):
        skip += 1  # dropping more keeps it within the limit
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
    return _built(HeaderBlock(text=plain(clip(escaped, MAX_HEADER_TEXT, mrkdwn=False))))


def fallback(escaped: str) -> str:
    """A message's top-level `text` (escaped), cut to the safe length."""
    return clip(escaped, MAX_FALLBACK_TEXT, mrkdwn=False)


def section(mrkdwn: str, *, accessory: ButtonElement | None = None) -> dict[str, Any]:
    """A section of mrkdwn, cut to the section limit, with a button beside it if given."""
    return _built(SectionBlock(text=_mrkdwn(mrkdwn, MAX_SECTION_TEXT), accessory=accessory))


def divider() -> dict[str, Any]:
    """A horizontal rule between parts of a view."""
    return _built(DividerBlock())


def context(*mrkdwn: str) -> dict[str, Any]:
    """A context block of the non-empty texts given, at most as many as a context holds."""
    elements = [_mrkdwn(m, MAX_CONTEXT_TEXT) for m in mrkdwn if m][:MAX_CONTEXT_ELEMENTS]
    return _built(ContextBlock(elements=elements))


def confirm(*, title: str, text: str, confirm: str, deny: str) -> ConfirmObject:
    """A danger confirmation dialog; `text` is cut to its limit (plain text, no emoji)."""
    return ConfirmObject(
        title=plain(title),
        text=PlainTextObject(text=prefix(text, MAX_CONFIRM_TEXT)),
        confirm=plain(confirm),
        deny=plain(deny),
        style="danger",
    )


def button(
    *,
    action_id: str,
    label: str,
    value: str,
    style: str | None,
    confirm: ConfirmObject | None = None,
) -> ButtonElement:
    """A button carrying `value`; a value too long raises (cutting it would misroute the
    click)."""
    if slack_len(value) > MAX_BUTTON_VALUE:
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
            if texts and slack_len(texts[-1]) + 1 + slack_len(line) <= MAX_SECTION_TEXT:
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
