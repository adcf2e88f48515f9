"""The Slack Web API simulator: the concerns put together, and its routes."""

from __future__ import annotations

import time
from collections.abc import Callable

from simulators.slack._chat import Chat
from simulators.slack._conversations import Conversations
from simulators.slack._model import (
    DEFAULT_BOT_ID,
    DEFAULT_BOT_USER_ID,
    DEFAULT_TEAM_DOMAIN,
    DEFAULT_TEAM_ID,
    DEFAULT_TEAM_NAME,
    DEFAULT_TOKEN,
)
from simulators.slack._views import Views
from simulators.slack._web_api import WebApi


class SlackSimulator(WebApi, Chat, Conversations, Views):
    """The Slack Web API on loopback, with a record of everything the bot did to it."""

    def __init__(
        self,
        *,
        token: str = DEFAULT_TOKEN,
        team_id: str = DEFAULT_TEAM_ID,
        team_domain: str = DEFAULT_TEAM_DOMAIN,
        team_name: str = DEFAULT_TEAM_NAME,
        bot_user_id: str = DEFAULT_BOT_USER_ID,
        bot_id: str = DEFAULT_BOT_ID,
        scopes: list[str] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """`scopes=None` reports DEFAULT_SCOPES and checks none; a given list is enforced."""
        super().__init__(
            token=token,
            team_id=team_id,
            team_domain=team_domain,
            team_name=team_name,
            bot_user_id=bot_user_id,
            bot_id=bot_id,
            scopes=scopes,
            clock=clock,
        )
        self._methods = {
            "auth.test": self._auth_test,
            "chat.postMessage": self._chat_post_message,
            "chat.update": self._chat_update,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "chat.delete": self._chat_delete,
            "chat.getPermalink": self._chat_get_permalink,
            "reactions.add": self._reactions_add,
            "conversations.join": self._conversations_join,
            "conversations.info": self._conversations_info,
            "conversations.open": self._conversations_open,
            "conversations.history": self._conversations_history,
            "conversations.replies": self._conversations_replies,
            "users.info": self._users_info,
            "users.lookupByEmail": self._users_lookup_by_email,
            "views.publish": self._views_publish,
        }
        for verb in ("GET", "POST"):
            self.route(verb, r"/api/(?P<method>[A-Za-z0-9_.]+)", self._api)
        self.route("POST", r"/hooks/(?P<rest>.+)", self._webhook)
