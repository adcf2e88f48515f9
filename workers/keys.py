"""Every Redis key and RQ job id deploy-monitor builds, and how long what they hold is kept.

The strings here are a persistence format: a worker restarted on a new release must find the
monitors, caches and Slack threads the old one wrote, so a key never changes its spelling.

Every key starts with a namespace, `dm:<queue name>` (`namespace`): deployments sharing one
Redis (and the demo, and each test) never see each other's monitors, nor each other's
Concourse build ids in the caches. Under a namespace `<ns>`:

    <ns>:monitor:<id>            the Monitor record (JSON)
    <ns>:events:<id>             its event log (a stream; front ends read it, nothing is lost)
    <ns>:active                  sorted set: active monitor id → when its next tick is due
    <ns>:lock:<id>               held while a tick runs (renewed while it runs; expires if its
                                 worker dies)
    <ns>:decision:<id>:<n>       the first answer to failure prompt n (SET NX: first wins)
    <ns>:rerun:<id>:<n>          who asked Concourse to rerun prompt n's build, and the new
                                 build's name once made (SET NX: one rerun per prompt)
    <ns>:rerun-unanswered:<id>:<n>  set when a rerun request got no answer (it may have made
                                 the rerun): the next ask looks for one before asking again
    <ns>:stop:<id>               a stop request
    <ns>:undelivered             sorted set: finished monitor id → since when its notifications
                                 wait to be delivered
    <ns>:reaper-lock             held for one reaper pass across all workers
    <ns>:start:<target>          held while a Slack start job resolves and launches a target
                                 (`<repo>:pr-12`, `<repo>:<sha>`, or a monitor id)

    <ns>:inputs:<build id>       a build's input refs (immutable once recorded)
    <ns>:covers:<sha>            hash: ref → 1/0, whether ref is sha or a descendant of it
    <ns>:history:<sha>           the commits reachable from sha, listed since a time (JSON)
    <ns>:shared:<kind>:<name>    one observation shared by every monitor and worker, with the
                                 time it was taken: "<taken_at>\\n<payload>"; kind `view`
                                 (name `<pipeline/job>`): the chain view's record of a job, its
                                 newest builds (workers/viewer.py); kind `status` (name
                                 `default-path:<repo>`): what a repository's staging runs, as
                                 the App Home shows it (bot/slack/home.py)
    <ns>:needs:<pipeline/job>    hash: monitor id → "<scan_from> <until>", the lowest build id
                                 each monitor needs listed (the shared listing's floor)
    <ns>:fill:<kind>:<name>      held while one worker refreshes a shared observation
    <ns>:versions:<p/r>:<sha>    ids of the resource versions whose ref is sha (once seen, a
                                 version stays)
    <ns>:logtail:<build id>      the log tail of a finished build
    <ns>:commit:<sha>            a commit's headline, date and files (JSON; immutable)

    <ns>:slack:<id>              hash: where a monitor lives in Slack (bot/slack/threads.py);
                                 fields `post:<message key>`, `inflight:<message key>`,
                                 `failures:<seq>`, `prompt:<n>` besides the plain ones
    <ns>:slack-msg:<channel>:<ts>  which monitor and prompt a failure message belongs to
    <ns>:slack-event:<event id>  an Events API delivery already handled (Slack retries)
    <ns>:slack-user:<user id>    hash: what the App Home keeps per person (bot/slack/home.py):
                                 `dm` (their DM-on-completion choice) and `journey:<run>`
                                 (their last journeys, each as JSON)
    <ns>:slack-login:<login>     the Slack user who said `link <login>` (bot/slack/people.py)
    <ns>:slack-email:<email>     what users.lookupByEmail answered for a commit author's email
                                 (a user id, or "" for users_not_found), cached a day
    <ns>:slack-channel-repo      hash: channel → the repository it chose with `use`
                                 (bot/slack/channels.py)

    <ns>:subscribed              set: the repositories some channel subscribed to
    <ns>:subscriptions:<repo>    hash: channel → its subscription (mode, who, since; JSON)
                                 (workers/subscriptions.py)
    <ns>:main-seen:<repo>        the newest commit on main the watcher has handed on
    <ns>:main-lock:<repo>        held for one look at main across all workers

RQ's own keys (`rq:…`) are RQ's format, named by RQ's API; only the SCAN patterns that clean up
after a queue are here.
"""

