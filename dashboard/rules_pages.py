"""A shopper's device page: every rule of the link in words, a form to change them, the history."""

from __future__ import annotations

from datetime import UTC, datetime, time
from decimal import Decimal
from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user

from dashboard.common import get_db
from dashboard.forms import AccountLimitForm, DeviceRulesForm, choices, to_minor
from dashboard.shopper_pages import me, need_shopper
from orders.domain.errors import InvalidRequest
from orders.domain.link_rules import RISK_WORDS, Rules, risk_word
from orders.services import link_rules

bp = Blueprint("rules", __name__, url_prefix="/my")
bp.before_request(need_shopper)

# A domain refusal of an edit, shown on the field it is about.
FIELD_OF = {
    "bad_name": "name",
    "product_not_allowed": "product",
    "bad_quantity": "quantity",
    "bad_cap": "per_order_cap",
    "bad_policy": "policy",
    "bad_risk": "risk",
    "bad_reorder_point": "reorder_point",
    "bad_order_up_to": "order_up_to",
    "bad_paused_until": "paused_until",
}


@bp.route("/devices/<int:device_id>", methods=["GET", "POST"])
def device(device_id: int) -> Any:
    """One of my devices: its rules in words, and the form that changes them."""
    db = get_db()
    view = link_rules.my_device_rules(db, me(), device_id)
    form = DeviceRulesForm(data=_form_data(view) if request.method == "GET" else None)
    form.product.choices = choices([(p.sku, p.name) for p in view.products])
    if view.rules.product_sku and view.rules.product_sku not in {p.sku for p in view.products}:
        form.product.choices.extend(choices([(view.rules.product_sku, view.rules.product_sku)]))
    if view.slot is None:  # a button orders when pressed: no policy to choose
        form.policy.choices = [c for c in form.policy.choices if c.value == "threshold"]
    status = 200
    if request.method == "POST":
        if form.validate_on_submit():
            try:
                found = link_rules.change_rules(
                    db, me(), device_id, _wanted(form, view.rules),
                    actor="shopper", account_id=int(current_user.id),
                )  # fmt: skip
            except InvalidRequest as exc:
                getattr(form, FIELD_OF.get(exc.reason, "name")).errors.append(exc.detail)
            else:
                flash(
                    f"Saved {len(found)} change{'s' if len(found) != 1 else ''}: the next "
                    "order follows the new rules."
                    if found
                    else "Nothing changed.",
                    "ok",
                )
                return redirect(url_for(".device", device_id=device_id))
        status = 400
    return render_template(
        "dashboard/my_device.html", view=view, form=form, limit_form=AccountLimitForm()
    ), status


@bp.post("/limit")
def account_limit() -> Any:
    """My monthly limit across every device, Alexa and the web."""
    form = AccountLimitForm()
    back = request.form.get("back", "")
    target = back if back.startswith("/my/") else url_for("dashboard.notices.settings")
    if form.validate_on_submit():
        link_rules.set_account_monthly_cap(get_db(), me(), to_minor(form.monthly_cap.data))
        flash("Monthly limit saved: it counts every order from every device, Alexa and the web.",
              "ok")  # fmt: skip
    else:
        flash("Monthly limit: " + " ".join(e for errs in form.errors.values() for e in errs),
              "error")  # fmt: skip
    return redirect(target)


def _form_data(view: link_rules.DeviceRules) -> dict[str, Any]:
    rules = view.rules
    return {
        "name": rules.name or "",
        "product": rules.product_sku,
        "quantity": rules.quantity,
        "approval_required": rules.approval_required,
        "per_order_cap": _major(rules.per_order_cap_minor),
        "monthly_cap": _major(rules.monthly_cap_minor),
        "policy": rules.policy,
        "reorder_point": rules.reorder_point,
        "order_up_to": rules.order_up_to,
        "risk": risk_word(rules.risk),
        "paused": rules.paused,
        "paused_until": rules.paused_until.date() if _ahead(rules.paused_until) else None,
    }


def _ahead(moment: datetime | None) -> bool:
    return moment is not None and moment > datetime.now(UTC)


def _wanted(form: DeviceRulesForm, current: Rules) -> Rules:
    until = form.paused_until.data
    return Rules(
        name=form.name.data,
        product_sku=form.product.data or None,
        quantity=form.quantity.data,
        approval_required=bool(form.approval_required.data),
        per_order_cap_minor=to_minor(form.per_order_cap.data),
        monthly_cap_minor=to_minor(form.monthly_cap.data),
        policy=form.policy.data or current.policy,
        reorder_point=form.reorder_point.data,
        order_up_to=form.order_up_to.data,
        risk=RISK_WORDS.get(form.risk.data or "", current.risk),
        paused=bool(form.paused.data),
        # Ordering resumes at the start of the chosen day.
        paused_until=datetime.combine(until, time(), tzinfo=UTC) if until else None,
    )


def _major(minor: int | None) -> Decimal | None:
    return None if minor is None else Decimal(minor) / 100
