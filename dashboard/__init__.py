"""Web pages for shoppers and merchants (Flask blueprint + Jinja), and the orders REST API."""

from __future__ import annotations

from dashboard.web import make_blueprint

__all__ = ["make_blueprint"]
