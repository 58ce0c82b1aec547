"""A store's home: today's figures, what needs doing, and one search box (merchant pages)."""

from __future__ import annotations

from flask import render_template, request

from dashboard.common import get_db
from dashboard.merchant_pages import bp, sid
from orders.queries.store_home import search_store, today_figures
from orders.services import merchant
from orders.store.db import utcnow


@bp.get("/")
def overview() -> str:
    """The store at a glance: today's figures, orders to ship, low stock."""
    figures = today_figures(get_db(), sid(), utcnow())
    low = merchant.low_stock(get_db(), sid(), limit=5)
    pending = merchant.list_store_orders(get_db(), sid(), status="placed", limit=5, test=False)
    return render_template("dashboard/store.html", figures=figures, low=low, pending=pending)


@bp.get("/search")
def search() -> str:
    """Orders by id, devices by serial or name, products by SKU or name."""
    query = request.args.get("q", "")[:100]
    found = search_store(get_db(), sid(), query)
    return render_template("dashboard/search.html", query=query, found=found)
