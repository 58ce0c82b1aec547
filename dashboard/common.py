"""Helpers every dashboard page shares: HTML error pages, money and times, flash-and-redirect."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import cast
from urllib.parse import urlencode

from flask import current_app, flash, redirect, render_template, request
from werkzeug.wrappers import Response

from dashboard.forms import ActionForm
from orders.domain.actions import Action, Allowed, Viewer, allowed_actions, check_action
from orders.domain.errors import DomainError, InvalidRequest, NotAllowed, NotFound, OrderRefused
from orders.queries.snapshots import OrderView
from orders.services.lifecycle import get_order
from orders.store.db import Database, utcnow

# Domain errors → HTTP status for the HTML pages (the API keeps problem+json).
STATUS_FOR: list[tuple[type[DomainError], int]] = [
    (NotFound, 404),
    (OrderRefused, 403),
    (NotAllowed, 409),
    (InvalidRequest, 400),
]


def get_db() -> Database:
    """The app's database (create_app puts it in `app.extensions["restock"]`)."""
    return cast(Database, current_app.extensions["restock"]["db"])


def offers(orders: Iterable[OrderView], viewer: Viewer) -> dict[str, Allowed]:
    """What `viewer` may do to each order now, by order id: templates ask, never decide."""
    now = utcnow()
    return {order.id: allowed_actions(order, viewer, now) for order in orders}


def error_page(status: int, title: str, detail: str) -> tuple[str, int]:
    """An HTML error page (the app's default answer is problem+json, for APIs)."""
    return render_template(
        "dashboard/error.html", status=status, title=title, detail=detail
    ), status


def confirm_page(
    question: str,
    consequences: list[str],
    *,
    action: str,
    confirm_label: str,
    cancel_href: str,
    keep_label: str = "No, go back",
) -> str:
    """Ask before a change that can't be undone: a page with one POST button (no JavaScript)."""
    return render_template(
        "dashboard/confirm.html", question=question, consequences=consequences, action=action,
        confirm_label=confirm_label, cancel_href=cancel_href, keep_label=keep_label,
    )  # fmt: skip


def money(minor: int | None, currency: str = "") -> str:
    """`1599, "EUR"` → `EUR 15.99` (two-decimal currencies; Restock stores minor units)."""
    if minor is None:
        return "—"
    sign = "-" if minor < 0 else ""
    whole, cents = divmod(abs(minor), 100)
    return f"{currency} {sign}{whole:,}.{cents:02d}".strip()


def act(work: Callable[[], object], done: str, back: str) -> Response:
    """Run one domain change from a CSRF-checked POST; flash the outcome and redirect."""
    form = ActionForm()
    if not form.validate_on_submit():
        flash("The form expired; please try again.", "error")
        return redirect(back)
    try:
        work()
    except NotFound:
        raise
    except DomainError as exc:
        flash(exc.detail or exc.reason, "error")
    else:
        flash(done, "ok")
    return redirect(back)


def act_on_order(
    order_id: str, viewer: Viewer, action: Action, work: Callable[[], object], done: str, back: str
) -> Response:
    """`act` for an order: refuse what its page does not offer; the service decides again."""

    def checked() -> object:
        check_action(get_order(get_db(), order_id, viewer), viewer, action, utcnow())
        return work()

    return act(checked, done, back)


def safe_back(default: str) -> str:
    """Where to go after an action: a same-site path from the form, else `default`."""
    target = request.form.get("back", "")
    if target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return default


def page_url(cursor: str | None) -> str:
    """This page's URL with the same filters and another cursor (None: the first page)."""
    args = [(k, v) for k, v in request.args.items(multi=True) if k != "cursor"]
    if cursor:
        args.append(("cursor", cursor))
    return f"{request.path}?{urlencode(args)}" if args else request.path
