"""What Slack sends the bot, and the Web API answers it reads, as typed models.

Every Slack payload is read here and nowhere else; the rest of the bot sees attributes, never
dict keys. Each kind has one entry point, its model's `parse`:

    inbound       SlashCommand.parse(body)     the `/deploy-monitor` form fields
                  BlockActions.parse(body)     a button click (`block_actions`)
                  EventCallback.parse(body)    an Events API envelope: `reaction_added`,
                                               `reaction_removed`, `app_home_opened` (Bolt
                                               itself answers `url_verification` and
                                               `ssl_check`)
    Web API       PostedMessage                chat.postMessage
                  OpenedConversation           conversations.open
                  ConversationInfo             conversations.info
                  MessagePage                  conversations.history / conversations.replies
                  Permalink                    chat.getPermalink
                  AuthTest                     auth.test (and the token's granted scopes)
                  PublishedHome                views.publish
                  ErrorAnswer                  the `ok: false` answer inside a SlackApiError

A payload that does not fit raises `SlackPayloadError` (a ValueError), the one exception of
this module; its message names the model and the fields at fault, never their values. Unknown
fields are ignored: Slack adds fields without notice. Kinds of the same family are told apart
by `Literal` `type` fields (pydantic discriminated unions), so a new event or container is one
more model in a union.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from slack_sdk.web import SlackResponse

# Slack ids and timestamps are never empty; an empty one is a malformed payload.
NonEmpty = Annotated[str, Field(min_length=1)]


class SlackPayloadError(ValueError):
    """A Slack payload or Web API answer that does not have the shape Slack documents."""

    def __init__(self, kind: str, problems: list[str]) -> None:
        self.kind = kind
        self.problems = problems
        super().__init__(f"malformed {kind}: {'; '.join(problems)}")


class SlackPayload(BaseModel):
    """Base of every model here: immutable, unknown fields ignored, one `parse` entry point."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    @classmethod
    def parse(cls, data: Mapping[str, Any] | SlackResponse | object) -> Self:
        """Validate a payload (a dict, or a slack_sdk `SlackResponse`); `SlackPayloadError`
        when it does not fit."""
        if isinstance(data, SlackResponse):
            data = data.data
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise SlackPayloadError(cls.__name__, _problems(exc)) from None


def _problems(exc: ValidationError) -> list[str]:
    # Locations and reasons only: payload values may be user text or tokens.
    return [
        f"{'.'.join(str(part) for part in error['loc']) or 'payload'}: {error['msg']}"
        for error in exc.errors(include_input=False, include_url=False)
    ]


# -- slash commands ------------------------------------------------------------------------


class SlashCommand(SlackPayload):
    """A slash command invocation (form fields, all strings)."""

    command: NonEmpty
    user_id: NonEmpty
    channel_id: NonEmpty
    # Everything after the command; Slack omits the field when there is nothing.
    text: str = ""
    team_id: str = ""
    channel_name: str = ""
    user_name: str = ""
    response_url: str = ""
    trigger_id: str = ""


# -- interactivity: block_actions ----------------------------------------------------------


class ActionUser(SlackPayload):
    """Who clicked."""

    id: NonEmpty
    username: str = ""
    name: str = ""
    team_id: str = ""


class ActionChannel(SlackPayload):
    id: NonEmpty
    name: str = ""


class MessageContainer(SlackPayload):
    """The click was on a message."""

    type: Literal["message"]
    message_ts: NonEmpty
    channel_id: NonEmpty
    is_ephemeral: bool = False
    thread_ts: str | None = None


class ViewContainer(SlackPayload):
    """The click was in a modal or App Home."""

    type: Literal["view"]
    view_id: NonEmpty


Container = Annotated[MessageContainer | ViewContainer, Field(discriminator="type")]


class ViewRef(SlackPayload):
    """A view (a Home tab or a modal) as Slack echoes it back: only what the bot reads."""

    id: NonEmpty
    type: str = ""
    # Changes with every publish; passing it back makes a stale publish fail (hash_conflict).
    hash: str = ""


class ActionMessage(SlackPayload):
    """The message the clicked element is on (only what the bot reads of it)."""

    ts: NonEmpty
    thread_ts: str | None = None
    text: str = ""


class ButtonAction(SlackPayload):
    """A button click. Other interactive elements become further models in a `type` union."""

    type: Literal["button"]
    action_id: NonEmpty
    block_id: str = ""
    # The button's `value`; Slack omits it when the button has none.
    value: str = ""
    action_ts: str = ""


class BlockActions(SlackPayload):
    """An interactivity payload of type `block_actions` (the form field `payload`, as JSON)."""

    type: Literal["block_actions"]
    user: ActionUser
    container: Container
    actions: Annotated[list[ButtonAction], Field(min_length=1)]
    channel: ActionChannel | None = None
    message: ActionMessage | None = None
    # Set when the click was in a view (the App Home); such clicks have no response_url.
    view: ViewRef | None = None
    response_url: str | None = None
    trigger_id: str = ""

    @property
    def action(self) -> ButtonAction:
        """The element clicked (Slack sends one action per block_actions payload)."""
        return self.actions[0]


# -- the Events API ------------------------------------------------------------------------


class MessageItem(SlackPayload):
    """A reaction's target when it is a message."""

    type: Literal["message"]
    channel: NonEmpty
    ts: NonEmpty


class FileItem(SlackPayload):
    type: Literal["file"]
    file: NonEmpty


class FileCommentItem(SlackPayload):
    type: Literal["file_comment"]
    file_comment: NonEmpty
    file: str = ""


ReactionItem = Annotated[MessageItem | FileItem | FileCommentItem, Field(discriminator="type")]


