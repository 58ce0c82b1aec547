"""A shopper's pages: devices, orders, voice settings and privacy. Each view calls one service."""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, logout_user
from werkzeug.wrappers import Response

from auth.link_attempts import attempts_on_my_devices
from auth.revocation import delete_account, export_account, unlink_my_device
from dashboard.common import act, act_on_order, confirm_page, get_db, offers
from dashboard.forms import (
    AddressForm,
    DeleteAccountForm,
    PinForm,
    ThresholdForm,
    VoiceApprovalForm,
    to_minor,
)
from orders.domain.actions import Viewer, check_action
from orders.domain.addresses import address_problems
from orders.domain.errors import DomainError
from orders.queries.addresses import my_address, my_addresses
from orders.queries.maintenance import upkeep_of
from orders.queries.tracking import order_tracking
from orders.services import addresses, consent, lifecycle, shopper
from orders.store.db import utcnow
from orders.store.model import STATUSES

bp = Blueprint("shop", __name__, url_prefix="/my")


@bp.before_request
def need_shopper() -> Any:
    """Only a signed-in account with a shopper profile gets past here."""
    if not current_user.is_authenticated:
        return current_app.login_manager.unauthorized()  # type: ignore[attr-defined]
    if current_user.shopper_id is None:
        abort(403, "These pages are for shopper accounts.")
    return None


def me() -> int:
    """The signed-in shopper's id."""
    return int(current_user.shopper_id)


@bp.get("/devices")
def devices() -> str:
    """My linked devices with their supply levels."""
    page = shopper.list_my_devices(get_db(), me(), cursor=request.args.get("cursor"))
    attempts = attempts_on_my_devices(get_db(), me())
    return render_template(
        "dashboard/my_devices.html",
        page=page,
        has_address=bool(my_addresses(get_db(), me())),
        attempts=attempts,
        upkeeps=upkeep_of(get_db(), [row.device_id for row in page.items]),
    )


@bp.post("/devices/<int:device_id>/pause")
def pause(device_id: int) -> Response:
    """Stop a device from ordering until resumed."""
    return act(lambda: shopper.set_paused(get_db(), me(), device_id, True),
               "Paused: this device will not order until you resume it.",
               url_for(".devices"))  # fmt: skip


@bp.post("/devices/<int:device_id>/resume")
def resume(device_id: int) -> Response:
    """Let a paused device order again."""
    return act(lambda: shopper.set_paused(get_db(), me(), device_id, False),
               "Resumed: this device orders again.", url_for(".devices"))  # fmt: skip


@bp.post("/devices/<int:device_id>/maintenance")
def maintenance(device_id: int) -> Response:
    """Turn suggested part orders for reported faults on or off."""
    allowed = request.form.get("allowed") == "y"
    done = ("Faults this device reports will suggest the part it needs, for you to approve."
            if allowed else "Faults this device reports will only notify you.")  # fmt: skip
    return act(lambda: shopper.set_maintenance_orders(get_db(), me(), device_id, allowed),
               done, url_for(".devices"))  # fmt: skip


@bp.get("/devices/<int:device_id>/unlink")
def unlink_confirm(device_id: int) -> str:
    """Ask before unlinking: the device stops ordering and needs a new code to come back."""
    row = shopper.my_device_row(get_db(), me(), device_id)
    return confirm_page(
        f"Unlink {row.label}?",
        ["It stops ordering at once and signs out. To use it again, link it with a new code.",
         "Orders it already placed are not cancelled."],
        action=url_for(".unlink", device_id=device_id), confirm_label=f"Unlink {row.label}",
        cancel_href=url_for(".devices"), keep_label="Keep it linked",
    )  # fmt: skip


@bp.post("/devices/<int:device_id>/unlink")
def unlink(device_id: int) -> Response:
    """End a device's link; its tokens stop working."""
    return act(lambda: unlink_my_device(get_db(), me(), device_id),
               "Unlinked: the device can no longer order.", url_for(".devices"))  # fmt: skip


