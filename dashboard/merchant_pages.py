"""A merchant's pages under `/stores/<store_id>/`: only stores the account works in exist."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user
from werkzeug.wrappers import Response

from auth import clients, unit_secrets
from auth.revocation import revoke_store_device
from dashboard.common import act, act_on_order, confirm_page, get_db
from dashboard.forms import (
    ActionForm,
    ApiClientForm,
    CarrierSecretForm,
    ConditionForm,
    ModelEditForm,
    ModelForm,
    ProductForm,
    RedirectUrisForm,
    ReviewForm,
    ShipForm,
    SlotForm,
    choices,
    to_minor,
)
from orders.domain.actions import Viewer, allowed_actions, check_action
from orders.domain.errors import InvalidRequest
from orders.domain.maintenance import ConditionSpec
from orders.domain.webhooks import EVENT_TYPES
from orders.queries.customers import customer_of
from orders.queries.maintenance import upkeep_of
from orders.queries.tracking import order_tracking
from orders.services import lifecycle, merchant, webhooks
from orders.services.carrier_hooks import carrier_secret, set_carrier_secret
from orders.services.catalog import SlotSpec
from orders.store.db import utcnow
from orders.store.model import STATUSES

bp = Blueprint("merchant", __name__, url_prefix="/stores/<int:store_id>")


@bp.url_value_preprocessor
def pull_store(_endpoint: str | None, values: dict[str, Any] | None) -> None:
    """Take the store id out of the URL into `g` for every view."""
    g.store_id = int((values or {}).pop("store_id", 0))


@bp.url_defaults
def add_store(endpoint: str, values: dict[str, Any]) -> None:
    """Fill in this store's id when a view links within the store."""
    if "store_id" not in values and "store_id" in g:
        if current_app.url_map.is_endpoint_expecting(endpoint, "store_id"):
            values["store_id"] = g.store_id


@bp.before_request
def need_membership() -> Any:
    """Only staff of this store get in; any other store is a 404."""
    if not current_user.is_authenticated:
        return current_app.login_manager.unauthorized()  # type: ignore[attr-defined]
    # Another store is indistinguishable from no store at all: 404, never 403.
    if g.store_id not in current_user.store_ids:
        abort(404)
    g.store_name = merchant.store_name(get_db(), g.store_id)
    return None


def sid() -> int:
    """The store this request is about."""
    return int(g.store_id)


# --- catalog ---------------------------------------------------------------------------


@bp.get("/products")
def products() -> str:
    """The catalog (or, with ?archived=1, the archived products)."""
    archived = request.args.get("archived") == "1"
    page = merchant.list_products(
        get_db(), sid(), cursor=request.args.get("cursor"), archived=archived
    )
    title = "Archived products" if archived else "Catalog"
    return render_template("dashboard/products.html", page=page, title=title, archived=archived)


@bp.get("/low-stock")
def low_stock() -> str:
    """Products running low, each against its own low-stock level."""
    page = merchant.low_stock(get_db(), sid(), cursor=request.args.get("cursor"))
    return render_template("dashboard/products.html", page=page, title="Low stock", low=True)


@bp.post("/products/<int:product_id>/archive")
def archive_product(product_id: int) -> Response:
    """Take a product out of the catalog for good (orders keep it); it can be restored."""
    return act(lambda: merchant.set_archived(get_db(), sid(), product_id, True),
               "Archived: it is off sale and out of the catalog. Find it under Archived products.",
               url_for(".products"))  # fmt: skip


@bp.post("/products/<int:product_id>/restore")
def restore_product(product_id: int) -> Response:
    """Bring an archived product back into the catalog (off sale until you put it on sale)."""
    return act(lambda: merchant.set_archived(get_db(), sid(), product_id, False),
               "Restored to the catalog, not on sale yet: tick On sale when it is.",
               url_for(".edit_product", product_id=product_id))  # fmt: skip


# The domain's refusals, as messages on the field they are about.
PRODUCT_FIELD_FOR = {"sku_taken": "sku", "bad_alias": "aliases", "bad_name": "name",
                     "bad_product": "price", "bad_low_stock_level": "low_stock_level"}  # fmt: skip
PRODUCT_MESSAGES = {
    "sku_taken": "This store already has a product with this SKU (SKUs ignore letter case). "
    "Choose another SKU.",
}


