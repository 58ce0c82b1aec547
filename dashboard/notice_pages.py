"""The shopper's notification centre: the list, read/unread, e-mail choices, and the page a
signed e-mail link opens."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user
from werkzeug.wrappers import Response

from dashboard.common import act, act_on_order, get_db, safe_back
from dashboard.forms import AccountLimitForm, ActionForm, EmailNoticesForm, choices
from dashboard.notice_links import NoticeLinks, SignedAction
from dashboard.shopper_pages import me, need_shopper
from orders.domain.actions import Viewer
from orders.domain.notices import NOTICE_TEXT
from orders.services import lifecycle, link_rules, notifications
from orders.store.db import utcnow

bp = Blueprint("notices", __name__, url_prefix="/my/notifications")
bp.before_request(need_shopper)

DONE = {
    "cancel": "Order cancelled.",
    "approve": "Order approved: the store will ship it.",
    "reject": "Order rejected.",
}


@bp.get("")
def index() -> str:
    """My notices, newest first, unread ones marked."""
    return render_template(
        "dashboard/notifications.html", notices=notifications.my_notices(get_db(), me())
    )


@bp.post("/<int:notice_id>/read")
def read(notice_id: int) -> Response:
    """Mark one notice read."""
    return act(lambda: notifications.mark_read(get_db(), me(), notice_id),
               "Marked as read.", safe_back(url_for(".index")))  # fmt: skip


@bp.post("/read-all")
def read_all() -> Response:
    """Mark every notice read."""
    return act(lambda: notifications.mark_read(get_db(), me()),
               "All notifications marked as read.", url_for(".index"))  # fmt: skip


@bp.route("/settings", methods=["GET", "POST"])
def settings() -> Any:
    """What arrives by e-mail, and my monthly limit across every channel."""
    db = get_db()
    chosen, email = notifications.email_choices(db, me())
    form = EmailNoticesForm(data={"kinds": sorted(chosen)} if request.method == "GET" else None)
    form.kinds.choices = choices(list(NOTICE_TEXT.items()))
    if form.validate_on_submit():
        notifications.set_email_choices(db, me(), form.kinds.data or [])
        flash("E-mail choices saved.", "ok")
        return redirect(url_for(".settings"))
    cap = link_rules.account_monthly_cap(db, me())
    limit_form = AccountLimitForm(data={"monthly_cap": None if cap is None else cap / 100})
    return render_template(
        "dashboard/notice_settings.html", form=form, email=email, limit_form=limit_form,
        cap=cap, mail_on=bool(current_app.extensions["restock"]["settings"].smtp_url),
    ), 400 if form.errors else 200  # fmt: skip


@bp.route("/act/<token>", methods=["GET", "POST"])
def act_by_link(token: str) -> Any:
    """An e-mail's signed link: after signing in, one button does what the link says."""
    signed = _checked(token)
    viewer = Viewer.shopper(me())
    order = lifecycle.get_order(get_db(), signed.order_id, viewer)
    if request.method == "POST":
        work = {
            "cancel": lambda: lifecycle.cancel_order(get_db(), order.id, viewer),
            "approve": lambda: lifecycle.approve_order(get_db(), order.id, me()),
            "reject": lambda: lifecycle.reject_order(get_db(), order.id, me()),
        }[signed.action]
        back = url_for("dashboard.shop.order", order_id=order.id)
        return act_on_order(order.id, viewer, signed.action, work, DONE[signed.action], back)  # type: ignore[arg-type]
    return render_template(
        "dashboard/notice_act.html", signed=signed, order=order, form=ActionForm()
    )


def _checked(token: str) -> SignedAction:
    """The link's action for the signed-in shopper; 404 for a bad, expired or foreign link."""
    links = NoticeLinks(current_app.config["SECRET_KEY"], "")
    signed = links.check(token, utcnow())
    if signed is None or signed.shopper_id != me():
        abort(404, "This link has expired or is not for this account. Open the order instead.")
    return signed


@bp.app_context_processor
def unread() -> dict[str, Any]:
    """The nav's badge: how many notices the signed-in shopper has not read."""

    def count() -> int:
        if not current_user.is_authenticated or current_user.shopper_id is None:
            return 0
        return notifications.unread_count(get_db(), int(current_user.shopper_id))

    return {"unread_notices": count}