@bp.get("/orders")
def orders() -> str:
    """My orders, newest first, each with the actions the domain offers me now."""
    status = request.args.get("status") or None
    if status is not None and status not in STATUSES:
        abort(400, "Unknown status.")
    page = shopper.list_my_orders(get_db(), me(), status=status, cursor=request.args.get("cursor"))
    return render_template(
        "dashboard/my_orders.html", page=page, status=status, statuses=STATUSES,
        offers=offers(page.items, Viewer.shopper(me())),
        has_address=bool(my_addresses(get_db(), me())),
    )  # fmt: skip


@bp.get("/orders/<order_id>")
def order(order_id: str) -> str:
    """One of my orders with its delivery: the expected day and the carrier's scans."""
    viewer = Viewer.shopper(me())
    view = lifecycle.get_order(get_db(), order_id, viewer)
    return render_template(
        "dashboard/my_order.html", order=view, tracking=order_tracking(get_db(), view.id),
        offer=offers([view], viewer)[view.id],
    )  # fmt: skip


@bp.get("/orders/<order_id>/cancel")
def cancel_confirm(order_id: str) -> str:
    """Ask before cancelling; only an order the domain lets me cancel now gets the question."""
    viewer = Viewer.shopper(me())
    view = lifecycle.get_order(get_db(), order_id, viewer)
    check_action(view, viewer, "cancel", utcnow())
    what = ", ".join(f"{line.quantity} × {line.name}" for line in view.lines)
    return confirm_page(
        f"Cancel your order of {what}?",
        ["The store will not ship it and you will not be charged for it."],
        action=url_for(".cancel", order_id=order_id), confirm_label="Yes, cancel the order",
        cancel_href=url_for(".orders"), keep_label="No, keep the order",
    )  # fmt: skip


@bp.post("/orders/<order_id>/cancel")
def cancel(order_id: str) -> Response:
    """Cancel one of my orders inside its cancel window."""
    viewer = Viewer.shopper(me())
    return act_on_order(order_id, viewer, "cancel",
                        lambda: lifecycle.cancel_order(get_db(), order_id, viewer),
                        "Order cancelled.", url_for(".orders"))  # fmt: skip


@bp.post("/orders/<order_id>/approve")
def approve(order_id: str) -> Response:
    """Approve an order waiting for my approval."""
    return act_on_order(order_id, Viewer.shopper(me()), "approve",
                        lambda: lifecycle.approve_order(get_db(), order_id, me()),
                        "Order approved.", url_for(".orders"))  # fmt: skip


@bp.post("/orders/<order_id>/reject")
def reject(order_id: str) -> Response:
    """Say no to an order waiting for my approval."""
    return act_on_order(order_id, Viewer.shopper(me()), "reject",
                        lambda: lifecycle.reject_order(get_db(), order_id, me()),
                        "Order rejected.", url_for(".orders"))  # fmt: skip


@bp.route("/voice", methods=["GET", "POST"])
def voice() -> Any:
    """My voice PIN, the order total above which Alexa asks for it, and approval mode."""
    db = get_db()
    pin_form, threshold_form, approval_form = PinForm(), ThresholdForm(), VoiceApprovalForm()
    status = 200
    if request.method == "POST":
        which = request.form.get("form")
        try:
            if which == "pin" and pin_form.validate_on_submit():
                consent.set_voice_pin(db, me(), pin_form.pin.data or "")
                flash("Voice PIN saved.", "ok")
                return redirect(url_for(".voice"))
            if which == "threshold" and threshold_form.validate_on_submit():
                minor = to_minor(threshold_form.threshold.data)
                consent.set_pin_threshold(db, me(), minor)
                flash("PIN threshold saved.", "ok")
                return redirect(url_for(".voice"))
            if which == "approval" and approval_form.validate_on_submit():
                on = bool(approval_form.approval.data)
                consent.set_voice_approval(db, me(), on)
                flash(
                    "Voice purchases now wait for your approval here."
                    if on
                    else "Voice purchases are ordered when you say yes.",
                    "ok",
                )
                return redirect(url_for(".voice"))
        except DomainError as exc:
            flash(exc.detail, "error")
        status = 400
    settings = shopper.voice_settings(db, me())
    if request.form.get("form") != "approval":  # else keep what was submitted
        approval_form.approval.data = settings.approval
    return render_template(
        "dashboard/voice.html", settings=settings, pin_form=pin_form,
        threshold_form=threshold_form, approval_form=approval_form,
    ), status  # fmt: skip


