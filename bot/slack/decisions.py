"""Continue, rerun or stop after a failure: by button or by reaction, first answer wins.

Only the requester or a configured admin decides; anyone else is told so privately. The
decision is recorded in Redis with SET NX (first wins across bot processes), the failure
message is edited to say who decided (its buttons removed), and the monitor is ticked at once.
A rerun is asked of Concourse once per prompt (`workers.reruns`), then recorded as "continue"
with the rerun, so the monitor follows it; the thread says who asked and the new build.
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
from workers.reruns import request_rerun

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
    refusal = _may_decide(face, monitor.requester, user_id)
    if refusal is not None:
        return refusal
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


def rerun(face: SlackFace, prompt: FailurePromptMessage, user_id: str) -> str | None:
    """Ask Concourse to rerun the failed build. Returns None when the rerun was made (the
    thread says so), else a message for that user alone (a refusal, a 403 with the role
    Concourse needs, someone who asked or decided first)."""
    store = face.engine.store
    monitor = store.load(prompt.monitor_id)
    if monitor is None or monitor.done:
        return render.NO_LONGER_FOLLOWED
    refusal = _may_decide(face, monitor.requester, user_id)
    if refusal is not None:
        return refusal
    outcome = request_rerun(store, face.engine.concourse, monitor.id, prompt.prompt, user_id)
    match outcome.status:
        case "gone":
            return render.ALREADY_DEALT_WITH
        case "decided":
            return render.already_decided(outcome.by, outcome.choice)
        case "already":
            return render.rerun_already_asked(outcome.by, outcome.rerun)
        case "refused":
            return render.rerun_refused(prompt.event, outcome.detail)
        case "unavailable":
            return render.rerun_unavailable(prompt.event, outcome.detail)
    assert outcome.rerun is not None
    if outcome.choice == "stop":
        return render.rerun_but_stopped(outcome.rerun, outcome.by)
    message = decided_message(prompt.event, choice="continue", by=user_id, rerun=outcome.rerun)
    try:
        face.client.chat_update(
            channel=prompt.channel, ts=prompt.ts, text=message.text, blocks=message.blocks
        )
    except SlackApiError as exc:
        log.warning("could not edit the failure message: %s", classify(exc).error)
    face.engine.kick(monitor.id, "d")
    return None


def _may_decide(face: SlackFace, requester: str | None, user_id: str) -> str | None:
    """None when `user_id` may answer (the requester or an admin), else why not."""
    if user_id != (requester or "") and user_id not in face.settings.admins:
        return render.only_requester_decides(requester or "")
    return None
