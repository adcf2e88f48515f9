"""The App Home: views.publish, as Slack documents it (docs.slack.dev reference/methods/
views.publish, reference/views/home-tab-views).

`user_id` and `view` are required; the view is a JSON object (or its JSON text, in a form
body) of `type: home` holding at most 100 blocks, checked by the same Block Kit rules as
messages. Failures are answered as Slack answers them: `invalid_arguments` with
`response_metadata.messages` naming what is wrong (a JSON pointer into the request, under
`/view`), `not_enabled` when the app's Home tab is off, `view_too_large` above 250 kB, and
`hash_conflict` when a `hash` is given that is not the one the user's current Home carries.
Each user's Home keeps one view id; every publish gives it a new `hash`.
"""

from __future__ import annotations

import copy
import json
import uuid
from typing import Any

from simulators.slack._content import MAX_VIEW_BLOCKS, block_problems
from simulators.slack._model import DEFAULT_APP_ID, USER_ID, PublishedView, SlackError
from simulators.slack._state import SlackState

# Limits of a view object (docs.slack.dev reference/views).
MAX_PRIVATE_METADATA_CHARS = 3_000
MAX_CALLBACK_ID_CHARS = 255
MAX_EXTERNAL_ID_CHARS = 255
# views.publish answers view_too_large above this many bytes of view JSON.
MAX_VIEW_BYTES = 250_000


def _invalid(*messages: str) -> SlackError:
    return SlackError(
        "invalid_arguments", response_metadata={"messages": [f"[ERROR] {m}" for m in messages]}
    )


def _view_object(raw: Any) -> dict[str, Any]:
    """The `view` argument as an object (JSON bodies carry one; form bodies its JSON text)."""
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            raise _invalid("failed to parse view [json-pointer:/view]") from None
    if not isinstance(raw, dict):
        raise _invalid("must be an object [json-pointer:/view]")
    return raw


class Views(SlackState):
    """views.publish, and the record of every Home view published."""

    def _views_publish(self, params: dict[str, Any]) -> dict[str, Any]:
        user_id = params.get("user_id")
        missing = [name for name in ("user_id", "view") if params.get(name) in (None, "")]
        if missing:
            raise _invalid(*(f"missing required field: {name}" for name in missing))
        if not USER_ID.match(str(user_id)):
            raise _invalid("invalid user_id [json-pointer:/user_id]")
        view = _view_object(params["view"])
        if len(json.dumps(view).encode()) > MAX_VIEW_BYTES:
            raise SlackError("view_too_large")
        problems = self._view_problems(view)
        if problems:
            raise _invalid(*problems)
        if not self.home_tab_enabled:
            raise SlackError("not_enabled")
        user = str(user_id)
        current = self._home_views.get(user)
        given_hash = params.get("hash")
        if given_hash and (current is None or current["hash"] != str(given_hash)):
            raise SlackError("hash_conflict")
        view_id = current["id"] if current else f"V{uuid.uuid4().hex[:10].upper()}"
        stored = {
            "id": view_id,
            "team_id": self.team_id,
            "type": "home",
            "close": None,
            "submit": None,
            "blocks": copy.deepcopy(view.get("blocks", [])),
            "private_metadata": str(view.get("private_metadata", "")),
            "callback_id": str(view.get("callback_id", "")),
            "state": {"values": {}},
            "hash": f"{self._next_ts()}.{uuid.uuid4().hex[:8]}",
            "title": {"type": "plain_text", "text": "View Title", "emoji": True},
            "clear_on_close": False,
            "notify_on_close": False,
            "previous_view_id": None,
            "root_view_id": view_id,
            "app_id": DEFAULT_APP_ID,
            "external_id": str(view.get("external_id", "")),
            "app_installed_team_id": self.team_id,
            "bot_id": self.bot_id,
        }
        self._home_views[user] = stored
        self._published.append(PublishedView(user, copy.deepcopy(stored)))
        return {"view": copy.deepcopy(stored)}

    def _view_problems(self, view: dict[str, Any]) -> list[str]:
        problems: list[str] = []
        kind = view.get("type")
        if kind is None:
            problems.append("missing required field: type [json-pointer:/view/type]")
        elif kind != "home":
            problems.append("must be home [json-pointer:/view/type]")
        blocks = view.get("blocks")
        if not isinstance(blocks, list):
            problems.append("missing required field: blocks [json-pointer:/view/blocks]")
        else:
            problems += block_problems(blocks, max_blocks=MAX_VIEW_BLOCKS, pointer="/view/blocks")
        for name, limit in (
            ("private_metadata", MAX_PRIVATE_METADATA_CHARS),
            ("callback_id", MAX_CALLBACK_ID_CHARS),
            ("external_id", MAX_EXTERNAL_ID_CHARS),
        ):
            if len(str(view.get(name, ""))) > limit:
                problems.append(
                    f"must be less than {limit + 1} characters [json-pointer:/view/{name}]"
                )
        return problems

    # ----------------------------------------------------------------- record

    def home_view(self, user_id: str) -> dict[str, Any] | None:
        """The Home view `user_id` sees now (as views.publish answered it), if any."""
        with self.lock:
            current = self._home_views.get(user_id)
            return copy.deepcopy(current) if current else None

    @property
    def published_views(self) -> list[PublishedView]:
        """Every views.publish that succeeded, in order."""
        with self.lock:
            return copy.deepcopy(self._published)
