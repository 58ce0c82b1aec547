"""`/link`: the RFC 8628 verification page where a shopper approves or denies a device."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from flask import Blueprint, g, render_template, request
from flask_limiter import Limiter
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DecimalField,
    FieldList,
    FloatField,
    Form,
    FormField,
    HiddenField,
    IntegerField,
    SelectField,
    StringField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, NumberRange, Optional

from auth.device_flow import PendingDevice, decide_device, pending_device
from auth.limits import client_address, limits, signed_in_account
from orders.domain.errors import InvalidRequest, NotAllowed
from orders.queries.addresses import my_addresses
from orders.services.devices import LinkRules, SlotRule
from orders.store.db import Database

WRONG_CODE = "That code doesn't match a device waiting to be linked. Check it and try again."


class CodeForm(FlaskForm):  # type: ignore[misc]
    """Step 1: the code the device shows."""

    user_code = StringField(
        "Code shown on your device", validators=[DataRequired(), Length(max=32)]
    )


SLOT_POLICY_CHOICES = [
    SelectChoice("threshold", "At a fixed level"),
    SelectChoice("predictive", "Before it runs out (learns my use)"),
    SelectChoice("off", "Never (I'll order it myself)"),
]


class SlotRuleForm(Form):  # type: ignore[misc]
    """One slot's rule on the confirmation page (a printer's cyan ink)."""

    slot = HiddenField(validators=[DataRequired(), Length(max=64)])
    policy = SelectField("Reorder", choices=SLOT_POLICY_CHOICES, validate_choice=True)
    reorder_point = FloatField(
        "Reorder at (leave empty for a fifth)", validators=[Optional(), NumberRange(min=0)]
    )
    quantity = IntegerField(
        "Packs per order", default=1, validators=[Optional(), NumberRange(min=1, max=99)]
    )


class DecisionForm(FlaskForm):  # type: ignore[misc]
    """Step 2: what the device orders and under which rules; `decision` comes from the button."""

    user_code = HiddenField(validators=[DataRequired(), Length(max=32)])
    product = SelectField("Product this device orders", choices=[], validate_choice=True)
    approval_required = BooleanField("Ask me to approve every order before it is placed")
    per_order_cap = DecimalField(
        "Largest single order",
        places=2,
        validators=[Optional(), NumberRange(min=0, max=100000)],
    )
    monthly_cap = DecimalField(
        "Monthly spending limit",
        places=2,
        validators=[Optional(), NumberRange(min=0, max=1000000)],
    )
    price_tolerance = DecimalField(
        "Let orders through if the price rises by up to (per item; empty: any rise asks me)",
        places=2,
        validators=[Optional(), NumberRange(min=0, max=100000)],
    )
    reorder_point = FloatField(
        "Reorder when the supply falls to",
        validators=[Optional(), NumberRange(min=0)],
    )
    # Optional: a client that leaves it out (CONTRACT names only product and decision)
    # links to the shopper's default address.
    address = SelectField("Ship its orders to", choices=[], default="", validate_choice=True)
    # A multi-slot device: a rule per slot (a client that leaves them out gets the defaults).
    slots = FieldList(FormField(SlotRuleForm), min_entries=0, max_entries=32)
    maintenance_orders = BooleanField(
        "When it reports a fault, suggest the part it needs (I approve it with one tap)"
    )


class DenyForm(FlaskForm):  # type: ignore[misc]
    """Denying needs only the CSRF token: the rule fields don't matter then."""


def _minor(value: Decimal | None) -> int | None:
    # Caps are typed in major units; every currency we sell in has two decimals.
    return None if value is None else int((value * 100).to_integral_value())


def _slot_rules(form: DecisionForm, device: PendingDevice) -> tuple[SlotRule, ...]:
    """The rules given per slot; slots the form left out keep the model's defaults."""
    known = {slot.name for slot in device.slots}
    return tuple(
        SlotRule(
            entry.slot.data,
            entry.policy.data,
            entry.reorder_point.data,
            entry.quantity.data or 1,
        )
        for entry in form.slots
        if entry.slot.data in known
    )


def _slot_entries(form: DecisionForm, device: PendingDevice) -> None:
    """One entry per slot of the device, in the model's order, with its default policy."""
    for slot in device.slots:
        form.slots.append_entry({"slot": slot.name, "policy": slot.policy, "quantity": 1})