def _on_field(form: ProductForm, exc: InvalidRequest) -> None:
    """Put a domain refusal on its field (or flash it when no field owns it)."""
    name = PRODUCT_FIELD_FOR.get(exc.reason)
    message = PRODUCT_MESSAGES.get(exc.reason, (exc.detail or exc.reason).capitalize() + ".")
    if name is None:
        flash(message, "error")
    else:
        getattr(form, name).errors = [*getattr(form, name).errors, message]


@bp.route("/products/new", methods=["GET", "POST"])
def new_product() -> Any:
    """Add a product to the catalog."""
    form = ProductForm()
    if form.validate_on_submit():
        try:
            product = merchant.create_product(
                get_db(), sid(), sku=form.sku.data.strip(), name=form.name.data.strip(),
                price_minor=to_minor(form.price.data) or 0, stock=form.stock.data,
                pack_size=form.pack_size.data,
                aliases=merchant.parse_aliases(form.aliases.data or ""),
                low_stock_level=form.low_stock_level.data,
            )  # fmt: skip
        except InvalidRequest as exc:
            _on_field(form, exc)
        else:
            flash(f"Added {product.name}.", "ok")
            return redirect(url_for(".products"))
    status = 400 if request.method == "POST" else 200
    return render_template("dashboard/product_form.html", form=form, product=None), status


@bp.route("/products/<int:product_id>", methods=["GET", "POST"])
def edit_product(product_id: int) -> Any:
    """Change a product's name, price, stock, aliases or whether it is sold."""
    product = merchant.get_product(get_db(), sid(), product_id)
    form = ProductForm(
        data=None if request.method == "POST" else {
            "sku": product.sku, "name": product.name,
            "price": Decimal(product.price_minor) / 100, "stock": product.stock,
            "pack_size": product.pack_size, "aliases": "\n".join(product.aliases),
            "active": product.active, "low_stock_level": product.low_stock_level,
        }
    )  # fmt: skip
    form.sku.data = product.sku  # the SKU is the product's identity; it never changes
    del form.pack_size  # fixed once made, and not on the edit form
    if form.validate_on_submit():
        try:
            merchant.update_product(
                get_db(), sid(), product_id, name=form.name.data.strip(),
                price_minor=to_minor(form.price.data) or 0, stock=form.stock.data,
                aliases=merchant.parse_aliases(form.aliases.data or ""),
                active=bool(form.active.data), low_stock_level=form.low_stock_level.data,
            )  # fmt: skip
        except InvalidRequest as exc:
            _on_field(form, exc)
        else:
            flash(f"Saved {form.name.data}.", "ok")
            return redirect(url_for(".products"))
    status = 400 if request.method == "POST" else 200
    return render_template("dashboard/product_form.html", form=form, product=product), status


# --- device models ---------------------------------------------------------------------


def sku_choices() -> list[tuple[str, str]]:
    """The store's products as form choices."""
    page = merchant.list_products(get_db(), sid(), limit=100)
    return [(p.sku, f"{p.name} ({p.sku})") for p in page.items]


@bp.get("/models")
def models() -> str:
    """The store's device models."""
    page = merchant.list_models(get_db(), sid(), cursor=request.args.get("cursor"))
    return render_template("dashboard/models.html", page=page)


@bp.route("/models/new", methods=["GET", "POST"])
def new_model() -> Any:
    """A new device model with its public OAuth client."""
    form = ModelForm()
    skus = sku_choices()
    form.skus.choices = choices(skus)
    form.slot_sku.choices = choices([("", "—"), *skus])
    if form.validate_on_submit():
        slot = None
        if form.slot_name.data:
            capacity = float(form.slot_capacity.data or 0)
            per_pack = form.slot_units_per_pack.data
            slot = SlotSpec(
                form.slot_name.data.strip(), form.slot_unit.data, capacity,
                form.slot_sku.data or None, float(per_pack) if per_pack else capacity,
            )  # fmt: skip
        try:
            model_id, client_id = clients.create_device_model_client(
                get_db(), sid(), name=form.name.data, kind=form.kind.data, skus=form.skus.data,
                slot=slot, test_mode=bool(form.test_mode.data), security=form.security.data,
            )  # fmt: skip
        except InvalidRequest as exc:
            flash(exc.detail, "error")
        else:
            flash(f"Model created. Its devices use OAuth client id {client_id}.", "ok")
            return redirect(url_for(".model", model_id=model_id))
    status = 400 if request.method == "POST" else 200
    return render_template("dashboard/model_new.html", form=form), status


