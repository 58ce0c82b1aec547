"""Persistence: ORM model, engines and units of work, batch statements, outbox, PostgreSQL."""
