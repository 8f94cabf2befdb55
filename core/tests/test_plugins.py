"""aid2e.plugins: registration, status rows, and lazy runner names on ``aid2e``."""

from __future__ import annotations

import importlib

import pytest

import aid2e
from aid2e import BackendInfo, JobAdapter, JobKind, hookimpl
from aid2e.errors import PluginNotInstalledError
from aid2e.plugins import get_plugin_manager
from aid2e.types import FunctionJob, ScriptJob


class FakeRunner:
    """Stands in for a backend class (``BackendInfo.factory``)."""


class FakeStore:
    def __init__(self, root: str) -> None:
        self.root = root


class NotebookJob:
    kind = "notebook"


class FullPlugin:
    @hookimpl
    def aid2e_backends(self):
        yield BackendInfo(name="fake", factory=FakeRunner, kinds={"script", "notebook"})

    @hookimpl
    def aid2e_job_kinds(self):
        yield JobKind(name="notebook", spec_type=NotebookJob, description="a notebook")

    @hookimpl
    def aid2e_job_adapters(self):
        yield JobAdapter(kind="notebook", produces="script", adapt=lambda r: r)


class OtherPlugin:
    @hookimpl
    def aid2e_backends(self):
        yield BackendInfo(name="other", factory=FakeStore)


class RaisingPlugin:
    @hookimpl
    def aid2e_backends(self):
        raise RuntimeError("cannot reach the batch system")
        yield  # pragma: no cover


class WrongTypePlugin:
    @hookimpl
    def aid2e_backends(self):
        yield JobKind(name="oops", spec_type=FakeStore)


def _row(manager, name):
    return next(i for i in manager.plugins() if i.name == name)


def test_fixture_installs_the_process_wide_manager(plugin_manager):
    assert get_plugin_manager() is plugin_manager
    assert aid2e.get_plugin_manager() is plugin_manager


def test_builtins_are_loaded_from_their_entry_point(plugin_manager):
    builtin = _row(plugin_manager, "aid2e (builtins)")
    assert builtin.builtin and builtin.status == "active"
    assert builtin.provides == {"job_kinds": ["function", "script"], "job_adapters": ["function->script"]}
    assert plugin_manager.job_kind("function").spec_type is FunctionJob
    assert plugin_manager.job_kind("script").spec_type is ScriptJob
    assert builtin not in plugin_manager.plugins(include_builtin=False)


def test_in_process_plugin_shows_what_it_provides(plugin_manager, register_plugin):
    info = register_plugin(FullPlugin(), name="aid2e-fake", version="1.2")
    assert info.status == "active" and info.error is None
    assert info.version == "1.2" and not info.builtin
    assert info.provides == {
        "backends": ["fake"],
        "job_kinds": ["notebook"],
        "job_adapters": ["notebook->script"],
    }
    assert plugin_manager.backends()["fake"].factory is FakeRunner
    assert plugin_manager.backends()["fake"].kinds == frozenset({"script", "notebook"})
    assert plugin_manager.job_kind("notebook").spec_type is NotebookJob
    assert [(a.kind, a.produces) for a in plugin_manager.job_adapters()
            if a.kind in ("function", "notebook")] == [("function", "script"), ("notebook", "script")]
    assert info.to_json()["provides"]["backends"] == ["fake"]


def test_unregister_removes_everything(plugin_manager, register_plugin):
    register_plugin(FullPlugin(), name="aid2e-fake")
    plugin_manager.unregister("aid2e-fake")
    assert "fake" not in plugin_manager.backends()
    assert "aid2e-fake" not in [i.name for i in plugin_manager.plugins()]
    plugin_manager.unregister("aid2e-fake")  # absent: no error


def test_fixtures_for_third_parties_restore_state(pytester):
    """``pytest_plugins = ["aid2e.testing.fixtures"]`` in a plugin's conftest, as documented."""
    pytester.makeconftest('pytest_plugins = ["aid2e.testing.fixtures"]')
    pytester.makepyfile(
        """
        import aid2e.plugins
        from aid2e import BackendInfo, hookimpl

        seen = {}

        class Plugin:
            @hookimpl
            def aid2e_backends(self):
                yield BackendInfo(name="thirdparty", factory=dict)

        def test_register(plugin_manager, register_plugin):
            info = register_plugin(Plugin(), name="tp")
            assert info.status == "active"
            assert aid2e.plugins.get_plugin_manager() is plugin_manager
            assert "thirdparty" in plugin_manager.backends()
            seen["manager"] = plugin_manager

        def test_after():
            manager = seen["manager"]
            assert "thirdparty" not in manager.backends()
            assert "tp" not in [i.name for i in manager.plugins()]
            assert aid2e.plugins._manager is not manager
        """
    )
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(passed=2)


