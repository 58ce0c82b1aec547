"""The dashboard blueprint: shopper pages, merchant pages and the orders API under one roof."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, flash, redirect, render_template, url_for
from flask_login import current_user
from werkzeug.exceptions import HTTPException

from auth.accounts import set_time_zone, time_zones
from dashboard import api, merchant_pages, notice_pages, rules_pages, shopper_pages
from dashboard import store_home as store_home  # registers the store home's views
from dashboard.charts import describe, runout, supply_chart
from dashboard.common import STATUS_FOR, error_page, get_db, money, page_url
from dashboard.forms import TimeZoneForm
from dashboard.times import day, local, time_tag, until, when
from orders.domain.errors import DomainError
from orders.services.merchant import store_name, store_time_zone
from orders.store.db import utcnow

FAVICON = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16">'
    '<rect width="16" height="16" rx="3" fill="#1a5fb4"/>'
    '<path d="M4 11V5h4a2 2 0 0 1 0 4H4m4 0 3 2" stroke="#fff" stroke-width="1.6" fill="none"/>'
    "</svg>"
)

bp = Blueprint("dashboard", __name__, template_folder="templates")
bp.register_blueprint(shopper_pages.bp)
bp.register_blueprint(rules_pages.bp)
bp.register_blueprint(notice_pages.bp)
bp.register_blueprint(merchant_pages.bp)
bp.register_blueprint(api.bp)


@bp.context_processor
def helpers() -> dict[str, Any]:
    """Formatting helpers every dashboard template may call."""
    return {
        "money": money,
        "when": when,
        "day": day,
        "until": until,
        "local": local,
        "time_tag": time_tag,
        "now": utcnow,
        "supply_chart": supply_chart,
        "describe": describe,
        "runout": runout,
        "page_url": page_url,
    }


@bp.get("/")
def home() -> Any:
    """Where a signed-in account starts: its shopping and the stores it runs."""
    if not current_user.is_authenticated:
        return redirect("/login?next=/")
    stores = [(sid, store_name(get_db(), sid)) for sid in current_user.store_ids]
    return render_template("dashboard/home.html", stores=stores)


@bp.route("/settings", methods=["GET", "POST"])
def account_settings() -> Any:
    """Settings of the signed-in account: the time zone pages show times in."""
    if not current_user.is_authenticated:
        return redirect("/login?next=/settings")
    form = TimeZoneForm(data={"time_zone": current_user.time_zone or ""})
    store_zone = store_time_zone(get_db(), (current_user.store_ids or (None,))[0])
    form.time_zone.choices = [("", f"The store's time zone ({store_zone})")] + [
        (zone, zone.replace("_", " ")) for zone in time_zones()
    ]
    if form.validate_on_submit():
        set_time_zone(get_db(), int(current_user.id), form.time_zone.data or None)
        flash("Saved: times are now shown in your chosen time zone.", "ok")
        return redirect(url_for("dashboard.account_settings"))
    status = 400 if form.errors else 200
    return render_template("dashboard/settings.html", form=form), status


@bp.get("/favicon.ico")
def favicon() -> Response:
    """A small SVG mark."""
    # Browsers ask for it on every page (the sign-in pages too); a 404 there shows up
    # as a console error.
    return Response(FAVICON, mimetype="image/svg+xml", headers={"Cache-Control": "max-age=86400"})


@bp.errorhandler(HTTPException)
def http_error(exc: HTTPException) -> tuple[str, int]:
    """An HTML error page for the dashboard's pages."""
    return error_page(exc.code or 500, exc.name, exc.description or "")


@bp.errorhandler(DomainError)
def domain_error(exc: DomainError) -> tuple[str, int]:
    """A domain refusal as an HTML page with the status the table names."""
    status = next((code for kind, code in STATUS_FOR if isinstance(exc, kind)), 400)
    title = "Not found" if status == 404 else "That did not work"
    return error_page(status, title, exc.detail or exc.reason)
