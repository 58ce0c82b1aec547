"""Buying by voice: buy, reorder, the read-back, yes / no, and the voice PIN."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import date
from typing import Any

from ask_sdk_model.response import Response

from orders.domain.errors import NotAllowed
from orders.domain.rules import MAX_QUANTITY
from orders.queries.history import find_reorder
from orders.queries.quotes import Quote, quote, quote_named
from orders.services.confirmation import confirm_voice_purchase
from orders.services.consent import check_voice_pin
from orders.services.lifecycle import Actor, cancel_order
from orders.services.ordering import LineRequest
from voice_skill import speech
from voice_skill.turn import LinkedShopper, Turn, VoiceHandler

PLACE = "orders:place"


def _quantity(spoken: str | None, default: int) -> int | None:
    """The quantity slot as a number from 1 to 99, the default when unsaid, else None."""
    if spoken is None:
        return default
    if not spoken.isdigit():  # Alexa sends "?" when it heard a number it could not parse
        return None
    value = int(spoken)
    return value if 1 <= value <= MAX_QUANTITY else None


def _offer(turn: Turn, offer: Quote, *, changed: bool = False) -> Response:
    """Read back a quote and wait for a yes, remembering exactly what was read back."""
    if offer.consent == "locked":
        turn.set_pending(None)
        return turn.say(speech.pin_locked())
    if offer.consent == "pin_not_set":
        turn.set_pending(None)
        return turn.say(speech.pin_not_set(speech.money(offer.total_minor, offer.currency)))
    turn.set_pending(
        {
            "kind": "purchase",
            "step": "confirm",
            # A new id per read-back: it becomes the order's idempotency key, so a retried
            # yes of this dialog finds its order, while a later purchase is a new order.
            "dialog": secrets.token_urlsafe(12),
            "lines": [[line.sku, line.quantity] for line in offer.lines],
            "total_minor": offer.total_minor,
            "arrives": offer.arrives_on.isoformat(),
            # The read-back said some are already on the way: a yes to it orders more.
            "more": offer.on_the_way is not None,
        }
    )
    said = speech.price_changed(offer) if changed else speech.readback(offer)
    return turn.say(said, speech.YES_OR_NO)


def read_back(turn: Turn, shopper: LinkedShopper, lines: Sequence[LineRequest]) -> Response:
    """Quote the lines in the shopper's store and read them back."""
    return _offer(turn, quote(turn.db, shopper.shopper_id, shopper.store_id, lines, now=turn.now))


def _pending_lines(pending: dict[str, Any]) -> tuple[LineRequest, ...] | None:
    """The lines remembered in the session, or None when they are not what we stored."""
    lines = pending.get("lines")
    if not isinstance(lines, list) or not lines:
        return None
    parsed = []
    for line in lines:
        if not (isinstance(line, list) and len(line) == 2):
            return None
        sku, quantity = line
        if not isinstance(sku, str) or isinstance(quantity, bool) or not isinstance(quantity, int):
            return None
        parsed.append(LineRequest(sku, quantity))
    return tuple(parsed)


def confirm(turn: Turn, shopper: LinkedShopper, pending: dict[str, Any], *, pin: bool) -> Response:
    """The shopper agreed to the read-back (and gave a right PIN when `pin`): order once."""
    lines = _pending_lines(pending)
    dialog, total = pending.get("dialog"), pending.get("total_minor")
    if lines is None or not isinstance(dialog, str) or not isinstance(total, int):
        turn.set_pending(None)
        return turn.say(speech.nothing_to_confirm(), speech.REPROMPT)
    done = confirm_voice_purchase(
        turn.db,
        shopper.shopper_id,
        shopper.store_id,
        lines,
        dialog,
        quoted_total_minor=total,
        pin_verified=pin,
        on_purpose=pending.get("more") is True,
        now=turn.now,
    )
    if done.outcome == "needs_pin":
        turn.set_pending({**pending, "step": "pin"})
        return turn.say(speech.ask_pin(), speech.PIN_REPROMPT)
    if done.outcome == "price_changed" and done.quote is not None:
        return _offer(turn, done.quote, changed=True)
    if done.outcome in ("locked", "pin_not_set", "in_progress") and done.quote is not None:
        return _offer(turn, done.quote)
    turn.set_pending(None)
    assert done.order is not None
    if done.outcome == "needs_approval":
        return turn.say(speech.needs_approval(done.order))
    return turn.say(speech.ordered(done.order, _arrival(pending.get("arrives"))))


def _arrival(value: Any) -> date | None:
    """The arrival day remembered at the read-back, if it is a date."""
    try:
        return date.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


