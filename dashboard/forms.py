"""The dashboard's HTML forms (Flask-WTF: every POST carries a CSRF token)."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateField,
    DecimalField,
    FloatField,
    IntegerField,
    RadioField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional, Regexp
from wtforms.widgets import CheckboxInput, ListWidget

from auth.principal import MERCHANT_API_SCOPES, SCOPE_TEXT
from orders.store.model import CONDITION_KINDS, DEVICE_KINDS, SLOT_POLICIES, SLOT_UNITS


class ActionForm(FlaskForm):  # type: ignore[misc]
    """A button that changes something: only the CSRF token."""


class PinForm(FlaskForm):  # type: ignore[misc]
    """Set the voice PIN."""

    pin = StringField(
        "New 4-digit voice PIN",
        validators=[DataRequired(), Regexp(r"^[0-9]{4}$", message="Exactly 4 digits.")],
    )


class ThresholdForm(FlaskForm):  # type: ignore[misc]
    """Above what order total a voice purchase needs a PIN."""

    threshold = DecimalField(
        "Without a PIN, refuse voice purchases above (leave empty for no limit)",
        places=2,
        validators=[Optional(), NumberRange(min=0, max=100000)],
    )


class ReviewForm(FlaskForm):  # type: ignore[misc]
    """From what order total the store approves orders itself."""

    review_over = DecimalField(
        "Hold orders of this total or more for my approval (leave empty to hold none)",
        places=2,
        validators=[Optional(), NumberRange(min=0.01, max=10_000_000)],
    )


class VoiceApprovalForm(FlaskForm):  # type: ignore[misc]
    """Whether voice purchases wait for approval on the web."""

    approval = BooleanField("Voice purchases wait for my approval here")


class DeleteAccountForm(FlaskForm):  # type: ignore[misc]
    """Deleting an account needs the word typed, not just a click."""

    confirm = StringField(
        'Type "DELETE" to confirm',
        validators=[DataRequired(), Regexp(r"^DELETE$", message="Type DELETE in capitals.")],
    )


class ProductForm(FlaskForm):  # type: ignore[misc]
    """A catalog entry."""

    sku = StringField("SKU", validators=[DataRequired(), Length(max=64)])
    name = StringField("Name", validators=[DataRequired(), Length(max=200)])
    price = DecimalField("Price", places=2, validators=[InputRequired(), NumberRange(min=0)])
    stock = IntegerField("Units in stock", validators=[InputRequired(), NumberRange(min=0)])
    pack_size = IntegerField("Pack size", default=1, validators=[InputRequired(), NumberRange(1)])
    aliases = TextAreaField(
        "Spoken aliases (one per line or comma-separated)", validators=[Length(max=2000)]
    )
    active = BooleanField("On sale", default=True)
    low_stock_level = IntegerField(
        "Low-stock level",
        default=10,
        validators=[Optional(), NumberRange(min=0, max=1_000_000)],
    )


class CheckboxesField(SelectMultipleField):  # type: ignore[misc]
    """Several choices as a list of checkboxes (easier by keyboard than a multi-select)."""

    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class ModelForm(FlaskForm):  # type: ignore[misc]
    """A new device model (one optional consumable slot for appliances)."""

    name = StringField("Model name", validators=[DataRequired(), Length(max=200)])
    kind = SelectField("Kind", choices=[SelectChoice(k, k.capitalize()) for k in DEVICE_KINDS])
    skus = CheckboxesField("Products its devices may order", choices=[])
    security = SelectField(
        "How its devices prove who they are",
        choices=[
            SelectChoice("oscore", "OSCORE: each request protected with the device's own keys"),
            SelectChoice("bearer", "Token in each request (devices that cannot do OSCORE)"),
        ],
        default="oscore",
    )
    test_mode = BooleanField("Test mode (for development and certification devices)")
    slot_name = StringField("Slot name (appliances, e.g. pods)", validators=[Length(max=64)])
    slot_unit = SelectField("Slot unit", choices=[SelectChoice(u) for u in SLOT_UNITS])
    slot_capacity = DecimalField(
        "Slot capacity", places=2, validators=[Optional(), NumberRange(min=0.01)]
    )
    slot_sku = SelectField("Product that refills the slot", choices=[])
    slot_units_per_pack = DecimalField(
        "Slot units one pack refills (default: the whole capacity)",
        places=2,
        validators=[Optional(), NumberRange(min=0.01)],
    )


class ModelEditForm(FlaskForm):  # type: ignore[misc]
    """What an existing model's devices may order, and its test mode."""

    skus = CheckboxesField("Products its devices may order", choices=[])
    test_mode = BooleanField("Test mode (for development and certification devices)")


