"""Handlers for everything but buying: launch, status, cancel, supplies, help, stop, errors."""

from __future__ import annotations

import logging

from ask_sdk_core.dispatch_components.exception_components import AbstractExceptionHandler
from ask_sdk_core.handler_input import HandlerInput
from ask_sdk_model.response import Response
from ask_sdk_runtime.exceptions import DispatchException

from orders.domain.errors import DomainError
from orders.queries.history import latest_cancellable, open_orders
from orders.queries.supplies import supply_level
from voice_skill import speech
from voice_skill.turn import Deps, LinkedShopper, Turn, VoiceHandler

log = logging.getLogger(__name__)


class LaunchHandler(VoiceHandler):
    """LaunchRequest: "Alexa, open Restock"."""

    request_type = "LaunchRequest"
    scope = "orders:read"

    def answer(self, turn: Turn, shopper: LinkedShopper | None) -> Response:
        """Greet and wait for a request."""
        return turn.say(speech.welcome(), speech.REPROMPT)


class OrderStatusHandler(VoiceHandler):
    """OrderStatusIntent: open orders, their status and expected day."""

    intent = "OrderStatusIntent"
    scope = "orders:read"

    def answer(self, turn: Turn, shopper: LinkedShopper | None) -> Response:
        """Read the open orders."""
        assert shopper is not None
        return turn.say(
            speech.order_status(open_orders(turn.db, shopper.shopper_id, shopper.store_id))
        )


class CancelOrderHandler(VoiceHandler):
    """CancelOrderIntent: offer to cancel the newest order still inside its cancel window."""

    intent = "CancelOrderIntent"
    scope = "orders:place"

    def answer(self, turn: Turn, shopper: LinkedShopper | None) -> Response:
        """Ask before cancelling; the yes does it."""
        assert shopper is not None
        order = latest_cancellable(turn.db, shopper.shopper_id, shopper.store_id, now=turn.now)
        if order is None:
            turn.set_pending(None)
            return turn.say(speech.nothing_to_cancel())
        turn.set_pending({"kind": "cancel", "order": order.id})
        return turn.say(speech.confirm_cancel(order), speech.CANCEL_REPROMPT)


class SupplyLevelHandler(VoiceHandler):
    """SupplyLevelIntent {product}: what the shopper's appliances report."""

    intent = "SupplyLevelIntent"
    scope = "supplies:read"

    def answer(self, turn: Turn, shopper: LinkedShopper | None) -> Response:
        """Say the level and how long it lasts."""
        assert shopper is not None
        query = turn.slot("product")
        level = supply_level(turn.db, shopper.shopper_id, shopper.store_id, query, now=turn.now)
        if level is None:
            return turn.say(speech.supply_unknown(query))
        return turn.say(speech.supply_level(level))


class HelpHandler(VoiceHandler):
    """AMAZON.HelpIntent."""

    intent = "AMAZON.HelpIntent"

    def answer(self, turn: Turn, shopper: LinkedShopper | None) -> Response:
        """Say what can be said."""
        return turn.say(speech.help_text(), speech.REPROMPT)


class StopHandler(VoiceHandler):
    """AMAZON.StopIntent: end the session; whatever waited for a yes is dropped."""

    intent = "AMAZON.StopIntent"

    def answer(self, turn: Turn, shopper: LinkedShopper | None) -> Response:
        """Forget the question and say goodbye."""
        turn.set_pending(None)
        return turn.say(speech.goodbye())


class CancelHandler(StopHandler):
    """AMAZON.CancelIntent: the same as stop (cancelling an order is CancelOrderIntent)."""

    intent = "AMAZON.CancelIntent"


class NavigateHomeHandler(StopHandler):
    """AMAZON.NavigateHomeIntent (every custom skill receives it): the same as stop."""

    intent = "AMAZON.NavigateHomeIntent"


class FallbackHandler(VoiceHandler):
    """AMAZON.FallbackIntent: words outside the model."""

    intent = "AMAZON.FallbackIntent"

    def answer(self, turn: Turn, shopper: LinkedShopper | None) -> Response:
        """Apologise and keep listening; a pending question stays pending."""
        return turn.say(speech.fallback(), speech.REPROMPT)


class UnknownIntentHandler(FallbackHandler):
    """Any intent no other handler knows (registered last): answered like the fallback."""

    def can_handle(self, handler_input: HandlerInput) -> bool:
        """Every intent request."""
        request = handler_input.request_envelope.request
        return getattr(request, "object_type", None) == "IntentRequest"


class SessionEndedHandler(VoiceHandler):
    """SessionEndedRequest: Alexa wants no speech back, only an empty response."""

    request_type = "SessionEndedRequest"

    def answer(self, turn: Turn, shopper: LinkedShopper | None) -> Response:
        """Log why the session ended and answer nothing."""
        request = turn.input.request_envelope.request
        log.info("alexa session ended: %s", getattr(request, "reason", None))
        return turn.input.response_builder.response


class ErrorHandler(AbstractExceptionHandler):
    """Every exception becomes speech: domain refusals by reason, anything else an apology."""

    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    def can_handle(self, handler_input: HandlerInput, exception: Exception) -> bool:
        """All exceptions."""
        return True

    def handle(self, handler_input: HandlerInput, exception: Exception) -> Response:
        """Say what went wrong; nothing waits for a yes afterwards."""
        turn = Turn(handler_input, self.deps)
        turn.set_pending(None)
        if isinstance(exception, DomainError):
            log.info("alexa request refused: %s", exception)
            return turn.say(speech.refused(exception.reason), speech.REPROMPT)
        if isinstance(exception, DispatchException):
            # A request type no handler knows (a display event, a new Alexa feature).
            log.warning("alexa request not handled: %s", exception)
            return turn.say(speech.fallback(), speech.REPROMPT)
        log.exception("alexa request failed", exc_info=exception)
        return turn.say(speech.error())