class BuyHandler(VoiceHandler):
    """BuyIntent {quantity, product}: find the product, then read back."""

    intent = "BuyIntent"
    scope = PLACE

    def answer(self, turn: Turn, shopper: LinkedShopper | None) -> Response:
        """Find the product named and read the purchase back."""
        assert shopper is not None
        pending = turn.pending or {}
        remembered = pending.get("quantity") if pending.get("kind") == "choose" else None
        default = remembered if isinstance(remembered, int) else 1
        quantity = _quantity(turn.slot("quantity"), default)
        if quantity is None:
            return turn.say(speech.bad_quantity(), speech.bad_quantity())
        query = turn.slot("product")
        found = quote_named(
            turn.db,
            shopper.shopper_id,
            shopper.store_id,
            query or "",
            quantity,
            sku_hints=turn.slot_ids("product"),
            now=turn.now,
        )
        match = found.match
        if match.status == "ambiguous":
            turn.set_pending({"kind": "choose", "quantity": quantity})
            return turn.say(speech.which_product(match.choices), speech.WHICH_REPROMPT)
        if match.status == "unknown":
            turn.set_pending(None)
            return turn.say(speech.unknown_product(query), speech.REPROMPT)
        assert found.quote is not None
        return _offer(turn, found.quote)


class ReorderHandler(VoiceHandler):
    """ReorderIntent {product}: from the shopper's history; no product means the last order."""

    intent = "ReorderIntent"
    scope = PLACE

    def answer(self, turn: Turn, shopper: LinkedShopper | None) -> Response:
        """Find what to reorder and read it back."""
        assert shopper is not None
        query = turn.slot("product")
        found = find_reorder(turn.db, shopper.shopper_id, shopper.store_id, query)
        if found.status == "found":
            return read_back(turn, shopper, found.lines)
        if found.status == "ambiguous":
            turn.set_pending({"kind": "choose", "quantity": 1})
            return turn.say(speech.which_product(found.choices), speech.WHICH_REPROMPT)
        turn.set_pending(None)
        if found.status == "no_history":
            return turn.say(speech.no_history(), speech.REPROMPT)
        return turn.say(speech.not_in_history(query or ""), speech.REPROMPT)


class YesHandler(VoiceHandler):
    """AMAZON.YesIntent: the only way anything is ordered or cancelled."""

    intent = "AMAZON.YesIntent"
    scope = PLACE

    def answer(self, turn: Turn, shopper: LinkedShopper | None) -> Response:
        """Act on the question waiting for an answer."""
        assert shopper is not None
        pending = turn.pending
        kind = pending.get("kind") if pending else None
        if pending is not None and kind == "purchase":
            if pending.get("step") == "pin":
                return turn.say(speech.ask_pin(), speech.PIN_REPROMPT)
            return confirm(turn, shopper, pending, pin=False)
        if pending is not None and kind == "cancel" and isinstance(pending.get("order"), str):
            turn.set_pending(None)
            try:
                actor = Actor.shopper(shopper.shopper_id, shopper.store_id)
                order = cancel_order(turn.db, pending["order"], actor, now=turn.now)
            except NotAllowed:
                return turn.say(speech.cancel_too_late())
            return turn.say(speech.cancelled(order))
        if kind == "choose":
            return turn.say(speech.WHICH_REPROMPT, speech.WHICH_REPROMPT)
        return turn.say(speech.nothing_to_confirm(), speech.REPROMPT)


class NoHandler(VoiceHandler):
    """AMAZON.NoIntent: forget the question; nothing is ordered or cancelled."""

    intent = "AMAZON.NoIntent"

    def answer(self, turn: Turn, shopper: LinkedShopper | None) -> Response:
        """Drop whatever was waiting for a yes."""
        pending = turn.pending
        turn.set_pending(None)
        if pending is not None and pending.get("kind") == "cancel":
            return turn.say(speech.kept_order(), speech.REPROMPT)
        return turn.say(speech.not_ordered(), speech.REPROMPT)


class VoicePinHandler(VoiceHandler):
    """VoicePinIntent {pin}: the PIN asked for after a yes."""

    intent = "VoicePinIntent"
    scope = PLACE

    def answer(self, turn: Turn, shopper: LinkedShopper | None) -> Response:
        """Check the PIN; a right one places the order read back."""
        assert shopper is not None
        pending = turn.pending
        if pending is None or pending.get("kind") != "purchase" or pending.get("step") != "pin":
            return turn.say(speech.nothing_to_confirm(), speech.REPROMPT)
        # A retried wrong PIN counts twice: Alexa retries rarely, and erring towards the lock
        # is the safe side for a purchase.
        check = check_voice_pin(turn.db, shopper.shopper_id, turn.slot("pin") or "", now=turn.now)
        if check.result == "wrong":
            return turn.say(speech.pin_wrong(check.attempts_left), speech.PIN_REPROMPT)
        if check.result == "locked":
            turn.set_pending(None)
            return turn.say(speech.pin_locked())
        # "ok", or "not_set" when the PIN was removed meanwhile: confirm() re-checks consent.
        return confirm(turn, shopper, pending, pin=check.result == "ok")
