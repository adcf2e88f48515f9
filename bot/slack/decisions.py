"""Continue or stop after a failure: by button or by reaction, first answer wins.

Only the requester or a configured admin decides; anyone else is told so privately. The
decision is recorded in Redis with SET NX (first wins across bot processes), the failure
message is edited to say who decided (its buttons removed), and the monitor is ticked at once.
"""

from __future__ import annotations

import logging

from slack_sdk.errors import SlackApiError

from bot.slack import render
from bot.slack.client import classify
from bot.slack.face import SlackFace
from bot.slack.render import decided_message
from bot.slack.threads import FailurePromptMessage
from workers.events import DecisionChoice

log = logging.getLogger(__name__)

CONTINUE_REACTIONS = frozenset({"arrow_forward", "white_check_mark", "heavy_check_mark"})
STOP_REACTIONS = frozenset({"octagonal_sign", "x", "stop_sign"})


def choice_for_reaction(reaction: str) -> DecisionChoice | None:
    """`arrow_forward` → continue, `octagonal_sign` → stop; skin tones ignored; else None."""
    name = reaction.split("::", 1)[0]
    if name in CONTINUE_REACTIONS:
        return "continue"
    if name in STOP_REACTIONS:
        return "stop"
    return None


def decide(
    face: SlackFace, prompt: FailurePromptMessage, choice: DecisionChoice, user_id: str
) -> str | None:
    """Apply a decision. Returns None when it was taken, else a message for that user alone."""
    store = face.engine.store
    monitor = store.load(prompt.monitor_id)
    if monitor is None or monitor.done:
        return render.NO_LONGER_FOLLOWED
    requester = monitor.requester or ""
    if user_id != requester and user_id not in face.settings.admins:
        return render.only_requester_decides(requester)
    if not store.record_decision(monitor.id, prompt.prompt, choice, user_id):
        earlier = store.decision(monitor.id, prompt.prompt)
        if earlier is None:
            return render.ALREADY_DEALT_WITH
        return render.already_decided(earlier.by, earlier.choice)
    message = decided_message(prompt.event, choice=choice, by=user_id)
    try:
        face.client.chat_update(
            channel=prompt.channel, ts=prompt.ts, text=message.text, blocks=message.blocks
        )
    except SlackApiError as exc:
        # The decision stands; the thread still reports it when the monitor acts on it.
        log.warning("could not edit the failure message: %s", classify(exc).error)
    face.engine.kick(monitor.id, "d")
    return None