CONDITION_TEXT = {
    "flag": "due when true (vb)",
    "percent": "due at or below the threshold",
    "code": "an error code, due when not 0",
    "counter": "due at or above the threshold",
}
SENML_NAME = Regexp(r"^[A-Za-z0-9_]{1,64}$", message="Letters, digits and _ only.")


class SlotForm(FlaskForm):  # type: ignore[misc]
    """One more consumable slot on a model (a printer's next ink)."""

    name = StringField("Slot name (as the device reports it, e.g. cyan_ink)",
                       validators=[DataRequired(), SENML_NAME])  # fmt: skip
    unit = SelectField("Unit", choices=[SelectChoice(u) for u in SLOT_UNITS])
    capacity = DecimalField(
        "Capacity", places=2, validators=[InputRequired(), NumberRange(min=0.01)]
    )
    sku = SelectField("Product that refills it", choices=[])
    units_per_pack = DecimalField(
        "Units one pack refills (default: the whole capacity)",
        places=2,
        validators=[Optional(), NumberRange(min=0.01)],
    )
    policy = SelectField(
        "Default for new links",
        choices=[SelectChoice(p, "at a fixed level" if p == "threshold" else "before it runs out")
                 for p in SLOT_POLICIES],
    )  # fmt: skip


class ConditionForm(FlaskForm):  # type: ignore[misc]
    """A fault or service condition a model reports, and what it suggests."""

    name = StringField("Name (as the device reports it, e.g. descale)",
                       validators=[DataRequired(), SENML_NAME])  # fmt: skip
    kind = SelectField(
        "Kind", choices=[SelectChoice(k, f"{k}: {CONDITION_TEXT[k]}") for k in CONDITION_KINDS]
    )
    threshold = DecimalField("Threshold (percent and counter)", places=2,
                             validators=[Optional(), NumberRange(min=0)])  # fmt: skip
    message = StringField("Message to the shopper and you",
                          validators=[DataRequired(), Length(max=200)])  # fmt: skip
    sku = SelectField("Part it suggests", choices=[])


class ShipForm(FlaskForm):  # type: ignore[misc]
    """Mark an order shipped."""

    tracking_ref = StringField("Tracking reference", validators=[Length(max=200)])


class RedirectUrisForm(FlaskForm):  # type: ignore[misc]
    """The Alexa client's redirect URIs."""

    redirect_uris = TextAreaField(
        "Redirect URIs (one per line)", validators=[DataRequired(), Length(max=20000)]
    )


class ApiClientForm(FlaskForm):  # type: ignore[misc]
    """A new merchant API client and the areas it may reach (nothing is granted unasked)."""

    name = StringField("Client name", validators=[DataRequired(), Length(max=200)])
    scopes = CheckboxesField(
        "Scopes",
        choices=[SelectChoice(scope, f"{scope} — {SCOPE_TEXT[scope]}")
                 for scope in MERCHANT_API_SCOPES],
        validators=[DataRequired(message="Choose at least one scope.")],
    )  # fmt: skip


class CarrierSecretForm(FlaskForm):  # type: ignore[misc]
    """The webhook secret a carrier aggregator (EasyPost) signs this store's deliveries with."""

    secret = StringField("EasyPost webhook secret", validators=[DataRequired(), Length(16, 200)])


def to_minor(amount: Decimal | None) -> int | None:
    """Major units with two decimals (12.50) → integer minor units (1250)."""
    if amount is None:
        return None
    try:
        return int((amount * 100).to_integral_value())
    except InvalidOperation:  # pragma: no cover - DecimalField already parsed it
        return None