@bp.post("/voice/pin/clear")
def clear_pin() -> Response:
    """Remove my voice PIN."""
    return act(lambda: consent.clear_voice_pin(get_db(), me()),
               "Voice PIN removed.", url_for(".voice"))  # fmt: skip


@bp.route("/privacy", methods=["GET", "POST"])
def privacy() -> Any:
    """Delete my account (and unlink every device), or find the export."""
    form = DeleteAccountForm()
    if form.validate_on_submit():
        delete_account(get_db(), int(current_user.id))
        logout_user()
        flash("Your account is deleted and every device unlinked. Goodbye.", "ok")
        return redirect("/login")
    status = 400 if form.errors else 200
    return render_template("dashboard/privacy.html", form=form), status


@bp.get("/privacy/export.json")
def export() -> Response:
    """Everything Restock holds about me, as a JSON download."""
    data = export_account(get_db(), int(current_user.id))
    body = json.dumps(data, indent=2, ensure_ascii=False)
    return Response(
        body,
        mimetype="application/json",
        headers={
            "Content-Disposition": 'attachment; filename="restock-my-data.json"',
            "Cache-Control": "no-store",
        },
    )


# --- delivery addresses ------------------------------------------------------------------


@bp.get("/addresses")
def address_list() -> str:
    """My delivery addresses, the default first."""
    return render_template("dashboard/addresses.html", addresses=my_addresses(get_db(), me()))


@bp.route("/addresses/new", methods=["GET", "POST"])
def address_new() -> Any:
    """Add a delivery address; `next` is where to go back to (e.g. the /link page)."""
    form = AddressForm()
    back = _local(request.args.get("next"))
    if form.validate_on_submit() and _domain_accepts(form):
        addresses.add_my_address(
            get_db(), me(), form.address_fields(), make_default=bool(form.make_default.data)
        )
        flash("Address saved.", "ok")
        return redirect(back or url_for(".address_list"))
    status = 400 if request.method == "POST" else 200
    return render_template("dashboard/address_form.html", form=form, address=None), status


@bp.route("/addresses/<int:address_id>/edit", methods=["GET", "POST"])
def address_edit(address_id: int) -> Any:
    """Change a delivery address; orders already placed keep the address they had."""
    current = my_address(get_db(), me(), address_id)
    form = AddressForm(data=current.fields() if request.method == "GET" else None)
    if form.validate_on_submit() and _domain_accepts(form):
        addresses.edit_address(
            get_db(), me(), address_id, form.address_fields(),
            make_default=bool(form.make_default.data),
        )  # fmt: skip
        flash("Address saved. Orders already placed still ship where they did.", "ok")
        return redirect(url_for(".address_list"))
    status = 400 if request.method == "POST" else 200
    return render_template("dashboard/address_form.html", form=form, address=current), status


@bp.get("/addresses/<int:address_id>/delete")
def address_delete_confirm(address_id: int) -> str:
    """Ask before deleting an address."""
    current = my_address(get_db(), me(), address_id)
    return render_template("dashboard/address_delete.html", address=current)


@bp.post("/addresses/<int:address_id>/delete")
def address_delete(address_id: int) -> Response:
    """Delete an address (orders already placed keep their copy)."""
    return act(lambda: addresses.delete_address(get_db(), me(), address_id),
               "Address deleted.", url_for(".address_list"))  # fmt: skip


@bp.post("/addresses/<int:address_id>/default")
def address_default(address_id: int) -> Response:
    """Ship my orders to this address from now on."""
    return act(lambda: addresses.make_default(get_db(), me(), address_id),
               "Default address changed.", url_for(".address_list"))  # fmt: skip


def _domain_accepts(form: AddressForm) -> bool:
    """The domain's rules (e.g. a real ISO country code) as errors on the form's fields."""
    problems = address_problems(form.address_fields())
    for name, message in problems.items():
        getattr(form, name).errors.append(message)
    return not problems


def _local(target: str | None) -> str | None:
    """`target` if it is a path on this site (never another host), else None."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    return target