@bp.route("/models/<int:model_id>", methods=["GET", "POST"])
def model(model_id: int) -> Any:
    """One device model: which products it orders, test mode."""
    view = merchant.get_model(get_db(), sid(), model_id)
    form = ModelEditForm(
        data=None if request.method == "POST"
        else {"skus": list(view.skus), "test_mode": view.test_mode}
    )  # fmt: skip
    form.skus.choices = choices(sku_choices())
    if form.validate_on_submit():
        try:
            merchant.update_model(
                get_db(), sid(), model_id, skus=form.skus.data, test_mode=bool(form.test_mode.data)
            )
        except InvalidRequest as exc:
            flash(exc.detail, "error")
        else:
            flash("Model saved.", "ok")
            return redirect(url_for(".model", model_id=model_id))
    status = 400 if request.method == "POST" else 200
    return _model_page(view, form, status=status)


def _model_page(
    view: merchant.ModelView, form: ModelEditForm | None = None, *, status: int = 200,
    slot_form: SlotForm | None = None, condition_form: ConditionForm | None = None,
) -> tuple[str, int]:  # fmt: skip
    """The model page with its settings, slot and condition forms (one may carry errors)."""
    skus = sku_choices()
    if form is None:
        form = ModelEditForm(
            formdata=None, data={"skus": list(view.skus), "test_mode": view.test_mode}
        )
        form.skus.choices = choices(skus)
    slot_form = slot_form or SlotForm(formdata=None, prefix="slot")
    condition_form = condition_form or ConditionForm(formdata=None, prefix="condition")
    slot_form.sku.choices = choices([("", "—"), *skus])
    condition_form.sku.choices = choices([("", "—"), *skus])
    held = unit_secrets.possession(get_db(), sid(), view.id)
    page = render_template(
        "dashboard/model.html", model=view, form=form, possession=held,
        slot_form=slot_form, condition_form=condition_form,
    )  # fmt: skip
    return page, status


@bp.post("/models/<int:model_id>/slots")
def model_slot(model_id: int) -> Any:
    """Add a slot to a model: a printer has four inks."""
    view = merchant.get_model(get_db(), sid(), model_id)
    form = SlotForm(prefix="slot")
    form.sku.choices = choices([("", "—"), *sku_choices()])
    if form.validate_on_submit():
        capacity = float(form.capacity.data)
        per_pack = float(form.units_per_pack.data) if form.units_per_pack.data else capacity
        spec = SlotSpec(form.name.data, form.unit.data, capacity, form.sku.data or None,
                        per_pack, form.policy.data)  # fmt: skip
        try:
            merchant.add_model_slot(get_db(), sid(), model_id, spec)
        except InvalidRequest as exc:
            form.name.errors.append(exc.detail)
        else:
            flash(f"Slot {spec.name} added.", "ok")
            return redirect(url_for(".model", model_id=model_id))
    return _model_page(view, status=400, slot_form=form)


@bp.post("/models/<int:model_id>/conditions")
def model_condition(model_id: int) -> Any:
    """Add a condition a model reports (descale, filter life, error codes)."""
    view = merchant.get_model(get_db(), sid(), model_id)
    form = ConditionForm(prefix="condition")
    form.sku.choices = choices([("", "—"), *sku_choices()])
    if form.validate_on_submit():
        threshold = float(form.threshold.data) if form.threshold.data is not None else None
        spec = ConditionSpec(form.name.data, form.kind.data, form.message.data, threshold,
                             form.sku.data or None)  # fmt: skip
        try:
            merchant.add_model_condition(get_db(), sid(), model_id, spec)
        except InvalidRequest as exc:
            target = form.threshold if "threshold" in exc.detail else form.name
            target.errors.append(exc.detail)
        else:
            flash(f"Condition {spec.name} added.", "ok")
            return redirect(url_for(".model", model_id=model_id))
    return _model_page(view, status=400, condition_form=form)


@bp.post("/models/<int:model_id>/unit-secrets")
def model_unit_secrets(model_id: int) -> Response:
    """Import per-unit secrets and turn proof of possession on or off for a model."""
    text = request.form.get("unit_secrets", "")
    required = request.form.get("requires_unit_secret") == "y"
    return act(
        lambda: unit_secrets.set_unit_secrets(
            get_db(), sid(), model_id, unit_secrets.parse_unit_secrets(text), required=required
        ),
        "Proof of possession saved.",
        url_for(".model", model_id=model_id),
    )