def _rules(form: DecisionForm, device: PendingDevice) -> LinkRules:
    return LinkRules(
        product_sku=form.product.data if device.products and not device.slots else None,
        approval_required=bool(form.approval_required.data),
        per_order_cap_minor=_minor(form.per_order_cap.data),
        monthly_cap_minor=_minor(form.monthly_cap.data),
        price_tolerance_minor=_minor(form.price_tolerance.data),
        reorder_point=form.reorder_point.data if device.model_kind == "appliance" else None,
        address_id=int(form.address.data) if form.address.data else None,
        slots=_slot_rules(form, device) if device.slots else None,
        maintenance_orders=bool(form.maintenance_orders.data),
    )


def _address_choices(db: Database) -> list[tuple[str, str]]:
    """The signed-in shopper's addresses; "" ships to whichever is their default."""
    if current_user.shopper_id is None:
        return [("", "My default address")]
    found = my_addresses(db, int(current_user.shopper_id))
    return [("", "My default address")] + [
        (str(a.id), f"{a.address.name}, {a.address.line1}, {a.address.city}") for a in found
    ]


def make_link_blueprint(db: Database, limiter: Limiter) -> Blueprint:
    """The `/link` page."""
    bp = Blueprint("auth_link", __name__, template_folder="templates")

    def wrong_code(form: FlaskForm) -> tuple[str, int]:
        g.wrong_user_code = True  # counted against the per-account and per-address limits
        return render_template("auth/link.html", form=form, error=WRONG_CODE), 400

    def confirm_page(form: DecisionForm, device: PendingDevice, error: str | None) -> str:
        return render_template(
            "auth/link_confirm.html",
            form=form,
            device=device,
            error=error,
            is_shopper=current_user.shopper_id is not None,
            slot_info={slot.name: slot for slot in device.slots},
        )

    @bp.route("/link", methods=["GET", "POST"])
    @login_required  # type: ignore[untyped-decorator]
    @limiter.limit(lambda: limits().link, key_func=signed_in_account)
    @limiter.limit(
        lambda: limits().wrong_user_codes,
        key_func=signed_in_account,
        methods=["POST"],
        deduct_when=lambda _response: bool(g.get("wrong_user_code")),
        scope="wrong-user-code",
    )
    # Per address too: each free account has its own per-account budget (RFC 8628 5.1).
    @limiter.limit(
        lambda: limits().wrong_user_codes_per_address,
        key_func=client_address,
        methods=["POST"],
        deduct_when=lambda _response: bool(g.get("wrong_user_code")),
        scope="wrong-user-code-address",
    )
    def link() -> Any:
        if request.method == "GET":
            form = CodeForm(user_code=request.args.get("user_code", "")[:32])
            return render_template("auth/link.html", form=form, error=None)
        if "decision" not in request.form:
            code_form = CodeForm()
            if not code_form.validate_on_submit():
                return render_template("auth/link.html", form=code_form, error=None), 400
            try:
                device = pending_device(db, code_form.user_code.data or "")
            except InvalidRequest:
                return wrong_code(code_form)
            form = DecisionForm(formdata=None, user_code=device.user_code)
            form.product.choices = list(device.products)
            form.address.choices = _address_choices(db)
            _slot_entries(form, device)
            return confirm_page(form, device, None)
        return _decide()

    def _decide() -> Any:
        form = DecisionForm()
        try:
            device = pending_device(db, form.user_code.data or "")
        except InvalidRequest:
            return wrong_code(CodeForm(formdata=None))
        form.product.choices = list(device.products)
        form.address.choices = _address_choices(db)
        if not device.products or device.slots:  # several slots each name their product
            form.product.validate_choice = False
        if not form.slots.entries:  # a client that sent no slot rules gets the defaults
            _slot_entries(form, device)
        decision = request.form.get("decision")
        checked = form if decision == "approve" else DenyForm()
        if decision not in ("approve", "deny") or not checked.validate_on_submit():
            problem = (
                "Please correct the fields marked below."
                if form.errors
                else "The form expired; please choose again."
            )
            return confirm_page(form, device, problem), 400
        try:
            decide_device(
                db,
                user_code=device.user_code,
                account_id=int(current_user.get_id()),
                approve=decision == "approve",
                rules=_rules(form, device) if decision == "approve" else None,
            )
        except InvalidRequest as exc:
            if exc.reason == "bad_user_code":
                return wrong_code(CodeForm(formdata=None))
            return confirm_page(form, device, exc.detail), 400
        except NotAllowed as exc:  # device_taken: someone else's device stays theirs
            return confirm_page(form, device, exc.detail), 409
        return render_template("auth/link_done.html", device=device, approved=decision == "approve")

    return bp
