"""Test support shipped with the core, for aid2e's own packages and for third-party plugins.

* :class:`BackendConformance` (``aid2e.testing.conformance``): the suite every backend runs.
  Subclass it in your plugin's tests and provide a ``backend`` fixture.
* ``aid2e.testing.fixtures``: pytest fixtures, e.g. ``plugin_manager`` and ``register_plugin``
  (register a plugin in-process for one test and unregister it after).
"""

from __future__ import annotations

from .conformance import BackendConformance

__all__ = ["BackendConformance"]
