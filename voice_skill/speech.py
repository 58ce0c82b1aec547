"""Every sentence the skill says, in one place. Output is SSML: all outside text is escaped."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime

from orders.queries.history import OrderStatus
from orders.queries.quotes import Quote
from orders.queries.search import ProductChoice, spoken
from orders.queries.snapshots import OrderView
from orders.queries.supplies import SupplyLevel

# ask-sdk-core wraps speech in <speak> as is, so a product called "Salt & Pepper" would make
# the whole answer invalid SSML (Alexa then says nothing at all). Every value that comes
# from the catalog, the shopper or the database goes through x() before it is spoken.
_SSML_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})

CURRENCY_WORDS = {
    "EUR": ("euro", "euros"),
    "USD": ("dollar", "dollars"),
    "GBP": ("pound", "pounds"),
}

REPROMPT = "What would you like to do?"
YES_OR_NO = "Should I order it? Say yes or no."
PIN_REPROMPT = "Please say your four digit voice PIN."
WHICH_REPROMPT = "Which one would you like?"
CANCEL_REPROMPT = "Should I cancel it? Say yes or no."


def x(text: object) -> str:
    """Escape a value for SSML: &, < and > become entities."""
    return str(text).translate(_SSML_ESCAPES)


def money(minor: int, currency: str) -> str:
    """An amount as Alexa should say it: "15.99 euros", "1 euro"."""
    major, cents = divmod(minor, 100)
    one, many = CURRENCY_WORDS.get(currency, (currency, currency))
    word = one if minor == 100 else many
    return f"{major} {word}" if cents == 0 else f"{major}.{cents:02d} {word}"


def day(value: date | datetime) -> str:
    """A date as spoken: "Thursday, November 26"."""
    return f"{value:%A}, {value:%B} {value.day}"


def _items(pairs: Sequence[tuple[int, str]]) -> str:
    phrases = [f"{quantity} {x(spoken(name))}" for quantity, name in pairs]
    if len(phrases) <= 1:
        return "".join(phrases)
    return ", ".join(phrases[:-1]) + " and " + phrases[-1]


def _or_list(names: Sequence[str]) -> str:
    names = [x(name) for name in names]
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + ", or " + names[-1]


def welcome() -> str:
    """Greeting on launch."""
    return "Welcome to Restock. You can buy, reorder, check an order or ask about supplies."


def help_text() -> str:
    """What the shopper can say."""
    return (
        "You can say: buy two packs of batteries, reorder coffee pods, where is my order, "
        "cancel my order, or how much detergent is left. What would you like to do?"
    )


def goodbye() -> str:
    """Said on Stop or Cancel; nothing was ordered by it."""
    return "Okay. Nothing was ordered. Goodbye."


def fallback() -> str:
    """Said for words the skill does not understand."""
    return "Sorry, I didn't get that. You can say help to hear what I can do."


def error() -> str:
    """Said when something failed on our side."""
    return "Sorry, something went wrong on our side. Nothing was ordered. Please try again later."


def link_account() -> str:
    """Said with a LinkAccount card when no valid account link comes with the request."""
    return (
        "To shop by voice, please link your Restock account. "
        "I've sent a card to the Alexa app to help you do that."
    )


def which_product(choices: Sequence[ProductChoice]) -> str:
    """Ask which of several similar products was meant."""
    return f"Did you mean {_or_list([c.spoken_name for c in choices])}?"


def unknown_product(query: str | None) -> str:
    """The product named is not in the store."""
    if not query:
        return "Which product would you like? For example, say: buy coffee pods."
    return f"Sorry, I couldn't find {x(query)} in the store. Say help to hear some examples."


def bad_quantity() -> str:
    """The quantity heard is not a whole number from 1 to 99."""
    return "I can order between 1 and 99 at a time. How many would you like?"


def readback(quote: Quote) -> str:
    """Read back item, quantity, store, total and arrival before asking for a yes."""
    items = _items([(line.quantity, line.name) for line in quote.lines])
    total = money(quote.total_minor, quote.currency)
    delivery = (
        f", including {money(quote.delivery_minor, quote.currency)} delivery"
        if quote.delivery_minor
        else ""
    )
    approval = (
        " It will wait for your approval on the Restock website."
        if quote.waits_for_approval
        else ""
    )
    coming = quote.on_the_way
    if coming is not None:
        return (
            f"You already have {coming.quantity} on the way, arriving {day(coming.arrives_on)}. "
            f"Do you want {items} more from {x(quote.store_name)}, {total} in total{delivery}, "
            f"arriving by {day(quote.arrives_on)}?{approval} Say yes to order more, or no."
        )
    return (
        f"{items} from {x(quote.store_name)}, {total} in total{delivery}, "
        f"arriving by {day(quote.arrives_on)}.{approval} Should I order it?"
    )


def price_changed(quote: Quote) -> str:
    """The price moved since the read-back: read it back again."""
    return "The price has just changed. " + readback(quote)


def ask_pin() -> str:
    """Ask for the voice PIN."""
    return "Please say your four digit voice PIN to confirm."


def pin_wrong(attempts_left: int) -> str:
    """A wrong PIN, with the tries left before the lock."""
    tries = "one more try" if attempts_left == 1 else f"{attempts_left} more tries"
    return f"That PIN isn't right. You have {tries}. Please say your voice PIN."


def pin_locked() -> str:
    """Voice purchases are locked after too many wrong PINs."""
    return (
        "Voice purchases are locked after too many wrong PINs. Nothing was ordered. "
        "You can unlock them by setting a new PIN on the Restock website, "
        "and you can still ask about your orders."
    )


def pin_not_set(total: str) -> str:
    """A PIN is needed for this total, but none is set."""
    return (
        f"Orders over your voice limit need a voice PIN, and none is set. Nothing was ordered "
        f"for {total}. You can set a PIN on the Restock website."
    )


def ordered(order: OrderView, arrives_on: date | None = None) -> str:
    """The order went through (also said for a retried yes: it is the same order)."""
    items = _items([(line.quantity, line.name) for line in order.lines])
    when = f" It should arrive by {day(arrives_on)}." if arrives_on else ""
    return f"Done. I've ordered {items} for {money(order.total_minor, order.currency)}.{when}"


def needs_approval(order: OrderView) -> str:
    """The order waits for the shopper's approval on the website."""
    return (
        f"Your order for {money(order.total_minor, order.currency)} is waiting for approval. "
        "You can approve it on the Restock website."
    )


