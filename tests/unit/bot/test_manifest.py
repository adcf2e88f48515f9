"""manifest.yml is a valid Slack app manifest and grants what the bot uses, and no more."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from simulators.slack import HISTORY_SCOPES, METHOD_SCOPES

ROOT = Path(__file__).resolve().parents[3]
# A copy of Slack's schema (see tests/data/README.md): tests must not need ../shared.
SCHEMA_PATH = ROOT / "tests" / "data" / "slack-manifest.schema.1.0.0.json"
BOT_URL = "https://deploy-monitor.example.com/slack/events"

# Web API methods the bot calls, mapped to scopes through the simulator's table.
BOT_METHODS = [
    "auth.test",
    "chat.postMessage",
    "chat.update",
    "chat.postEphemeral",
    "chat.delete",
    "chat.getPermalink",
    "reactions.add",
    "conversations.join",
    "conversations.info",
    "conversations.open",
    "conversations.replies",
    "conversations.history",
    "views.publish",
    "users.lookupByEmail",
]
# Scopes that come from features rather than methods.
FEATURE_SCOPES = {
    "commands",  # the slash command
    "reactions:read",  # the reaction_added event
    "groups:read",  # conversations.info on private channels (the simulator checks channels:read)
    # conversations.replies / .history: one scope per kind of conversation read back (the
    # thread in a public or private channel, the requester's DM).
    *HISTORY_SCOPES.values(),
}


@pytest.fixture(scope="module")
def manifest() -> dict[str, Any]:
    loaded = yaml.safe_load((ROOT / "manifest.yml").read_text())
    assert isinstance(loaded, dict)
    return loaded


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft7Validator:
    schema = json.loads(SCHEMA_PATH.read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def test_manifest_matches_slacks_schema(
    manifest: dict[str, Any], validator: jsonschema.Draft7Validator
) -> None:
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(manifest)]
    assert errors == []


def test_schema_catches_mistakes(
    manifest: dict[str, Any], validator: jsonschema.Draft7Validator
) -> None:
    # Guards against a schema that accepts anything (e.g. a wrong draft or a stray $ref).
    broken = json.loads(json.dumps(manifest))
    broken["display_information"]["name"] = "x" * 36
    broken["features"]["slash_commands"][0]["command"] = "deploy-monitor"
    assert len(list(validator.iter_errors(broken))) == 2


def test_slash_command(manifest: dict[str, Any]) -> None:
    (command,) = manifest["features"]["slash_commands"]
    assert command["command"] == "/deploy-monitor"
    assert command["url"] == BOT_URL
    assert command["usage_hint"] == (
        "[PR number | owner/repo#PR | PR URL | SHA | where [PR|SHA] | status [owner/repo] | "
        "use owner/repo | subscribe | help | list | stop <PR|SHA>]"
    )
    assert command["description"]


def test_identity_and_transport(manifest: dict[str, Any]) -> None:
    assert manifest["display_information"]["name"] == "deploy-monitor"
    assert manifest["features"]["bot_user"]["display_name"] == "deploy-monitor"
    settings = manifest["settings"]
    assert settings["socket_mode_enabled"] is False
    assert settings["token_rotation_enabled"] is False
    assert settings["interactivity"] == {"is_enabled": True, "request_url": BOT_URL}


def test_events(manifest: dict[str, Any]) -> None:
    events = manifest["settings"]["event_subscriptions"]
    assert events["request_url"] == BOT_URL
    # Exactly the handled events: an unhandled one is answered 404 by Bolt and retried by Slack.
    assert events["bot_events"] == ["reaction_added", "app_home_opened"]
    assert "user_events" not in events


def test_bot_scopes_cover_the_bot_and_nothing_else(manifest: dict[str, Any]) -> None:
    scopes = manifest["oauth_config"]["scopes"]["bot"]
    needed = {METHOD_SCOPES[m] for m in BOT_METHODS if METHOD_SCOPES[m]} | FEATURE_SCOPES
    assert len(scopes) == len(set(scopes)), "duplicate scope"
    assert set(scopes) == needed
    # Posting without joining would leave the bot outside the channel, deaf to reactions.
    assert "chat:write.public" not in scopes
    assert "user" not in manifest["oauth_config"]["scopes"]


def test_the_home_tab_is_on(manifest: dict[str, Any]) -> None:
    # views.publish of a home view fails with not_enabled while the Home tab is off.
    assert manifest["features"]["app_home"]["home_tab_enabled"] is True


def test_dms_are_possible(manifest: dict[str, Any]) -> None:
    # chat.postMessage to a DM fails with messages_tab_disabled without the Messages tab.
    assert manifest["features"]["app_home"]["messages_tab_enabled"] is True