# --- devices ---------------------------------------------------------------------------


@bp.get("/devices")
def devices() -> str:
    """Every linked device, filtered by model, status, low supply or serial."""
    args = request.args
    model_id = args.get("model", "")
    status = args.get("status") or None
    if (model_id and not model_id.isdigit()) or status not in (None, *merchant.DEVICE_STATUSES):
        abort(400, "Unknown filter value.")
    filters = merchant.DeviceFilter(
        model_id=int(model_id) if model_id else None, status=status,
        low_supply=args.get("low") == "1", serial=(args.get("serial") or "").strip() or None,
    )  # fmt: skip
    page = merchant.list_devices(get_db(), sid(), filters, cursor=args.get("cursor"))
    model_page = merchant.list_models(get_db(), sid(), limit=100)
    return render_template(
        "dashboard/devices.html", page=page, filters=filters, models=model_page.items,
        statuses=merchant.DEVICE_STATUSES,
    )  # fmt: skip


@bp.get("/devices/<int:device_id>")
def device(device_id: int) -> str:
    """One device with its supply levels and orders."""
    detail = merchant.get_device(get_db(), sid(), device_id)
    upkeep = upkeep_of(get_db(), [detail.row.device_id]).get(detail.row.device_id)
    return render_template("dashboard/device.html", detail=detail, upkeep_info=upkeep)


@bp.get("/devices/<int:device_id>/revoke")
def revoke_confirm(device_id: int) -> str:
    """Ask before ending a shopper's link from the store's side."""
    row = merchant.get_device(get_db(), sid(), device_id).row
    return confirm_page(
        f"Revoke device {row.serial}?",
        ["The shopper's link ends now and the device's tokens stop working: it can't order "
         "until someone links it again with a new code.",
         "Orders already placed stay as they are."],
        action=url_for(".revoke", device_id=device_id), confirm_label="Revoke this device",
        cancel_href=url_for(".device", device_id=device_id), keep_label="Keep it linked",
    )  # fmt: skip


@bp.post("/devices/<int:device_id>/test-mode")
def device_test_mode(device_id: int) -> Response:
    """Switch one unit to test orders (`test_mode=on`) or back to real ones."""
    on = request.form.get("test_mode") == "on"
    back = url_for(".device", device_id=device_id)
    done = "Test mode on: this unit's orders are test orders." if on else "Test mode off."
    return act(lambda: merchant.set_device_test_mode(get_db(), sid(), device_id, on), done, back)


@bp.post("/devices/<int:device_id>/revoke")
def revoke(device_id: int) -> Response:
    """End a device's link; its tokens stop working."""
    back = url_for(".device", device_id=device_id)
    done = "Device revoked: its link ended and its tokens no longer work."
    return act(lambda: revoke_store_device(get_db(), sid(), device_id), done, back)


# --- orders ----------------------------------------------------------------------------


@bp.get("/orders")
def orders(review_form: ReviewForm | None = None, code: int = 200) -> Any:
    """The store's orders, newest first; and from what total the store approves them."""
    status = request.args.get("status") or None
    if status is not None and status not in STATUSES:
        abort(400, "Unknown status.")
    page = merchant.list_store_orders(
        get_db(), sid(), status=status, cursor=request.args.get("cursor")
    )
    if review_form is None:
        minor = merchant.review_threshold(get_db(), sid())
        review_form = ReviewForm(
            formdata=None, review_over=None if minor is None else Decimal(minor) / 100
        )
    body = render_template("dashboard/orders.html", page=page, status=status, statuses=STATUSES,
                           review_form=review_form)  # fmt: skip
    return body, code


@bp.post("/orders/review")
def set_review() -> Any:
    """Set (or clear) the total from which new orders wait for the store's approval."""
    form = ReviewForm()
    if not form.validate_on_submit():
        return orders(form, 400)
    minor = to_minor(form.review_over.data)
    done = ("Saved: no order waits for your approval." if minor is None
            else "Saved: orders this large now wait for your approval.")  # fmt: skip
    return act(lambda: merchant.set_review_threshold(get_db(), sid(), minor), done,
               url_for(".orders"))  # fmt: skip