from __future__ import annotations

import string
from typing import Any

# -- how long things are kept ---------------------------------------------------------------

# Finished monitors, their logs, decisions and Slack threads stay readable (for `list`,
# threads, debugging) this long.
FINISHED_TTL_SECONDS = 7 * 24 * 3600
# Immutable facts (build inputs, ancestry, version ids, log tails) are cached this long.
CACHE_TTL_SECONDS = 14 * 24 * 3600
# The chain view's record of a job is carried forward by each refresh (its depth and usual
# durations build up): Redis drops one nobody asked about for a day (garbage collection only).
VIEW_GC_SECONDS = 24 * 3600
# A rerun claim whose Concourse request never came back (its process died) expires after
# this, so the prompt can be answered again; a claim Concourse answered is kept like decisions.
RERUN_CLAIM_SECONDS = 60
# A commit author's Slack account, as users.lookupByEmail answered, is trusted this long.
EMAIL_LOOKUP_TTL_SECONDS = 24 * 3600
# Slack redelivers an Events API event for a few minutes at most; an hour covers it.
EVENT_DEDUPE_SECONDS = 3600

# RQ keeps a finished tick's or delivery's result this long (only for inspection).
TICK_RESULT_TTL_SECONDS = 300
# A failed tick stays in RQ's FailedJobRegistry this long, to be looked at.
TICK_FAILURE_TTL_SECONDS = 24 * 3600
# A start job's result (the reply it gave) is kept this long.
START_RESULT_TTL_SECONDS = 3600
# RQ's job timeout is the tick's own budget plus this, so the tick's timeout fires first.
JOB_TIMEOUT_MARGIN_SECONDS = 30


def main_lock_ms(period: float) -> int:
    """How long one look at main holds `main_lock`: most of a poll interval, so every worker
    asking in one interval finds it taken, and the next interval's look finds it free."""
    return max(1, int(period * 900))


def reaper_lock_ms(period: float) -> int:
    """How long one reaper pass holds `reaper_lock`: most of a period, so the next period's
    pass (on any worker) finds it free."""
    return max(1, int(period * 900))


def as_text(value: Any) -> str:
    """A value read from Redis as text: redis-py returns bytes (RQ needs a connection without
    `decode_responses`)."""
    return value.decode() if isinstance(value, bytes) else str(value)


# -- namespaces -----------------------------------------------------------------------------

NAMESPACE_PREFIX = "dm"


def namespace(queue_name: str) -> str:
    """The namespace of the deployment working RQ queue `queue_name`."""
    return f"{NAMESPACE_PREFIX}:{queue_name}"


def every_key(ns: str) -> str:
    """A SCAN pattern matching every key of namespace `ns` (to clean up after a run)."""
    return f"{ns}:*"


# -- monitors -------------------------------------------------------------------------------


def monitor(ns: str, monitor_id: str) -> str:
    """The Monitor record (JSON)."""
    return f"{ns}:monitor:{monitor_id}"


def events(ns: str, monitor_id: str) -> str:
    """The monitor's event log (a stream)."""
    return f"{ns}:events:{monitor_id}"


def active(ns: str) -> str:
    """Sorted set of active monitor ids, scored by when their next tick is due."""
    return f"{ns}:active"


def lock(ns: str, monitor_id: str) -> str:
    """The lock a tick (or a delivery) holds on its monitor."""
    return f"{ns}:lock:{monitor_id}"


def decision(ns: str, monitor_id: str, prompt: int | None) -> str:
    """The first answer to failure prompt `prompt` (None, no prompt open: never written)."""
    return f"{ns}:decision:{monitor_id}:{prompt}"


def rerun(ns: str, monitor_id: str, prompt: int) -> str:
    """Who asked for the rerun of failure prompt `prompt`'s build (one rerun per prompt)."""
    return f"{ns}:rerun:{monitor_id}:{prompt}"


def rerun_unanswered(ns: str, monitor_id: str, prompt: int) -> str:
    """Set when Concourse did not answer a rerun request of prompt `prompt`."""
    return f"{ns}:rerun-unanswered:{monitor_id}:{prompt}"


def stop(ns: str, monitor_id: str) -> str:
    """Who asked the monitor to stop."""
    return f"{ns}:stop:{monitor_id}"


def undelivered(ns: str) -> str:
    """Sorted set of finished monitors whose notifications are not all delivered, by since
    when."""
    return f"{ns}:undelivered"


