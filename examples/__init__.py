"""The demo shop: ``make demo`` serves it; ``examples.app.create_app`` builds it."""