@bp.get("/orders/<order_id>")
def order(order_id: str) -> str:
    """One order with the actions the domain offers the store now."""
    viewer = Viewer.merchant(sid())
    view = lifecycle.get_order(get_db(), order_id, viewer)
    offer = allowed_actions(view, viewer, utcnow())
    customer = customer_of(get_db(), view.shopper_id)
    return render_template(
        "dashboard/order.html", order=view, offer=offer, ship_form=ShipForm(), customer=customer,
        tracking=order_tracking(get_db(), view.id),
    )  # fmt: skip


@bp.post("/orders/<order_id>/ship")
def ship(order_id: str) -> Response:
    """Mark a placed order shipped, with an optional tracking reference."""
    form = ShipForm()
    back = url_for(".order", order_id=order_id)
    if not form.validate_on_submit():
        flash("Tracking references are at most 200 characters.", "error")
        return redirect(back)
    ref = (form.tracking_ref.data or "").strip() or None
    return act_on_order(order_id, Viewer.merchant(sid()), "ship",
                        lambda: lifecycle.mark_shipped(get_db(), order_id, sid(), ref),
                        "Marked shipped.", back)  # fmt: skip


@bp.post("/orders/<order_id>/deliver")
def deliver(order_id: str) -> Response:
    """Mark a shipped order delivered."""
    return act_on_order(order_id, Viewer.merchant(sid()), "deliver",
                        lambda: lifecycle.mark_delivered(get_db(), order_id, sid()),
                        "Marked delivered.", url_for(".order", order_id=order_id))  # fmt: skip


@bp.get("/orders/<order_id>/cancel")
def cancel_confirm(order_id: str) -> str:
    """Ask before cancelling a customer's order."""
    viewer = Viewer.merchant(sid())
    view = lifecycle.get_order(get_db(), order_id, viewer)
    check_action(view, viewer, "cancel", utcnow())
    return confirm_page(
        f"Cancel order {view.id[:8]}?",
        ["The stock returns to the shelf and the customer is told the order is cancelled."],
        action=url_for(".cancel", order_id=order_id), confirm_label="Yes, cancel the order",
        cancel_href=url_for(".order", order_id=order_id), keep_label="No, keep the order",
    )  # fmt: skip


@bp.post("/orders/<order_id>/approve")
def approve(order_id: str) -> Response:
    """Approve an order held for the store's review: it is placed."""
    return act_on_order(order_id, Viewer.merchant(sid()), "approve",
                        lambda: lifecycle.approve_as_merchant(get_db(), order_id, sid()),
                        "Approved: the order is placed.",
                        url_for(".order", order_id=order_id))  # fmt: skip


@bp.route("/orders/<order_id>/reject", methods=["GET", "POST"])
def reject(order_id: str) -> Any:
    """Ask first (GET), then reject an order held for the store's review (POST)."""
    viewer = Viewer.merchant(sid())
    if request.method == "GET":
        view = lifecycle.get_order(get_db(), order_id, viewer)
        if "reject" not in allowed_actions(view, viewer, utcnow()):
            return redirect(url_for(".order", order_id=order_id))
        return render_template("dashboard/order_reject.html", order=view)
    return act_on_order(order_id, viewer, "reject",
                        lambda: lifecycle.reject_as_merchant(get_db(), order_id, sid()),
                        "Rejected: the stock is back and the shopper is told.",
                        url_for(".order", order_id=order_id))  # fmt: skip


@bp.post("/orders/<order_id>/cancel")
def cancel(order_id: str) -> Response:
    """Cancel an order that has not shipped; the stock returns."""
    viewer = Viewer.merchant(sid())
    return act_on_order(order_id, viewer, "cancel",
                        lambda: lifecycle.cancel_order(get_db(), order_id, viewer),
                        "Order cancelled; the stock is back.",
                        url_for(".order", order_id=order_id))  # fmt: skip


# --- integrations: Alexa account linking and API clients -------------------------------


REDIRECT_URIS_HELP = (
    "Each line must be a whole web address starting with https://, copied from the Alexa "
    "console's Alternate Redirect URLs, for example https://pitangui.amazon.com/api/skill/link/M2AA."
)


