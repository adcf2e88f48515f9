"""What the bot keeps per Slack user: whether they want the DM when a journey ends, their
last journeys (for their App Home), and which GitHub login is theirs.

One Redis hash per person (`keys.slack_user`), kept without expiry: field `dm` ("1"/"0",
absent = on, today's behaviour) and one `journey:<run>` field per finished journey (JSON).
A journey is recorded under its run id, so the notifier recording it again after a crash
changes nothing; only the newest `keys.HOME_JOURNEYS` are kept.

`/deploy-monitor link <login>` maps a GitHub login to the person (`keys.slack_login`, and the
`github_login` field of their hash, so linking another login drops the old one): authors of
commits hear about their own change. A login linked by two people belongs to the last one.
"""

from __future__ import annotations

from typing import Literal

import redis
from pydantic import BaseModel, ConfigDict, ValidationError

from workers import keys
from workers.keys import as_text

JourneyOutcome = Literal["deployed", "completed", "stopped"]


class JourneyRecord(BaseModel):
    """One finished journey as the requester's Home lists it (a persistence format)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    monitor_id: str
    run: str
    sha: str
    headline: str
    outcome: JourneyOutcome
    # Seconds from the first stage's start to the end; None when nothing ran.
    total: int | None = None
    finished_at: float
    permalink: str = ""
    pr_number: int | None = None

    @property
    def short_sha(self) -> str:
        return self.sha[:7]


class SlackPeople:
    """Redis-backed per-person App Home data."""

    def __init__(self, connection: redis.Redis, namespace: str = "dm") -> None:
        self.redis = connection
        self.ns = namespace  # the engine store's namespace

    def _key(self, user_id: str) -> str:
        return keys.slack_user(self.ns, user_id)

    def wants_dm(self, user_id: str) -> bool:
        """Whether `user_id` gets the DM when one of their journeys ends (default: yes)."""
        return as_text(self.redis.hget(self._key(user_id), keys.DM_FIELD) or b"1") != "0"

    def set_dm(self, user_id: str, wanted: bool) -> None:
        self.redis.hset(self._key(user_id), keys.DM_FIELD, "1" if wanted else "0")

    def link(self, user_id: str, login: str) -> str | None:
        """Make GitHub `login` the person's; returns the login they had linked before."""
        key = self._key(user_id)
        earlier = self.login_of(user_id)
        changed = earlier is not None and earlier.lower() != login.lower()
        with self.redis.pipeline() as pipe:
            # The old login is dropped only if it still points here: someone may have taken it.
            if changed and earlier and self.user_for_login(earlier) == user_id:
                pipe.delete(keys.slack_login(self.ns, earlier))
            pipe.set(keys.slack_login(self.ns, login), user_id)
            pipe.hset(key, keys.LOGIN_FIELD, login)
            pipe.execute()
        return earlier if changed else None

    def login_of(self, user_id: str) -> str | None:
        """The GitHub login the person linked, if any."""
        raw = self.redis.hget(self._key(user_id), keys.LOGIN_FIELD)
        return as_text(raw) if raw else None

    def user_for_login(self, login: str) -> str | None:
        """The Slack user who linked GitHub `login`, if anyone did."""
        raw = self.redis.get(keys.slack_login(self.ns, login))
        return as_text(raw) if raw else None

    def cached_email(self, email: str) -> str | None:
        """users.lookupByEmail's remembered answer for `email`: a user id, "" when Slack has
        nobody with it, None when not asked lately."""
        raw = self.redis.get(keys.slack_email(self.ns, email))
        return None if raw is None else as_text(raw)

    def remember_email(self, email: str, user_id: str) -> None:
        """Remember who has `email` ("" for nobody) for a day: one look-up per author a day."""
        self.redis.set(keys.slack_email(self.ns, email), user_id, ex=keys.EMAIL_LOOKUP_TTL_SECONDS)

    def record_journey(self, user_id: str, journey: JourneyRecord) -> None:
        """Add a finished journey (again: no change) and forget all but the newest ones."""
        key = self._key(user_id)
        self.redis.hset(key, keys.journey_field(journey.run), journey.model_dump_json())
        stale = self._journeys(user_id)[keys.HOME_JOURNEYS :]
        if stale:
            # Two writers trimming at once delete the same oldest fields: harmless.
            self.redis.hdel(key, *(keys.journey_field(j.run) for j in stale))

    def journeys(self, user_id: str) -> list[JourneyRecord]:
        """The person's last journeys, newest first."""
        return self._journeys(user_id)[: keys.HOME_JOURNEYS]

    def _journeys(self, user_id: str) -> list[JourneyRecord]:
        found = []
        for field, raw in self.redis.hgetall(self._key(user_id)).items():
            if not as_text(field).startswith(keys.JOURNEY_FIELD_PREFIX):
                continue
            try:
                found.append(JourneyRecord.model_validate_json(raw))
            except ValidationError:
                continue  # written by a release that stored something else: not shown
        return sorted(found, key=lambda j: j.finished_at, reverse=True)
