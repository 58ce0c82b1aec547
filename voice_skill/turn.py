"""One turn of a conversation: slots in, session state, the linked shopper, the answer out."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from ask_sdk_core.dispatch_components.request_components import AbstractRequestHandler
from ask_sdk_core.handler_input import HandlerInput
from ask_sdk_model.intent_request import IntentRequest
from ask_sdk_model.response import Response
from ask_sdk_model.slu.entityresolution.status_code import StatusCode
from ask_sdk_model.ui.link_account_card import LinkAccountCard

from auth.principal import InvalidToken
from auth.tokens import verify_access_token
from orders.store.db import Database, utcnow
from voice_skill import speech

log = logging.getLogger(__name__)

# Session attribute holding the question the skill is waiting on (see handlers).
PENDING = "pending"


@dataclass(frozen=True)
class Deps:
    """What handlers need from outside: the database and a clock (tests move time)."""

    db: Database
    clock: Callable[[], datetime] = utcnow


@dataclass(frozen=True)
class LinkedShopper:
    """The shopper behind the account-linking token, and the store they buy from by voice."""

    shopper_id: int
    store_id: int
    scopes: frozenset[str]


class Turn:
    """Helpers over a HandlerInput, so handlers read like the dialog they implement."""

    def __init__(self, handler_input: HandlerInput, deps: Deps) -> None:
        self.input = handler_input
        self.deps = deps
        self.now = deps.clock()

    @property
    def db(self) -> Database:
        """The database."""
        return self.deps.db

    @property
    def session(self) -> dict[str, Any]:
        """Session attributes (Alexa echoes them back on the next request of the session)."""
        manager = self.input.attributes_manager
        if self.input.request_envelope.session is None:
            # Out-of-session requests have no attributes; a throwaway dict keeps callers simple.
            return cast(dict[str, Any], manager.request_attributes.setdefault("_no_session", {}))
        attributes = manager.session_attributes
        if attributes is None:
            attributes = manager.session_attributes = {}
        return attributes

    @property
    def pending(self) -> dict[str, Any] | None:
        """The question waiting for an answer, if any."""
        value = self.session.get(PENDING)
        return value if isinstance(value, dict) else None

    def set_pending(self, value: dict[str, Any] | None) -> None:
        """Remember (or with None, forget) the question waiting for an answer."""
        if value is None:
            self.session.pop(PENDING, None)
        else:
            self.session[PENDING] = value

    def slot(self, name: str) -> str | None:
        """The spoken value of a slot, stripped, or None."""
        request = self.input.request_envelope.request
        if not isinstance(request, IntentRequest) or request.intent is None:
            return None
        slot = (request.intent.slots or {}).get(name)
        value = getattr(slot, "value", None)
        if not isinstance(value, str) or not value.strip():
            return None
        return value.strip()[:200]

    def slot_ids(self, name: str) -> list[str]:
        """Entity-resolution ids (our SKUs) Alexa matched for a slot, best first."""
        request = self.input.request_envelope.request
        if not isinstance(request, IntentRequest) or request.intent is None:
            return []
        slot = (request.intent.slots or {}).get(name)
        resolutions = getattr(getattr(slot, "resolutions", None), "resolutions_per_authority", None)
        ids: list[str] = []
        for resolution in resolutions or []:
            code = getattr(getattr(resolution, "status", None), "code", None)
            if code != StatusCode.ER_SUCCESS_MATCH:
                continue
            for wrapper in resolution.values or []:
                value_id = getattr(getattr(wrapper, "value", None), "id", None)
                if isinstance(value_id, str):
                    ids.append(value_id)
        return ids

    def shopper(self, scope: str) -> LinkedShopper | None:
        """The linked shopper if the request carries a live token with `scope`, else None."""
        system = (
            self.input.request_envelope.context.system
            if self.input.request_envelope.context
            else None
        )
        token = getattr(getattr(system, "user", None), "access_token", None)
        if not isinstance(token, str) or not token:
            return None
        try:
            principal = verify_access_token(self.db, token, scope, now=self.now)
        except InvalidToken as exc:
            log.info("alexa account link refused: %s", exc.error)
            return None
        if principal.kind != "shopper" or principal.shopper_id is None:
            return None
        if principal.store_id is None:
            return None
        return LinkedShopper(principal.shopper_id, principal.store_id, principal.scopes)

    def say(self, text: str, reprompt: str | None = None) -> Response:
        """Speak `text`; with a reprompt the session stays open for an answer."""
        builder = self.input.response_builder.speak(text)
        if reprompt is not None:
            builder.ask(reprompt)
        else:
            builder.set_should_end_session(True)
        return builder.response

    def link_account(self) -> Response:
        """Ask the shopper to link their account, with the LinkAccount card."""
        self.set_pending(None)
        builder = self.input.response_builder.speak(speech.link_account())
        builder.set_card(LinkAccountCard())
        builder.set_should_end_session(True)
        return builder.response


class VoiceHandler(AbstractRequestHandler):
    """One intent (or request type); with `scope` set, only a linked shopper gets `answer`."""

    intent: str = ""
    request_type: str = "IntentRequest"
    scope: str | None = None

    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    def can_handle(self, handler_input: HandlerInput) -> bool:
        """True for this handler's request type (and intent name, for intents)."""
        request = handler_input.request_envelope.request
        if getattr(request, "object_type", None) != self.request_type:
            return False
        if self.request_type != "IntentRequest":
            return True
        # getattr: an IntentRequest without an intent must not crash the dispatcher.
        return getattr(getattr(request, "intent", None), "name", None) == self.intent

    def handle(self, handler_input: HandlerInput) -> Response:
        """Check the account link when needed, then answer."""
        turn = Turn(handler_input, self.deps)
        if self.scope is None:
            return self.answer(turn, None)
        shopper = turn.shopper(self.scope)
        if shopper is None:
            return turn.link_account()
        return self.answer(turn, shopper)

    def answer(self, turn: Turn, shopper: LinkedShopper | None) -> Response:
        """The handler's reply; `shopper` is set whenever `scope` is."""
        raise NotImplementedError