def integrations_page(
    secret: clients.NewSecret | None = None, status: int = 200, *, uris_error: bool = False
) -> Any:
    """The integrations page, showing a new secret once when there is one."""
    alexa = clients.alexa_client(get_db(), sid())
    if uris_error:  # the merchant's own lines stay in the box, with what is wrong beside them
        uris = RedirectUrisForm()
        uris.redirect_uris.errors = [REDIRECT_URIS_HELP]
    else:
        uris = RedirectUrisForm(data={"redirect_uris": "\n".join(alexa.redirect_uris)}
                                if alexa else None)  # fmt: skip
    body = render_template(
        "dashboard/integrations.html", alexa=alexa, api_clients=clients.list_api_clients(
            get_db(), sid()), secret=secret, uris_form=uris, api_form=ApiClientForm(),
        carrier_form=CarrierSecretForm(),
        easypost_set=carrier_secret(get_db(), sid(), "easypost") is not None,
        easypost_url=url_for("carrier_hooks.easypost", store_id=sid(), _external=True),
        public_url=current_app.extensions["restock"]["settings"].public_url.rstrip("/"),
    )  # fmt: skip
    # A page that shows a secret must never be cached or replayed from history.
    return body, status, {"Cache-Control": "no-store"}


@bp.get("/integrations")
def integrations() -> Any:
    """Alexa account linking and merchant API clients."""
    return integrations_page()


@bp.post("/integrations/alexa")
def create_alexa() -> Any:
    """Create the store's Alexa account-linking client."""
    form = RedirectUrisForm()
    if not form.validate_on_submit():
        return integrations_page(status=400, uris_error=True)
    try:
        secret = clients.create_alexa_client(get_db(), sid(), form.redirect_uris.data.splitlines())
    except InvalidRequest:
        return integrations_page(status=400, uris_error=True)
    return integrations_page(secret)


@bp.post("/integrations/alexa/redirects")
def alexa_redirects() -> Any:
    """Replace the Alexa client's redirect URIs."""
    form = RedirectUrisForm()
    alexa = clients.alexa_client(get_db(), sid())
    if alexa is None:
        abort(404)
    if form.validate_on_submit():
        try:
            clients.set_redirect_uris(
                get_db(), sid(), alexa.client_id, form.redirect_uris.data.splitlines()
            )
        except InvalidRequest:
            return integrations_page(status=400, uris_error=True)
        flash("Redirect URIs saved.", "ok")
    return redirect(url_for(".integrations"))


@bp.get("/integrations/clients/<client_id>/rotate")
def rotate_confirm(client_id: str) -> str:
    """Ask before rotating: the old secret stops working at once."""
    alexa = clients.alexa_client(get_db(), sid())
    if alexa is not None and alexa.client_id == client_id:
        question = "Rotate the Alexa client secret?"
        lines = [
            "The old secret stops working now, so the live skill can't link anyone until "
            "you paste the new secret into the Alexa developer console.",
            "Every shopper linked through Alexa is signed out and must link the skill again.",
        ]
    else:
        question = f"Rotate the secret of API client {client_id}?"
        lines = [
            "The old secret and every token issued with it stop working now: its systems "
            "must fetch a new token with the new secret."
        ]
    return confirm_page(
        question, lines, action=url_for(".rotate", client_id=client_id),
        confirm_label="Rotate the secret", cancel_href=url_for(".integrations"),
        keep_label="Keep the current secret",
    )  # fmt: skip


@bp.post("/integrations/clients/<client_id>/rotate")
def rotate(client_id: str) -> Any:
    """Give a client a new secret (shown once)."""
    if not ActionForm().validate_on_submit():
        flash("The form expired; please try again.", "error")
        return redirect(url_for(".integrations"))
    return integrations_page(clients.rotate_secret(get_db(), sid(), client_id))


@bp.post("/integrations/carriers/easypost")
def easypost_secret() -> Any:
    """Set the secret EasyPost signs this store's tracker webhooks with."""
    form = CarrierSecretForm()
    if not form.validate_on_submit():
        flash("A webhook secret is 16 to 200 characters.", "error")
        return integrations_page(status=400)
    set_carrier_secret(get_db(), sid(), "easypost", form.secret.data)
    flash("EasyPost webhook secret saved.", "success")
    return redirect(url_for(".integrations"))


