"""pytest fixtures for testing aid2e plugins, for aid2e's own packages and third parties.

Enable them in a ``conftest.py``::

    pytest_plugins = ["aid2e.testing.fixtures"]

and use them in tests::

    from aid2e import BackendInfo, hookimpl

    class MyPlugin:
        @hookimpl
        def aid2e_backends(self):
            yield BackendInfo(name="mine", factory=MyRunner, kinds={"script"})

    def test_my_backend_is_found(plugin_manager, register_plugin):
        info = register_plugin(MyPlugin(), name="my-plugin")
        assert info.status == "active"
        assert plugin_manager.backends()["mine"].factory is MyRunner

``plugin_manager`` is a fresh :class:`aid2e.plugins.PluginManager` (installed plugins loaded
from their entry points) that is also the process-wide manager for the test, so code calling
:func:`aid2e.plugins.get_plugin_manager` (``from aid2e import MyRunner``, ``load_job``, ...)
sees in-process plugins. The previous manager is restored afterwards.

``browser`` is a real headless Chromium (:class:`aid2e.testing.browser.Browser`) for the test,
quit afterwards; without one the test skips, or fails where the browser was promised
(scripts/services/browser.sh set it up, or ``AID2E_REQUIRE`` names browser).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from aid2e import plugins as _plugins
from aid2e.plugins import PluginInfo, PluginManager

__all__ = ["bare_plugin_manager", "browser", "plugin_manager", "register_plugin"]


def _installed(manager: PluginManager) -> Iterator[PluginManager]:
    with _plugins._lock:
        previous, _plugins._manager = _plugins._manager, manager
    try:
        yield manager
    finally:
        with _plugins._lock:
            _plugins._manager = previous


@pytest.fixture
def plugin_manager() -> Iterator[PluginManager]:
    """A fresh plugin manager, installed as the process-wide one for this test."""
    yield from _installed(PluginManager())


@pytest.fixture
def bare_plugin_manager() -> Iterator[PluginManager]:
    """A plugin manager with the core's built-ins only, as if no plugin distribution were
    installed (installed as the process-wide one for this test)."""
    from aid2e import builtins

    manager = PluginManager(load_entry_points=False)
    manager.register(builtins, name="aid2e (builtins)", builtin=True)
    yield from _installed(manager)


@pytest.fixture
def register_plugin(plugin_manager: PluginManager) -> Iterator[Callable[..., PluginInfo]]:
    """``register_plugin(obj, name="x", version="0")``: register an in-process plugin.

    Returns the plugin's :class:`~aid2e.plugins.PluginInfo` row (status ``active`` or
    ``error``). Every plugin registered this way is unregistered at teardown.
    """
    registered: list[str] = []

    def register(plugin: Any, name: str | None = None, *, version: str = "0") -> PluginInfo:
        name = name or getattr(plugin, "__name__", None) or type(plugin).__name__
        plugin_manager.register(plugin, name=name, version=version)
        registered.append(name)
        return next(i for i in plugin_manager.plugins() if i.name == name)

    yield register
    for name in reversed(registered):
        plugin_manager.unregister(name)


@pytest.fixture
def browser() -> Iterator[Any]:
    """A started headless Chromium (:class:`aid2e.testing.browser.Browser`), quit after the test."""
    from aid2e.testing.browser import start_browser

    with start_browser() as started:
        yield started
