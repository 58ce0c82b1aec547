"""The dashboard blueprint: shopper pages, merchant pages and the orders API under one roof."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, redirect, render_template
from flask_login import current_user
from flask_wtf.csrf import generate_csrf
from werkzeug.exceptions import HTTPException

from dashboard import api, merchant_pages, notice_pages, rules_pages, shopper_pages
from dashboard.charts import describe, runout, supply_chart
from dashboard.common import STATUS_FOR, error_page, get_db, money, page_url, when
from orders.domain.errors import DomainError
from orders.services.merchant import store_name

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
        "supply_chart": supply_chart,
        "describe": describe,
        "runout": runout,
        # One hidden input per form without an id, so a page of many forms has no
        # duplicate ids (WTForms renders id="csrf_token" on every form).
        "csrf_value": generate_csrf,
        "page_url": page_url,
    }


@bp.get("/")
def home() -> Any:
    """Where a signed-in account starts: its shopping and the stores it runs."""
    if not current_user.is_authenticated:
        return redirect("/login?next=/")
    stores = [(sid, store_name(get_db(), sid)) for sid in current_user.store_ids]
    return render_template("dashboard/home.html", stores=stores)


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