def choices(pairs: list[tuple[str, str]]) -> list[SelectChoice]:
    """(value, label) pairs as WTForms 3.3 wants them (tuples are deprecated there)."""
    return [SelectChoice(value, label) for value, label in pairs]


class AddressForm(FlaskForm):  # type: ignore[misc]
    """A delivery address; the domain checks it too (`orders.domain.addresses`)."""

    name = StringField("Full name", validators=[DataRequired(), Length(max=200)])
    line1 = StringField("Address line 1", validators=[DataRequired(), Length(max=200)])
    line2 = StringField("Address line 2 (optional)", validators=[Length(max=200)])
    postcode = StringField("Postcode", validators=[Length(max=20)])
    city = StringField("City", validators=[DataRequired(), Length(max=100)])
    region = StringField("Region or state (optional)", validators=[Length(max=100)])
    country = StringField(
        "Country (two-letter code, e.g. DE, GB, US)", validators=[DataRequired(), Length(max=2)]
    )
    phone = StringField("Phone (optional, for the courier)", validators=[Length(max=32)])
    make_default = BooleanField("Ship my orders here by default")

    def address_fields(self) -> dict[str, str | None]:
        """The address as the domain takes it."""
        return {
            name: getattr(self, name).data
            for name in ("name", "line1", "line2", "postcode", "city", "region", "country", "phone")
        }


class TimeZoneForm(FlaskForm):  # type: ignore[misc]
    """The zone an account reads times in ("" = the store's)."""

    time_zone = SelectField("Show times in", choices=[], validate_choice=True)


class DeviceRulesForm(FlaskForm):  # type: ignore[misc]
    """Every rule of a linked device, sent as a whole."""

    name = StringField("Name (shown instead of the serial)", validators=[Length(max=100)])
    product = SelectField("Product it orders", choices=[], validate_choice=True)
    quantity = IntegerField(
        "How many per order", default=1, validators=[InputRequired(), NumberRange(1, 99)]
    )
    approval_required = BooleanField("Ask me to approve every order before the store ships it")
    per_order_cap = DecimalField(
        "Largest single order (empty: no limit)",
        places=2,
        validators=[Optional(), NumberRange(min=0, max=100000)],
    )
    monthly_cap = DecimalField(
        "Monthly limit for this device (empty: no limit)",
        places=2,
        validators=[Optional(), NumberRange(min=0, max=100000)],
    )
    policy = RadioField(
        "When it orders",
        choices=[
            SelectChoice("alert", "Alert only: tell me when it runs low, never order"),
            SelectChoice("threshold", "Reorder when the supply falls to a level"),
            SelectChoice("predictive", "Predict: order before it is expected to run out"),
            SelectChoice("up_to", "At the level, order enough to fill up to a level"),
        ],
        default="threshold",
    )
    reorder_point = FloatField(
        "Reorder level (empty: automatic)", validators=[Optional(), NumberRange(min=0)]
    )
    order_up_to = FloatField("Fill up to", validators=[Optional(), NumberRange(min=0)])
    risk = RadioField(
        "Predictive ordering aims for",
        choices=[
            SelectChoice("rarely_run_out", "Rarely run out (orders a little earlier)"),
            SelectChoice("balanced", "Balanced"),
            SelectChoice("fewest_orders", "Fewest orders (may run out now and then)"),
        ],
        default="rarely_run_out",
    )
    paused = BooleanField("Paused: order nothing until I resume it")
    paused_until = DateField(
        "On vacation: order nothing before (date, UTC)", validators=[Optional()]
    )


class AccountLimitForm(FlaskForm):  # type: ignore[misc]
    """The shopper's monthly limit across every device, Alexa and the web."""

    monthly_cap = DecimalField(
        "Monthly limit across all my devices, Alexa and the web (empty: no limit)",
        places=2,
        validators=[Optional(), NumberRange(min=0, max=1000000)],
    )


class EmailNoticesForm(FlaskForm):  # type: ignore[misc]
    """Which notices also arrive by e-mail (every notice shows in the app)."""

    kinds = CheckboxesField("Send me an e-mail when", choices=[])
