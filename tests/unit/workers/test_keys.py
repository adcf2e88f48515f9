"""The Redis keys and RQ job ids: a persistence format, so their exact spelling is asserted."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rq.job import JOB_ID_PATTERN

from workers import keys

NS = keys.namespace("deploy")


def test_the_namespace_is_dm_and_the_queue_name() -> None:
    assert NS == "dm:deploy"
    assert keys.every_key(NS) == "dm:deploy:*"


@pytest.mark.parametrize(
    ("key", "spelled"),
    [
        (keys.monitor(NS, "lana-bank-abc"), "dm:deploy:monitor:lana-bank-abc"),
        (keys.events(NS, "lana-bank-abc"), "dm:deploy:events:lana-bank-abc"),
        (keys.active(NS), "dm:deploy:active"),
        (keys.lock(NS, "m"), "dm:deploy:lock:m"),
        (keys.decision(NS, "m", 2), "dm:deploy:decision:m:2"),
        (keys.decision(NS, "m", None), "dm:deploy:decision:m:None"),
        (keys.stop(NS, "m"), "dm:deploy:stop:m"),
        (keys.undelivered(NS), "dm:deploy:undelivered"),
        (keys.reaper_lock(NS), "dm:deploy:reaper-lock"),
        (keys.start_lock(NS, "GaloyMoney/lana-bank#12"), "dm:deploy:start:GaloyMoney/lana-bank#12"),
        (keys.inputs(NS, 42), "dm:deploy:inputs:42"),
        (keys.covers(NS, "abc"), "dm:deploy:covers:abc"),
        (keys.history(NS, "abc"), "dm:deploy:history:abc"),
        (keys.shared(NS, "builds", "ci/tests"), "dm:deploy:shared:builds:ci/tests"),
        (keys.fill(NS, "builds", "ci/tests"), "dm:deploy:fill:builds:ci/tests"),
        (keys.needs(NS, "ci/tests"), "dm:deploy:needs:ci/tests"),
        (keys.versions(NS, "ci", "repo", "abc"), "dm:deploy:versions:ci/repo:abc"),
        (keys.log_tail(NS, 42), "dm:deploy:logtail:42"),
        (keys.commit(NS, "abc"), "dm:deploy:commit:abc"),
        (keys.shared(NS, "view", "ci/tests"), "dm:deploy:shared:view:ci/tests"),
        (keys.slack_thread(NS, "m"), "dm:deploy:slack:m"),
        (keys.slack_message(NS, "C1", "1700.01"), "dm:deploy:slack-msg:C1:1700.01"),
        (keys.slack_event(NS, "Ev1"), "dm:deploy:slack-event:Ev1"),
        (keys.slack_user(NS, "U1"), "dm:deploy:slack-user:U1"),
    ],
)
def test_keys_are_spelled_as_stored_redis_data_expects(key: str, spelled: str) -> None:
    # Restart safety: a new release must find what the old one wrote.
    assert key == spelled


def test_slack_thread_fields_are_spelled_as_stored() -> None:
    assert keys.post_field("event:3") == "post:event:3"
    assert keys.inflight_field("dm") == "inflight:dm"
    assert keys.failures_field(7) == "failures:7"
    assert keys.prompt_field(1) == "prompt:1"


def test_slack_user_fields_are_spelled_as_stored() -> None:
    assert keys.DM_FIELD == "dm"
    assert keys.journey_field("cmd-1") == "journey:cmd-1"
    assert keys.JOURNEY_FIELD_PREFIX == "journey:"


def test_every_key_lies_in_its_namespace_and_namespaces_do_not_overlap() -> None:
    one, other = keys.namespace("a"), keys.namespace("b")
    made = [keys.monitor(one, "m"), keys.active(one), keys.slack_event(one, "e")]
    assert all(k.startswith(one + ":") for k in made)
    assert not any(re.fullmatch(keys.every_key(other).replace("*", ".*"), k) for k in made)


def test_job_ids_are_derived_from_domain_ids() -> None:
    assert keys.tick_job("deploy", "lana-bank-abc", 3) == "deploy-tick-lana-bank-abc-3"
    assert keys.tick_job("deploy", "m", 3, "-r1700") == "deploy-tick-m-3-r1700"
    assert keys.deliver_job("deploy", "m", 5, 1700) == "deploy-deliver-m-5-1700"
    assert keys.start_job("deploy", "0a1b") == "deploy-start-0a1b"
    assert keys.question_job("deploy", "0a1b") == "deploy-ask-0a1b"
    assert keys.home_job("deploy", "U1", "m", 7) == "deploy-home-U1-m-7"
    # The same domain ids give the same job: RQ refuses a second job under an existing id.
    assert keys.tick_job("deploy", "m", 3) == keys.tick_job("deploy", "m", 3)


def test_job_ids_replace_what_rq_refuses() -> None:
    assert keys.job_id("dm test", "a:b/c", "é") == "dm_test-a_b_c-_"


@given(st.text(min_size=1), st.lists(st.one_of(st.text(), st.integers())))
def test_every_job_id_is_one_rq_accepts(queue_name: str, parts: list[str | int]) -> None:
    assert JOB_ID_PATTERN.fullmatch(keys.job_id(queue_name, *parts))


def test_as_text_reads_bytes_and_str() -> None:
    assert keys.as_text(b"caf\xc3\xa9") == "café"
    assert keys.as_text("café") == "café"
    assert keys.as_text(3) == "3"


def test_the_reaper_lock_lasts_most_of_a_period() -> None:
    assert keys.reaper_lock_ms(1.0) == 900
    assert keys.reaper_lock_ms(0.0) == 1
