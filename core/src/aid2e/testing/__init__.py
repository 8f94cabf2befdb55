"""Test support shipped with the core, for aid2e's own packages and for third-party plugins.

* :class:`BackendConformance` (``aid2e.testing.conformance``): the suite every backend runs.
  Subclass it in your plugin's tests and provide a ``backend`` fixture.
* :class:`SimulatedBackend` and :class:`SimulatedClock` (``aid2e.testing.simulator``): a backend
  whose jobs follow a plan on a simulated clock, to test loops and policies in milliseconds.
* ``aid2e.testing.fixtures``: pytest fixtures, e.g. ``plugin_manager`` and ``register_plugin``
  (register a plugin in-process for one test and unregister it after), and ``browser``.
* :class:`Browser` (``aid2e.testing.browser``): a real headless Chromium for tests that open an
  HTML report or a live dashboard (scripts/services/browser.sh installs it; needs selenium).
"""

from __future__ import annotations

from .conformance import BackendConformance
from .simulator import SimulatedBackend, SimulatedClock, SimulatedCluster, SimulatedJob

__all__ = ["BackendConformance", "SimulatedBackend", "SimulatedClock", "SimulatedCluster", "SimulatedJob"]