def not_ordered() -> str:
    """The shopper said no."""
    return "Okay, I won't order anything. What else can I do?"


def nothing_to_confirm() -> str:
    """A yes or a PIN with no question pending."""
    return "There's nothing waiting for a yes right now. What would you like to do?"


def no_history() -> str:
    """Reorder with no past orders."""
    return "You haven't ordered anything here yet. Try saying: buy coffee pods."


def not_in_history(query: str) -> str:
    """Reorder of something never ordered."""
    return f"I couldn't find {x(query)} in your past orders. You can say: buy {x(query)}."


def order_status(statuses: Sequence[OrderStatus]) -> str:
    """Open orders, their status and expected day."""
    if not statuses:
        return "You have no open orders."
    parts = []
    for status in statuses:
        order = status.order
        items = _items([(line.quantity, line.name) for line in order.lines])
        if order.test:
            parts.append(f"a test order of {items}, which never ships and cancels itself")
        elif order.status == "pending_approval" and order.approval_by == "merchant":
            parts.append(f"{items} is waiting for the store's approval")
        elif order.status == "pending_approval":
            parts.append(f"{items} is waiting for your approval{_held(order)}")
        elif status.delayed:
            parts.append(
                f"{items} is delayed and should now arrive by {day(status.arrives_on)}, "
                f"the carrier says: {x(status.order.delay_reason)}"
            )
        elif order.status == "shipped":
            parts.append(f"{items} has shipped and should arrive by {day(status.arrives_on)}")
        else:
            parts.append(f"{items} is placed and should arrive by {day(status.arrives_on)}")
    opening = (
        "You have one open order: " if len(parts) == 1 else f"You have {len(parts)} open orders: "
    )
    return opening + "; ".join(parts) + "."


