"""A scriptable, in-process fake of the Concourse API (7.11), for tests and the demo.

It mimics what a commit-following bot sees of a real Concourse (see
/work/shared/reference/concourse-api.md): the Dex password grant at `/sky/issuer/token` with
opaque access tokens, 401/403/404 in the order the real wrappers produce them, build listings
sorted `COALESCE(rerun_of, id) DESC, id DESC` with the real `from`/`to`/`limit` and `Link`
behaviour, omitempty fields left out, `filter=` containment on versions, `input_to`, and build
event streams that replay history, go live, end with `end` and then stay open until the client
hangs up.

A test or the demo drives it from its own thread (`create_build`, `start_build`, `log`,
`finish_build`, `rerun`, …) while clients poll it over HTTP. Every scripting method is
thread-safe; build event streams wake up as soon as the script adds an event.

One class, put together from one module per concern: `_model` (the records and which builds a
job shows), `_state` (the shared state and lock-held helpers), `_script` (what tests drive),
`_auth` (password grant, tokens, the 404/401/403 order), `_paging` (`from`/`to`/`limit`),
`_routes` (the reads), `_events` (event streams), `_holds` (pauses, archives, pins and a
pending build's preparation), `_reruns` (reruns asked for over the API), `_simulator`
(routes and scripted faults).
"""

from simulators.concourse._events import STREAM_LINGER_SECONDS
from simulators.concourse._model import (
    CONCOURSE_VERSION,
    DEFAULT_LIMIT,
    FLY_CLIENT,
    TERMINAL_STATUSES,
    JobInput,
)
from simulators.concourse._simulator import ConcourseSimulator

__all__ = [
    "CONCOURSE_VERSION",
    "DEFAULT_LIMIT",
    "FLY_CLIENT",
    "STREAM_LINGER_SECONDS",
    "TERMINAL_STATUSES",
    "ConcourseSimulator",
    "JobInput",
]
