"""Web pages for shoppers and merchants (Flask blueprint + Jinja)."""