def test_a_hook_that_raises_gives_status_error_others_unaffected(plugin_manager, register_plugin):
    register_plugin(OtherPlugin(), name="aid2e-other")
    bad = register_plugin(RaisingPlugin(), name="aid2e-raising")
    assert bad.status == "error"
    assert bad.error == "RuntimeError: cannot reach the batch system"
    assert bad.provides == {}
    good = _row(plugin_manager, "aid2e-other")
    assert good.status == "active" and good.provides == {"backends": ["other"]}
    assert set(plugin_manager.backends()) >= {"other"}
    assert _row(plugin_manager, "aid2e (builtins)").status == "active"
    assert "function" in plugin_manager.job_kinds()


def test_a_hook_yielding_the_wrong_record_type_is_an_error(plugin_manager, register_plugin):
    bad = register_plugin(WrongTypePlugin(), name="aid2e-wrong")
    assert bad.status == "error"
    assert "aid2e_backends yielded JobKind, expected BackendInfo" in bad.error
    assert "oops" not in plugin_manager.backends()
    assert "oops" not in plugin_manager.job_kinds()


def test_a_plugin_with_a_bad_hookimpl_signature_is_an_error(plugin_manager, register_plugin):
    class BadSignature:
        @hookimpl
        def aid2e_backends(self, unexpected_argument):
            yield from ()

    info = register_plugin(BadSignature(), name="aid2e-badsig")
    assert info.status == "error" and info.error


def test_container_kind_without_its_plugin_names_the_distribution(bare_plugin_manager):
    plugin_manager = bare_plugin_manager
    with pytest.raises(PluginNotInstalledError, match="aid2e-containers") as info:
        plugin_manager.job_kind("container")
    assert "'container'" in str(info.value)
    assert isinstance(info.value, ImportError)


def test_unknown_kind(plugin_manager):
    with pytest.raises(PluginNotInstalledError, match="no installed plugin provides job kind 'nope'"):
        plugin_manager.job_kind("nope")


def test_runner_classes_are_looked_up_among_plugins(plugin_manager, register_plugin):
    register_plugin(FullPlugin(), name="aid2e-fake")
    from aid2e import FakeRunner as found

    assert found is FakeRunner


def test_unknown_runner_name_is_an_import_error(plugin_manager):
    with pytest.raises(ImportError):
        from aid2e import NoSuchRunner  # noqa: F401
    with pytest.raises(AttributeError):
        aid2e.NoSuchRunner  # noqa: B018
    with pytest.raises(AttributeError):
        aid2e.no_such_submodule  # noqa: B018


def test_slurm_runner_without_its_plugin_names_the_distribution(bare_plugin_manager):
    with pytest.raises(ImportError, match="aid2e-psij") as info:
        from aid2e import SlurmRunner  # noqa: F401
    assert isinstance(info.value, PluginNotInstalledError)
    assert "aid2e[slurm]" in str(info.value)


def test_disabled_plugin_is_named_as_disabled(monkeypatch):
    from aid2e.plugins import PluginManager

    monkeypatch.setenv("AID2E_DISABLE_PLUGINS", "joblib")
    manager = PluginManager()
    with pytest.raises(PluginNotInstalledError, match="aid2e-joblib, which is disabled by AID2E_DISABLE_PLUGINS"):
        manager.runner_class("JobLibRunner")


def test_scheduler_names_are_aid2e_names():
    try:
        importlib.import_module("aid2e.ax_scheduler")
    except Exception as exc:  # the module may not be importable yet
        pytest.skip(f"aid2e.ax_scheduler does not import: {exc!r}")
    import scheduler

    assert getattr(scheduler, "AxScheduler") is getattr(aid2e, "AxScheduler")  # noqa: B009


def test_scheduler_reexports_core_names():
    import scheduler

    assert scheduler.JobState is aid2e.JobState
    assert scheduler.ScriptJob is aid2e.ScriptJob
    with pytest.raises(AttributeError):
        scheduler.__no_such_dunder__  # noqa: B018
