"""Composition root: settings, database, create_app(), CLI."""