def reaper_lock(ns: str) -> str:
    """Held for one reaper pass across every worker of the namespace."""
    return f"{ns}:reaper-lock"


def start_lock(ns: str, target: str) -> str:
    """Held while a start job resolves and launches `target` (one start per target)."""
    return f"{ns}:start:{target}"


# -- following main (workers/subscriptions.py, workers/mainline.py) -------------------------


def subscribed(ns: str) -> str:
    """Set of the repositories at least one channel subscribed to."""
    return f"{ns}:subscribed"


def subscriptions(ns: str, repository: str) -> str:
    """Hash: channel id → that channel's subscription to `repository`'s main (JSON)."""
    return f"{ns}:subscriptions:{repository}"


def main_seen(ns: str, repository: str) -> str:
    """The newest commit on `repository`'s main that the watcher handed on."""
    return f"{ns}:main-seen:{repository}"


def main_lock(ns: str, repository: str) -> str:
    """Held for one look at `repository`'s main across every worker."""
    return f"{ns}:main-lock:{repository}"


def digest_look(ns: str, repository: str, day: str) -> str:
    """Taken by the one worker that gathers `repository`'s digest of what waits on `day`
    (`YYYY-MM-DD`, UTC): one look a day, whatever the number of workers."""
    return f"{ns}:digest-look:{repository}:{day}"


def digest_sent(ns: str, repository: str, channel: str, day: str) -> str:
    """Taken before `repository`'s digest is posted in `channel` on `day`: posted once."""
    return f"{ns}:digest-sent:{repository}:{channel}:{day}"


# A day's digest claims outlive the day (and a clock skew between workers) then go.
DIGEST_CLAIM_TTL_SECONDS = 2 * 24 * 3600


# -- caches and shared observations (workers/observe.py, workers/ancestry.py) ----------------


def inputs(ns: str, build_id: int) -> str:
    """A build's input refs (JSON)."""
    return f"{ns}:inputs:{build_id}"


def covers(ns: str, sha: str) -> str:
    """Hash: ref → "1"/"0", whether ref is `sha` or a descendant of it."""
    return f"{ns}:covers:{sha}"


def history(ns: str, sha: str) -> str:
    """The commits reachable from `sha` that were read (a CommitHistory, JSON)."""
    return f"{ns}:history:{sha}"


def shared(ns: str, kind: str, name: str) -> str:
    """One observation of `kind` (builds, input_to, pending; and what holds builds back:
    pipelines, jobs, resources, preparation) shared by every worker."""
    return f"{ns}:shared:{kind}:{name}"


def fill(ns: str, kind: str, name: str) -> str:
    """Held while one worker refreshes the shared observation `shared(ns, kind, name)`."""
    return f"{ns}:fill:{kind}:{name}"


def needs(ns: str, job_key: str) -> str:
    """Hash: monitor id → the lowest build id it needs listed for job `job_key`, and until
    when."""
    return f"{ns}:needs:{job_key}"


def versions(ns: str, pipeline: str, resource: str, sha: str) -> str:
    """Ids of the versions of `pipeline`'s `resource` whose ref is `sha` (JSON)."""
    return f"{ns}:versions:{pipeline}/{resource}:{sha}"


def log_tail(ns: str, build_id: int) -> str:
    """The log tail of a finished build."""
    return f"{ns}:logtail:{build_id}"


def commit(ns: str, sha: str) -> str:
    """A commit as `where` read it from GitHub (headline, date, files: JSON)."""
    return f"{ns}:commit:{sha}"


# -- Slack (bot/slack/threads.py) -----------------------------------------------------------


def slack_thread(ns: str, monitor_id: str) -> str:
    """Hash: the monitor's Slack thread (channel, parent, cursor, posts, prompts)."""
    return f"{ns}:slack:{monitor_id}"


def slack_message(ns: str, channel: str, ts: str) -> str:
    """Which monitor and prompt the failure message (channel, ts) belongs to."""
    return f"{ns}:slack-msg:{channel}:{ts}"


def slack_event(ns: str, event_id: str) -> str:
    """Set once an Events API delivery was handled."""
    return f"{ns}:slack-event:{event_id}"


def slack_user(ns: str, user_id: str) -> str:
    """Hash: one Slack user's App Home data (their DM choice, their last journeys); kept
    without expiry: a preference must outlive any monitor."""
    return f"{ns}:slack-user:{user_id}"