class _Reaction(SlackPayload):
    # Who reacted; `item_user` is the target's author (absent for some bot messages).
    user: NonEmpty
    # The emoji's name without colons, possibly with a skin tone (`+1::skin-tone-2`).
    reaction: NonEmpty
    item: ReactionItem
    item_user: str = ""
    event_ts: str = ""


class ReactionAdded(_Reaction):
    type: Literal["reaction_added"]


class ReactionRemoved(_Reaction):
    type: Literal["reaction_removed"]


class AppHomeOpened(SlackPayload):
    """Someone opened the app's Home or Messages tab."""

    type: Literal["app_home_opened"]
    user: NonEmpty
    # "home" or "messages": which tab was opened.
    tab: NonEmpty
    channel: str = ""
    event_ts: str = ""
    # The Home view last published for this user; absent before the first publish.
    view: ViewRef | None = None


Event = Annotated[ReactionAdded | ReactionRemoved | AppHomeOpened, Field(discriminator="type")]


class EventCallback(SlackPayload):
    """The Events API envelope of one event delivery."""

    type: Literal["event_callback"]
    # The same for every retry of one delivery: what duplicate deliveries are recognised by.
    event_id: NonEmpty
    event: Event
    team_id: str = ""
    api_app_id: str = ""
    event_time: int = 0


# -- Web API answers -----------------------------------------------------------------------


class PostedMessage(SlackPayload):
    """chat.postMessage: where the message went and its ts (its id within the channel)."""

    channel: NonEmpty
    ts: NonEmpty


class ConversationRef(SlackPayload):
    id: NonEmpty


class UserRef(SlackPayload):
    """A user as an answer names them (only the id is read)."""

    id: NonEmpty


class FoundUser(SlackPayload):
    """users.lookupByEmail: the member with the email."""

    user: UserRef


class OpenedConversation(SlackPayload):
    """conversations.open: the DM's channel."""

    channel: ConversationRef


class Conversation(SlackPayload):
    """A conversation as conversations.info describes it (what the bot decides on)."""

    id: NonEmpty
    is_member: bool = False
    is_im: bool = False
    is_private: bool = False


class ConversationInfo(SlackPayload):
    """conversations.info."""

    channel: Conversation


class PostMark(SlackPayload):
    """What the bot's own posts carry as their metadata's `event_payload`, naming them."""

    monitor: str
    run: str
    key: str

    def metadata(self, event_type: str) -> dict[str, Any]:
        """The `metadata` argument of chat.postMessage that carries this mark."""
        return {"event_type": event_type, "event_payload": self.model_dump()}


class MessageMetadata(SlackPayload):
    # Any app may attach metadata of any shape: read as-is, judged by `ListedMessage.mark`.
    event_type: Any = None
    event_payload: Any = None


class ListedMessage(SlackPayload):
    """A message as conversations.history / conversations.replies list it."""

    ts: NonEmpty
    metadata: MessageMetadata | None = None

    def mark(self, event_type: str) -> PostMark | None:
        """The mark of one of the bot's posts (metadata of `event_type`), if it carries one."""
        if self.metadata is None or self.metadata.event_type != event_type:
            return None
        try:
            return PostMark.model_validate(self.metadata.event_payload, strict=True)
        except ValidationError:
            return None


class ResponseMetadata(SlackPayload):
    next_cursor: str = ""


class MessagePage(SlackPayload):
    """One page of conversations.history or conversations.replies."""

    messages: list[ListedMessage] = Field(default_factory=list)
    has_more: bool = False
    response_metadata: ResponseMetadata | None = None

    @property
    def next_cursor(self) -> str:
        """The cursor of the next page; empty on the last one."""
        return self.response_metadata.next_cursor if self.response_metadata else ""


class Permalink(SlackPayload):
    """chat.getPermalink."""

    permalink: NonEmpty


class AuthTest(SlackPayload):
    """auth.test: whose token this is, and (from the `X-OAuth-Scopes` header) what it may do."""

    user_id: NonEmpty
    team_id: NonEmpty
    user: str = ""
    team: str = ""
    bot_id: str = ""
    url: str = ""
    # None when Slack did not say (the header is missing).
    scopes: frozenset[str] | None = None

    @classmethod
    def parse(cls, data: Mapping[str, Any] | SlackResponse | object) -> Self:
        """Validate an auth.test answer; a `SlackResponse` also gives the granted scopes."""
        if isinstance(data, SlackResponse):
            body = data.data if isinstance(data.data, dict) else {}
            data = {**body, "scopes": _scopes(data.headers)}
        return super().parse(data)


def _scopes(headers: Mapping[str, Any] | None) -> frozenset[str] | None:
    for name, value in (headers or {}).items():
        if name.lower() == "x-oauth-scopes":
            # urllib gives one string; some transports a list of them.
            text = value[0] if isinstance(value, list) and value else str(value)
            return frozenset(scope.strip() for scope in text.split(",") if scope.strip())
    return None


class PublishedHome(SlackPayload):
    """views.publish: the Home view as stored."""

    view: ViewRef


class ErrorAnswer(SlackPayload):
    """The body of a failed call: `{"ok": false, "error": "<code>"}`, or anything at all when a
    proxy answered; read leniently (`of`), since failures must always be classifiable."""

    error: str | None = None

    @field_validator("error", mode="before")
    @classmethod
    def _code(cls, value: object) -> str | None:
        return value if isinstance(value, str) and value else None

    @classmethod
    def of(cls, response: SlackResponse) -> ErrorAnswer:
        """The error answer in `response`; no error code when the body says none."""
        return cls.model_validate(response.data if isinstance(response.data, dict) else {})
