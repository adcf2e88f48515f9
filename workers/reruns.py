"""Reruns asked for from a failure prompt: the Slack button, `watch`'s third answer and the
`rerun` failure policy all come here.

One rerun per prompt, however many presses and front ends: the claim is a SET NX keyed on
(monitor, prompt) (`workers.keys.rerun`), taken before Concourse is asked and given back when
Concourse makes no rerun. A request that got no answer (a timeout, a lost connection) may have
made the rerun all the same: the job's builds since the failed one are looked at for a rerun of
it, then and at every later ask, before Concourse is asked again; a rerun found is ours. A
rerun Concourse made is recorded as the prompt's decision, "continue" with the rerun, so the
monitor waits for it; it is ours (same inputs), and the transition already follows a job's
reruns.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from workers.concourse import Build, ConcourseClient
from workers.errors import ConcourseError, ConcourseUnavailable
from workers.events import RerunAsked
from workers.monitor import FailurePrompt
from workers.store import MonitorStore

RerunStatus = Literal["started", "already", "decided", "gone", "refused", "unavailable"]


@dataclass(frozen=True)
class RerunOutcome:
    """What came of asking: `started` (`rerun` is the new build), `already` (`by` asked
    first; `rerun` once made), `decided` (`by` answered the prompt with `choice`), `gone`
    (the prompt is no longer open), `refused` (Concourse said no: `detail`; a 403 names the
    role needed) or `unavailable` (Concourse did not answer: worth asking again)."""

    status: RerunStatus
    rerun: RerunAsked | None = None
    by: str = ""
    choice: str = ""
    detail: str = ""


def request_rerun(
    store: MonitorStore, concourse: ConcourseClient, monitor_id: str, prompt: int, by: str
) -> RerunOutcome:
    """Ask Concourse to rerun the build failure prompt `prompt` is about, once, for `by`
    (a Slack user id, a terminal user, or `policy`). Who may ask is the caller's rule."""
    monitor = store.load(monitor_id)
    if monitor is None or monitor.done:
        return RerunOutcome("gone")
    open_prompt = monitor.prompt
    earlier = store.decision(monitor_id, prompt)
    if earlier is not None:
        if earlier.rerun is not None:
            return RerunOutcome("already", rerun=earlier.rerun, by=earlier.by)
        return RerunOutcome("decided", by=earlier.by, choice=earlier.choice)
    if open_prompt is None or open_prompt.prompt != prompt:
        return RerunOutcome("gone")
    if not open_prompt.pipeline or not open_prompt.build_name:
        return RerunOutcome("refused", detail="this failure was recorded before reruns could be")
    claim = store.claim_rerun(monitor_id, prompt, by)
    if claim is not None:
        if claim.rerun_name is None:
            return RerunOutcome("already", by=claim.by)  # Concourse is being asked now
        made = RerunAsked(
            job=open_prompt.job, build_name=open_prompt.build_name, rerun_name=claim.rerun_name
        )
        # Whoever made it stopped before recording it (a killed worker): record it now.
        store.record_decision(monitor_id, prompt, "continue", claim.by, rerun=made)
        return RerunOutcome("already", rerun=made, by=claim.by)
    asked = _ask_concourse(store, concourse, monitor_id, open_prompt)
    if isinstance(asked, RerunOutcome):
        return asked
    build = asked
    rerun = RerunAsked(
        job=open_prompt.job, build_name=open_prompt.build_name, rerun_name=build.name
    )
    store.finish_rerun(monitor_id, prompt, by, build.name)
    if not store.record_decision(monitor_id, prompt, "continue", by, rerun=rerun):
        # Someone answered while Concourse was asked: the rerun exists all the same.
        earlier = store.decision(monitor_id, prompt)
        if earlier is not None and earlier.choice == "stop":
            return RerunOutcome("started", rerun=rerun, by=earlier.by, choice="stop")
    return RerunOutcome("started", rerun=rerun, by=by)


def _ask_concourse(
    store: MonitorStore, concourse: ConcourseClient, monitor_id: str, prompt: FailurePrompt
) -> Build | RerunOutcome:
    """The rerun Concourse made for the claim just taken, or what to answer instead (the
    claim given back)."""
    try:
        made = None
        if store.rerun_unanswered(monitor_id, prompt.prompt):
            made = _rerun_made(concourse, prompt)  # Concourse unavailable: not asked blind
        return made or concourse.rerun_build(prompt.pipeline, prompt.job, prompt.build_name)
    except ConcourseUnavailable as exc:
        # The request may have reached Concourse, and only its answer been lost.
        try:
            made = _rerun_made(concourse, prompt)
        except ConcourseError:
            made = None
        if made is not None:
            return made
        store.release_rerun(monitor_id, prompt.prompt, unanswered=True)
        return RerunOutcome("unavailable", detail=str(exc))
    except ConcourseError as exc:
        store.release_rerun(monitor_id, prompt.prompt)
        return RerunOutcome("refused", detail=str(exc))


def _rerun_made(concourse: ConcourseClient, prompt: FailurePrompt) -> Build | None:
    """The newest rerun of the prompt's failed build, if Concourse has one (reruns are newer
    builds of the job, naming the original in `rerun_of`)."""
    builds = concourse.job_builds(prompt.pipeline, prompt.job, since_id=prompt.build_id)
    reruns = [b for b in builds if b.rerun_of is not None and b.rerun_of.id == prompt.build_id]
    return max(reruns, key=lambda b: b.id, default=None)
