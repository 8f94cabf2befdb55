"""Shared test setup for the core: aid2e's pytest fixtures (``plugin_manager``, ``register_plugin``)
and pytest's ``pytester`` (to check those fixtures as a third-party plugin would use them)."""

pytest_plugins = ["aid2e.testing.fixtures", "pytester"]