@bp.post("/integrations/clients")
def create_api_client() -> Any:
    """A new merchant API client (client credentials)."""
    form = ApiClientForm()
    if not form.validate_on_submit():
        flash("Give the client a name and choose at least one scope.", "error")
        return integrations_page(status=400)
    created = clients.create_merchant_api_client(
        get_db(), sid(), form.name.data, scopes=form.scopes.data
    )
    return integrations_page(created)


# --- webhooks --------------------------------------------------------------------------


def webhooks_page(secret: webhooks.EndpointView | None = None, status: int = 200) -> Any:
    """The webhook endpoints, showing a new signing secret once when there is one."""
    body = render_template(
        "dashboard/webhooks.html", endpoints=webhooks.list_endpoints(get_db(), sid()),
        secret=secret, event_types=EVENT_TYPES,
    )  # fmt: skip
    return body, status, {"Cache-Control": "no-store"}


def _allow_private() -> bool:
    settings = current_app.extensions["restock"].get("settings")
    return bool(getattr(settings, "webhook_allow_private", False))


@bp.get("/webhooks")
def webhooks_index() -> Any:
    """The store's webhook endpoints."""
    return webhooks_page()


@bp.post("/webhooks")
def create_webhook() -> Any:
    """Subscribe a URL to the store's events (the types ticked, or all)."""
    if not ActionForm().validate_on_submit():
        flash("The form expired; please try again.", "error")
        return redirect(url_for(".webhooks_index"))
    url = (request.form.get("url") or "").strip()
    wanted = request.form.getlist("events")
    try:
        made = webhooks.create_endpoint(get_db(), sid(), url, wanted,
                                        allow_private=_allow_private())  # fmt: skip
    except InvalidRequest as exc:
        flash(exc.detail, "error")
        return webhooks_page(status=400)
    return webhooks_page(made)


@bp.get("/webhooks/<int:endpoint_id>")
def webhook(endpoint_id: int) -> str:
    """One endpoint and its recent deliveries."""
    endpoint = webhooks.get_endpoint(get_db(), sid(), endpoint_id)
    log = webhooks.list_deliveries(get_db(), sid(), endpoint_id)
    return render_template("dashboard/webhook.html", endpoint=endpoint, deliveries=log)


@bp.post("/webhooks/<int:endpoint_id>/test")
def test_webhook(endpoint_id: int) -> Response:
    """Queue a test event for the endpoint."""
    return act(lambda: webhooks.send_test_event(get_db(), sid(), endpoint_id),
               "Test event queued; its delivery appears below.",
               url_for(".webhook", endpoint_id=endpoint_id))  # fmt: skip


@bp.post("/webhooks/<int:endpoint_id>/enable")
def enable_webhook(endpoint_id: int) -> Response:
    """Enable a disabled endpoint again; its held deliveries resume."""
    return act(lambda: webhooks.update_endpoint(get_db(), sid(), endpoint_id, enabled=True),
               "Endpoint enabled.", url_for(".webhook", endpoint_id=endpoint_id))  # fmt: skip


@bp.post("/webhooks/<int:endpoint_id>/rotate")
def rotate_webhook(endpoint_id: int) -> Any:
    """A new signing secret, shown once."""
    if not ActionForm().validate_on_submit():
        flash("The form expired; please try again.", "error")
        return redirect(url_for(".webhooks_index"))
    return webhooks_page(webhooks.rotate_secret(get_db(), sid(), endpoint_id))


@bp.post("/webhooks/<int:endpoint_id>/deliveries/<int:delivery_id>/redeliver")
def redeliver_webhook(endpoint_id: int, delivery_id: int) -> Response:
    """Send one delivery again."""
    return act(lambda: webhooks.redeliver(get_db(), sid(), endpoint_id, delivery_id),
               "Queued for redelivery.", url_for(".webhook", endpoint_id=endpoint_id))  # fmt: skip


@bp.route("/webhooks/<int:endpoint_id>/delete", methods=["GET", "POST"])
def delete_webhook(endpoint_id: int) -> Any:
    """Ask first (GET), then delete the endpoint and its log (POST)."""
    endpoint = webhooks.get_endpoint(get_db(), sid(), endpoint_id)
    if request.method == "GET":
        return render_template("dashboard/webhook_delete.html", endpoint=endpoint)
    return act(lambda: webhooks.delete_endpoint(get_db(), sid(), endpoint_id),
               "Endpoint deleted.", url_for(".webhooks_index"))  # fmt: skip
