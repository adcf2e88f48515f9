"""A Slack Web API simulator for tests and the demo.

Point a real client at it: `WebClient(token=sim.token, base_url=sim.api_url)`. Methods are
answered on `/api/<method>` the way Slack documents them: HTTP 200 with `{"ok": true, …}` or
`{"ok": false, "error": "<code>"}`, HTTP 429 + `Retry-After` when rate limited. Bodies may be
form-encoded, multipart or JSON (slack_sdk picks per method); query parameters count too.

What is modelled, because the bot depends on it:
- the bot token (`invalid_auth`, `not_authed`) and, optionally, its scopes (`missing_scope`);
- channel membership: `not_in_channel` for a public channel the bot has not joined,
  `channel_not_found` for a private one (Slack does not reveal those exist);
- threads, broadcasts, edits, deletions, reactions, ephemerals, permalinks, DMs;
- message metadata (`metadata` on chat.postMessage / chat.update), returned by
  conversations.history and conversations.replies with `include_all_metadata`; those two
  read methods need the history scope of the conversation's type, page with `cursor`, and
  show a deleted message that still has replies as a tombstone;
- the size limits of chat.postMessage / chat.update and the Block Kit limits that matter here;
- the App Home: views.publish (`type: home`, 100 blocks, Slack's errors), each user's current
  Home view (`home_view`) and every view published (`published_views`);
- scripted failures: 429s, 5xx, and arbitrary `ok: false` errors for the next n calls, and
  5xx answers to calls that did take effect (`lose_answer_next`: Slack stored the message,
  the answer never arrived), the case that makes a blind retry post twice;
- `on_call`: a hook run after each call took effect, before it is answered (a test can kill
  the caller there).

What is not: search methods, attachments beyond storing them, files, user groups,
multi-person DMs, `response_url` semantics beyond recording what was posted to it.
Any `U…`/`W…` id is taken as a workspace member; `add_user` only gives one a name or flags.

One class, put together from one module per concern: `_model` (workspace records, scopes,
`SlackError`), `_params` (the three body encodings), `_content` (text limits and Block Kit
rules), `_state` (scripting, the record, lookups), `_web_api` (dispatch, auth, scripted
answers), `_chat`, `_conversations`, `_views` (the App Home), `_simulator` (the method table
and routes).
"""

from simulators.slack._content import (
    MAX_ACTION_ID_CHARS,
    MAX_ACTIONS_ELEMENTS,
    MAX_BLOCK_ID_CHARS,
    MAX_BLOCKS,
    MAX_BUTTON_TEXT_CHARS,
    MAX_BUTTON_VALUE_CHARS,
    MAX_CONTEXT_ELEMENTS,
    MAX_FIELD_TEXT_CHARS,
    MAX_HEADER_TEXT_CHARS,
    MAX_SECTION_FIELDS,
    MAX_SECTION_TEXT_CHARS,
    MAX_TEXT_CHARS,
    MAX_UPDATE_TEXT_CHARS,
    MAX_VIEW_BLOCKS,
)
from simulators.slack._model import (
    BOT_NAME,
    DEFAULT_APP_ID,
    DEFAULT_BOT_ID,
    DEFAULT_BOT_USER_ID,
    DEFAULT_SCOPES,
    DEFAULT_TEAM_DOMAIN,
    DEFAULT_TEAM_ID,
    DEFAULT_TEAM_NAME,
    DEFAULT_TOKEN,
    HISTORY_SCOPES,
    MAX_HISTORY_LIMIT,
    MAX_REPLIES_LIMIT,
    METHOD_SCOPES,
    TOMBSTONE_TEXT,
    Channel,
    Ephemeral,
    Message,
    MessageVersion,
    PublishedView,
    SlackError,
    User,
    WebhookPost,
)
from simulators.slack._simulator import SlackSimulator

__all__ = [
    "BOT_NAME",
    "DEFAULT_APP_ID",
    "DEFAULT_BOT_ID",
    "DEFAULT_BOT_USER_ID",
    "DEFAULT_SCOPES",
    "DEFAULT_TEAM_DOMAIN",
    "DEFAULT_TEAM_ID",
    "DEFAULT_TEAM_NAME",
    "DEFAULT_TOKEN",
    "HISTORY_SCOPES",
    "MAX_ACTIONS_ELEMENTS",
    "MAX_ACTION_ID_CHARS",
    "MAX_BLOCKS",
    "MAX_BLOCK_ID_CHARS",
    "MAX_BUTTON_TEXT_CHARS",
    "MAX_BUTTON_VALUE_CHARS",
    "MAX_CONTEXT_ELEMENTS",
    "MAX_FIELD_TEXT_CHARS",
    "MAX_HEADER_TEXT_CHARS",
    "MAX_HISTORY_LIMIT",
    "MAX_REPLIES_LIMIT",
    "MAX_SECTION_FIELDS",
    "MAX_SECTION_TEXT_CHARS",
    "MAX_TEXT_CHARS",
    "MAX_UPDATE_TEXT_CHARS",
    "MAX_VIEW_BLOCKS",
    "METHOD_SCOPES",
    "TOMBSTONE_TEXT",
    "Channel",
    "Ephemeral",
    "Message",
    "MessageVersion",
    "PublishedView",
    "SlackError",
    "SlackSimulator",
    "User",
    "WebhookPost",
]