def slack_login(ns: str, login: str) -> str:
    """The Slack user id who linked GitHub login `login` (logins are case-insensitive)."""
    return f"{ns}:slack-login:{login.lower()}"


def slack_email(ns: str, email: str) -> str:
    """users.lookupByEmail's answer for `email`: a user id, or "" (no such user)."""
    return f"{ns}:slack-email:{email.lower()}"


def slack_channel_repositories(ns: str) -> str:
    """Hash: channel id → the repository its targets mean when they name none (`use`)."""
    return f"{ns}:slack-channel-repo"


# Fields of `slack_user`.
DM_FIELD = "dm"
# The GitHub login the person linked (`/deploy-monitor link <login>`).
LOGIN_FIELD = "github_login"
# How many finished journeys each person's App Home lists.
HOME_JOURNEYS = 10


def journey_field(run: str) -> str:
    """Field of `slack_user`: one finished journey (one run of a monitor), as JSON."""
    return f"journey:{run}"


JOURNEY_FIELD_PREFIX = journey_field("")


def post_field(message_key: str) -> str:
    """Field of `slack_thread`: the ts of a message known to be in Slack."""
    return f"post:{message_key}"


def inflight_field(message_key: str) -> str:
    """Field of `slack_thread`: a post whose outcome is unknown (where, since when)."""
    return f"inflight:{message_key}"


def failures_field(seq: int) -> str:
    """Field of `slack_thread`: how many times delivering event `seq` failed."""
    return f"failures:{seq}"


def prompt_field(prompt: int) -> str:
    """Field of `slack_thread`: where failure prompt `prompt` was posted, and its event."""
    return f"prompt:{prompt}"


# -- RQ ------------------------------------------------------------------------------------

# What RQ accepts in a job id (`str.isalnum` would let "é" through, which RQ refuses).
_JOB_ID_CHARS = frozenset(string.ascii_letters + string.digits + "-_")


def job_id(queue_name: str, *parts: object) -> str:
    """An RQ job id from domain ids. RQ job ids are global to the Redis database, so the queue
    name leads (another deployment may follow the same commit); RQ allows only letters,
    digits, `-` and `_` (ASCII), so anything else becomes `_`."""
    raw = "-".join([queue_name, *map(str, parts)])
    return "".join(ch if ch in _JOB_ID_CHARS else "_" for ch in raw)


def tick_job(queue_name: str, monitor_id: str, seq: int, suffix: str = "") -> str:
    """The tick of `monitor_id` at `seq`; a suffix makes extra kicks (reaper, decisions, a
    rate-limit retry) distinct from the regular chain, which has one tick per seq."""
    return job_id(queue_name, "tick", monitor_id, f"{seq}{suffix}")


def deliver_job(queue_name: str, monitor_id: str, events_emitted: int, at_ms: int) -> str:
    """A retry of the delivery of a monitor's first `events_emitted` events, at `at_ms`."""
    return job_id(queue_name, "deliver", monitor_id, events_emitted, at_ms)


def start_job(queue_name: str, command_id: str) -> str:
    """The start job of one slash command (a retried command gets the same id)."""
    return job_id(queue_name, "start", command_id)


def home_job(queue_name: str, user_id: str, monitor_id: str, events_emitted: int) -> str:
    """The job publishing `user_id`'s App Home after `monitor_id` reached `events_emitted`
    events (a delivery repeated asks for the same job)."""
    return job_id(queue_name, "home", user_id, monitor_id, events_emitted)


def follow_job(queue_name: str, repository: str, head: str) -> str:
    """The job following the commits the watcher found on `repository`'s main up to `head`
    (a look repeated after a crash asks for the same job)."""
    return job_id(queue_name, "follow", repository, head[:12])


def question_job(queue_name: str, command_id: str) -> str:
    """The job answering one `where` or `status` slash command (a retried command gets the
    same id)."""
    return job_id(queue_name, "ask", command_id)


def rq_queue_keys(queue_name: str) -> str:
    """A SCAN pattern for RQ's keys ending in the queue's name (its registries)."""
    return f"rq:*:{queue_name}"


def rq_keys_naming(queue_name: str) -> str:
    """A SCAN pattern for every RQ key naming the queue (registries, and its jobs: their ids
    start with the queue name)."""
    return f"rq:*{queue_name}*"
