"""`orders/` is laid out by room, and no module in it is named after a channel (#15, item 2)."""

from __future__ import annotations

from pathlib import Path

ORDERS = Path(__file__).resolve().parents[2] / "orders"
ROOMS = {"domain", "services", "queries", "store"}
# Words that name a channel or an adapter's layer, not something orders does.
CHANNEL_WORDS = {
    "view", "views", "web", "http", "coap", "hub", "alexa", "voice", "skill", "dashboard",
    "api", "button", "twin",
}  # fmt: skip


def test_orders_holds_only_its_four_rooms() -> None:
    """Every package under orders/ is one of domain, services, queries, store."""
    packages = {p.name for p in ORDERS.iterdir() if p.is_dir() and p.name != "__pycache__"}
    assert packages == ROOMS
    loose = sorted(p.name for p in ORDERS.glob("*.py") if p.name != "__init__.py")
    assert loose == []


def test_no_module_in_orders_is_named_after_a_channel_or_views() -> None:
    """Modules say what they do with orders, never which channel or layer calls them."""
    named = [
        str(path.relative_to(ORDERS))
        for path in ORDERS.rglob("*.py")
        if CHANNEL_WORDS & set(path.stem.split("_"))
    ]
    assert named == []


def test_where_a_press_becomes_an_order_is_found_by_name() -> None:
    """The press use case and the one placement decision sit where a newcomer looks first."""
    assert (ORDERS / "services" / "presses.py").is_file()
    assert (ORDERS / "domain" / "decision.py").is_file()
