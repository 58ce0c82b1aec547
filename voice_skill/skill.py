"""The skill: every handler registered on one ask-sdk-core SkillBuilder, and JSON in / out."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, cast

from ask_sdk_core.serialize import DefaultSerializer
from ask_sdk_core.skill import CustomSkill
from ask_sdk_core.skill_builder import SkillBuilder
from ask_sdk_model.request_envelope import RequestEnvelope

from orders.store.db import Database, utcnow
from voice_skill import handlers, purchase
from voice_skill.turn import Deps

# Order matters: the first handler whose can_handle() is true answers; the catch-all is last.
HANDLERS = (
    handlers.LaunchHandler,
    purchase.BuyHandler,
    purchase.ReorderHandler,
    purchase.YesHandler,
    purchase.NoHandler,
    purchase.VoicePinHandler,
    handlers.OrderStatusHandler,
    handlers.CancelOrderHandler,
    handlers.SupplyLevelHandler,
    handlers.HelpHandler,
    handlers.StopHandler,
    handlers.CancelHandler,
    handlers.NavigateHomeHandler,
    handlers.FallbackHandler,
    handlers.SessionEndedHandler,
    handlers.UnknownIntentHandler,
)


def build_skill(db: Database, *, clock: Callable[[], datetime] = utcnow) -> CustomSkill:
    """The Restock skill over one database."""
    deps = Deps(db, clock)
    builder = SkillBuilder()
    for handler in HANDLERS:
        builder.add_request_handler(handler(deps))
    builder.add_exception_handler(handlers.ErrorHandler(deps))
    return builder.create()


class SkillRunner:
    """Turns a parsed request envelope into the response JSON, through the ask-sdk models."""

    def __init__(self, skill: CustomSkill) -> None:
        self.skill = skill
        self.serializer = DefaultSerializer()

    def run(self, payload: str) -> dict[str, Any]:
        """Deserialise the JSON envelope, invoke the skill, serialise the response envelope."""
        # Raises SerializationException for JSON that is not a request envelope (an unknown
        # request type, an enum value it does not know, a string where an object belongs).
        request = self.serializer.deserialize(payload=payload, obj_type=RequestEnvelope)
        response = self.skill.invoke(request_envelope=request, context=None)
        return cast(dict[str, Any], self.serializer.serialize(response))
