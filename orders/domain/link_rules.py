"""A link's rules as a shopper reads and changes them: checks, plain words, and what changed."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from datetime import datetime

from orders.domain.errors import InvalidRequest
from orders.domain.rules import check_quantity

POLICIES = ("alert", "threshold", "predictive", "up_to")
# The predictive policy's accepted chance of running out before a delivery, in words.
RISK_WORDS = {"rarely_run_out": 0.003, "balanced": 0.05, "fewest_orders": 0.15}
RISK_TEXT = {
    "rarely_run_out": "rarely run out",
    "balanced": "balanced",
    "fewest_orders": "fewest orders",
}
NAME_MAX = 100
MAX_CAP_MINOR = 10_000_000


@dataclass(frozen=True)
class Rules:
    """Every rule of one link, as a whole (an edit sends them all)."""

    name: str | None
    product_sku: str | None
    quantity: int
    approval_required: bool
    per_order_cap_minor: int | None
    monthly_cap_minor: int | None
    policy: str
    reorder_point: float | None
    order_up_to: float | None
    risk: float
    paused: bool
    paused_until: datetime | None


@dataclass(frozen=True)
class Change:
    """One rule changed: its name and its value before and after, as the history shows it."""

    field: str
    old: str | None
    new: str | None


def risk_word(risk: float) -> str:
    """The word for a risk: the nearest of RISK_WORDS."""
    return min(RISK_WORDS, key=lambda word: abs(RISK_WORDS[word] - risk))


def check_rules(rules: Rules, *, skus: tuple[str, ...], has_slots: bool, now: datetime) -> Rules:
    """`rules` when a shopper may set them on this device, else InvalidRequest naming the field.

    `skus`: what the device's model may order; `has_slots`: it reports supply levels.
    """
    name = (rules.name or "").strip() or None
    if name is not None and (len(name) > NAME_MAX or not name.isprintable()):
        raise InvalidRequest("bad_name", f"a name is 1 to {NAME_MAX} printable characters")
    if rules.product_sku is not None and rules.product_sku not in skus:
        raise InvalidRequest("product_not_allowed", "this device can't order that product")
    check_quantity(rules.quantity)
    for cap in (rules.per_order_cap_minor, rules.monthly_cap_minor):
        if cap is not None and not 0 <= cap <= MAX_CAP_MINOR:
            raise InvalidRequest("bad_cap", "a limit is an amount from 0 up")
    if rules.policy not in POLICIES or (not has_slots and rules.policy != "threshold"):
        raise InvalidRequest("bad_policy", "choose how the device orders")
    if rules.risk not in RISK_WORDS.values():
        raise InvalidRequest("bad_risk", "choose how much risk of running out is fine")
    for level in (rules.reorder_point, rules.order_up_to):
        if level is not None and level < 0:
            raise InvalidRequest("bad_reorder_point", "a level can't be negative")
    if rules.policy == "up_to":
        if rules.order_up_to is None:
            raise InvalidRequest("bad_order_up_to", "say up to which level to order")
        if rules.reorder_point is not None and rules.order_up_to <= rules.reorder_point:
            raise InvalidRequest("bad_order_up_to", "order up to a level above the reorder level")
    if rules.paused_until is not None and rules.paused_until <= now:
        raise InvalidRequest("bad_paused_until", "a vacation ends in the future")
    return replace(rules, name=name)


def changes(old: Rules, new: Rules) -> list[Change]:
    """What differs between two rule sets, in field order, as text."""
    return [
        Change(f.name, _text(getattr(old, f.name)), _text(getattr(new, f.name)))
        for f in fields(Rules)
        if getattr(old, f.name) != getattr(new, f.name)
    ]


def describe(
    rules: Rules,
    *,
    product_name: str | None,
    price: str | None,
    money: dict[str, str],
    unit: str | None,
    slot: str | None,
    now: datetime,
) -> list[str]:
    """The rules in plain words, one sentence each. `money` holds the caps already written in
    the store's currency (keys `per_order`, `monthly`); `unit`/`slot`: the supply measured."""
    words = []
    if product_name is None:
        words.append("Orders nothing yet: choose a product.")
    else:
        each = f" ({price} each)" if price else ""
        words.append(f"Orders {rules.quantity} × {product_name}{each} at a time.")
    words.append(
        "Asks you to approve every order before the store ships it."
        if rules.approval_required
        else "Orders without asking you first; you can cancel within the store's cancel window."
    )
    words.append(
        f"Never more than {money['per_order']} per order."
        if rules.per_order_cap_minor is not None
        else "No limit per order."
    )
    words.append(
        f"At most {money['monthly']} a month from this device."
        if rules.monthly_cap_minor is not None
        else "No monthly limit for this device (your account-wide limit still applies)."
    )
    if slot is not None:
        words.append(_policy_words(rules, slot, unit or ""))
    if rules.paused:
        words.append("Paused: orders nothing until you resume it.")
    elif rules.paused_until is not None and rules.paused_until > now:
        until = f"{rules.paused_until:%Y-%m-%d %H:%M} UTC"
        words.append(f"On vacation until {until}: orders nothing before then.")
    return words


def _policy_words(rules: Rules, slot: str, unit: str) -> str:
    level = "its automatic level"
    if rules.reorder_point is not None:
        level = f"{rules.reorder_point:g} {unit}".strip()
    if rules.policy == "alert":
        return f"Never orders by itself: tells you when {slot} runs low."
    if rules.policy == "predictive":
        word = RISK_TEXT[risk_word(rules.risk)]
        return f"Orders before {slot} is predicted to run out, aiming for: {word}."
    if rules.policy == "up_to":
        top = "" if rules.order_up_to is None else f"{rules.order_up_to:g} {unit}".strip()
        return f"When {slot} falls to {level}, orders enough to fill it up to {top}."
    return f"Orders when {slot} falls to {level}."


def _text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)