def _held(order: OrderView) -> str:
    """Why the guard held a device order, old and new, as a clause ("" when it did not)."""
    hold = order.hold
    if hold is None:
        return ""
    if hold.reason == "product_changed":
        return ", because it is a different product from the one you chose"
    now = order.lines[0].unit_price_minor if order.lines else None
    if hold.consented_price_minor is None or now is None:
        return ", because its price went up"
    was = money(hold.consented_price_minor, order.currency)
    return f", because its price went up from {was} to {money(now, order.currency)} each"


def confirm_cancel(order: OrderView) -> str:
    """Ask before cancelling."""
    items = _items([(line.quantity, line.name) for line in order.lines])
    return f"Cancel your order of {items} from {day(order.created_at)}? Say yes or no."


def cancelled(order: OrderView) -> str:
    """The order is cancelled."""
    return f"Your order for {money(order.total_minor, order.currency)} is cancelled."


def kept_order() -> str:
    """The shopper said no to cancelling."""
    return "Okay, I've kept your order."


def nothing_to_cancel() -> str:
    """No order may still be cancelled."""
    return "You have no order that can still be cancelled."


def cancel_too_late() -> str:
    """The cancel window closed between question and answer."""
    return "Sorry, that order can no longer be cancelled."


def _amount(level: SupplyLevel) -> str:
    value = round(level.level) if level.unit == "count" else round(level.level, 1)
    name = x(spoken(level.product_name))
    if level.unit == "count":
        return f"about {value:g} {name}"
    if level.unit == "%":
        return f"about {value:g} percent of your {name}"
    unit = {"l": "litres", "g": "grams", "kg": "kilograms"}.get(level.unit, x(level.unit))
    return f"about {value:g} {unit} of {name}"


def supply_level(level: SupplyLevel) -> str:
    """ "About 6 coffee pods left, enough for about 3 days" (a prediction, so "about")."""
    said = f"You have {_amount(level)} left"
    if level.days_left is None:
        return said + "."
    days = max(0, round(level.days_left))
    if days == 0:
        return said + ", which will probably run out today."
    if days == 1:
        return said + ", enough for about 1 day."
    return said + f", enough for about {days} days."


def supply_unknown(query: str | None) -> str:
    """No appliance reports that supply."""
    if query:
        return f"I don't have readings for {x(query)} from your appliances."
    return "I don't have readings from any of your appliances yet."


def refused(reason: str) -> str:
    """A domain refusal or invalid request, by its reason word (one table)."""
    return _REFUSALS.get(reason, "Sorry, I couldn't do that. Nothing was ordered.")


_REFUSALS = {
    "out_of_stock": "Sorry, the store doesn't have enough of that in stock. Nothing was ordered.",
    "spending_cap": "That order would go over your spending limit, so I didn't place it.",
    "paused": "Ordering is paused on your account, so I didn't place it.",
    "unlinked": "Your account isn't set up to order from this store.",
    "needs_address": (
        "I can't place that yet: there's no delivery address on your account."
        " Please add one in the Restock app, then ask me again."
    ),
    "bad_quantity": "I can order between 1 and 99 at a time.",
    "unknown_sku": "Sorry, that product isn't available any more. Nothing was ordered.",
    "cancel_window_closed": "Sorry, that order can no longer be cancelled.",
    "invalid_transition": "Sorry, that order can't be changed any more.",
    "not_found": "Sorry, I couldn't find that.",
}
