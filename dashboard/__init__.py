"""Web pages for shoppers and merchants (Flask blueprint + Jinja), and the orders REST API."""

from __future__ import annotations

from dashboard.web import bp

__all__ = ["bp"]
