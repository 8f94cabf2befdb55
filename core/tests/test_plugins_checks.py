"""aid2e.plugins: what a plugin declares is checked (hookimpls, hook names) and a name two plugins
provide is an error on both rows, never a silent winner."""

from __future__ import annotations

import pytest

import aid2e
from aid2e import BackendInfo, JobAdapter, JobKind, hookimpl
from aid2e.errors import PluginConflictError


class RunnerA:
    pass


class RunnerB:
    pass


class NotebookJob:
    kind = "notebook"


def _row(manager, name):
    return next(i for i in manager.plugins() if i.name == name)


def _backends(name, factory):
    class Plugin:
        @hookimpl
        def aid2e_backends(self):
            yield BackendInfo(name=name, factory=factory, kinds={"script"})

    return Plugin()


def _kinds(name, spec_type):
    class Plugin:
        @hookimpl
        def aid2e_job_kinds(self):
            yield JobKind(name=name, spec_type=spec_type)

    return Plugin()


def _adapters(kind, produces):
    class Plugin:
        @hookimpl
        def aid2e_job_adapters(self):
            yield JobAdapter(kind=kind, produces=produces, adapt=lambda request, backend: request)

    return Plugin()


# ---------------------------------------------------------------- how hooks are declared
def test_a_class_without_hookimpl_is_an_error_that_provides_nothing(plugin_manager, register_plugin):
    class Undecorated:
        def aid2e_backends(self):
            yield BackendInfo(name="sneaky", factory=RunnerA)

    info = register_plugin(Undecorated(), name="aid2e-undecorated")
    assert info.status == "error"
    assert info.error.startswith(
        "registers no hook implementations: decorate its functions with @aid2e.hookimpl")
    assert "aid2e_backends" in info.error
    assert info.provides == {}
    assert "sneaky" not in plugin_manager.backends()
    with pytest.raises(AttributeError):
        plugin_manager.runner_class("RunnerA")


def test_a_plugin_with_nothing_at_all_is_an_error(plugin_manager, register_plugin):
    info = register_plugin(object(), name="aid2e-empty")
    assert info.status == "error"
    assert info.error == "registers no hook implementations: decorate its functions with @aid2e.hookimpl"


def test_a_misspelled_hook_is_an_error_naming_the_hook(plugin_manager, register_plugin):
    class Misspelled:
        @hookimpl
        def aid2e_backend(self):  # not aid2e_backends
            yield BackendInfo(name="typo", factory=RunnerA)

        @hookimpl
        def aid2e_job_kinds(self):
            yield JobKind(name="notebook", spec_type=NotebookJob)

    info = register_plugin(Misspelled(), name="aid2e-typo")
    assert info.status == "error"
    assert info.error == "aid2e_backend is not an aid2e hook (did you mean aid2e_backends?)"
    assert info.provides == {}
    assert "notebook" not in plugin_manager.job_kinds()  # a plugin in error provides nothing
    assert _row(plugin_manager, "aid2e (builtins)").status == "active"  # others unaffected


def test_an_optional_unknown_hook_is_allowed(plugin_manager, register_plugin):
    """pluggy's ``optionalhook=True``: a hook of a newer aid2e, skipped by this one."""
    class Forward:
        @hookimpl(optionalhook=True)
        def aid2e_future_hook(self):
            return []

        @hookimpl
        def aid2e_backends(self):
            yield BackendInfo(name="forward", factory=RunnerA)

    info = register_plugin(Forward(), name="aid2e-forward")
    assert info.status == "active", info.error
    assert "forward" in plugin_manager.backends()


def test_one_hook_not_decorated_is_an_error(plugin_manager, register_plugin):
    class HalfDecorated:
        @hookimpl
        def aid2e_backends(self):
            yield BackendInfo(name="half", factory=RunnerA)

        def aid2e_job_kinds(self):
            yield JobKind(name="notebook", spec_type=NotebookJob)

    info = register_plugin(HalfDecorated(), name="aid2e-half")
    assert info.status == "error"
    assert info.error == "aid2e_job_kinds is not decorated with @aid2e.hookimpl, so aid2e would never call it"
    assert "half" not in plugin_manager.backends()


def test_the_removed_storages_hook_says_so(plugin_manager, register_plugin):
    class OldPlugin:
        @hookimpl
        def aid2e_storages(self):
            return []

    info = register_plugin(OldPlugin(), name="aid2e-old")
    assert info.status == "error"
    assert info.error.startswith("aid2e_storages was removed")


def test_a_bad_signature_names_the_hook_and_the_argument(plugin_manager, register_plugin):
    class BadSignature:
        @hookimpl
        def aid2e_backends(self, unexpected_argument):
            yield from ()

    info = register_plugin(BadSignature(), name="aid2e-badsig")
    assert info.status == "error" and "\n" not in info.error
    assert "aid2e_backends" in info.error and "unexpected_argument" in info.error


def test_a_name_twice_in_one_plugin_is_its_error(plugin_manager, register_plugin):
    class Twice:
        @hookimpl
        def aid2e_backends(self):
            yield BackendInfo(name="twin", factory=RunnerA)
            yield BackendInfo(name="twin", factory=RunnerB)

    info = register_plugin(Twice(), name="aid2e-twice")
    assert info.status == "error"
    assert info.error == "yields backend 'twin' more than once"
    assert "twin" not in plugin_manager.backends()


def test_a_hook_returning_one_record_instead_of_yielding_is_an_error(plugin_manager, register_plugin):
    class ReturnsOne:
        @hookimpl
        def aid2e_backends(self):
            return BackendInfo(name="single", factory=RunnerA)

    info = register_plugin(ReturnsOne(), name="aid2e-returns-one")
    assert info.status == "error"
    assert info.error == ("TypeError: aid2e_backends must yield its records (or return a list of them), "
                          "not return a BackendInfo")
    assert "single" not in plugin_manager.backends()


def test_a_second_plugin_under_a_taken_name_is_refused_and_the_first_kept(plugin_manager, register_plugin):
    register_plugin(_backends("first", RunnerA), name="aid2e-same")
    with pytest.raises(ValueError, match="a plugin named 'aid2e-same' is already registered"):
        plugin_manager.register(_backends("second", RunnerB), name="aid2e-same")
    assert _row(plugin_manager, "aid2e-same").status == "active"
    assert plugin_manager.backend("first").factory is RunnerA
    assert "second" not in plugin_manager.backends()


# ---------------------------------------------------------------- names across plugins
def test_a_backend_name_in_two_plugins_is_an_error_on_both_rows(plugin_manager, register_plugin):
    register_plugin(_backends("dup", RunnerA), name="aid2e-first")
    register_plugin(_backends("dup", RunnerB), name="aid2e-second")
    expected = ("backend 'dup' is provided by both aid2e-first and aid2e-second: "
                "uninstall one, or disable one with AID2E_DISABLE_PLUGINS")
    for name in ("aid2e-first", "aid2e-second"):
        row = _row(plugin_manager, name)
        assert (row.status, row.error) == ("error", expected)
        assert row.to_json()["provides"]["backends"] == ["dup"]  # what it declares, still listed
    assert "dup" not in plugin_manager.backends()  # neither silently wins
    with pytest.raises(PluginConflictError) as info:
        plugin_manager.backend("dup")
    assert str(info.value) == expected
    for runner in ("RunnerA", "RunnerB"):
        with pytest.raises(PluginConflictError, match="aid2e-first and aid2e-second"):
            plugin_manager.runner_class(runner)
    with pytest.raises(ImportError, match="provided by both"):
        from aid2e import RunnerB as _found  # noqa: F401


def test_removing_one_of_two_resolves_the_conflict(plugin_manager, register_plugin):
    register_plugin(_backends("dup", RunnerA), name="aid2e-first")
    register_plugin(_backends("dup", RunnerB), name="aid2e-second")
    plugin_manager.unregister("aid2e-first")
    row = _row(plugin_manager, "aid2e-second")
    assert (row.status, row.error) == ("active", None)
    assert plugin_manager.backend("dup").factory is RunnerB


def test_a_conflict_withholds_only_that_name(plugin_manager, register_plugin):
    class Both:
        @hookimpl
        def aid2e_backends(self):
            yield BackendInfo(name="dup", factory=RunnerA)
            yield BackendInfo(name="unique", factory=RunnerA)

    register_plugin(Both(), name="aid2e-both")
    register_plugin(_backends("dup", RunnerB), name="aid2e-other")
    assert _row(plugin_manager, "aid2e-both").status == "error"
    assert set(plugin_manager.backends()) >= {"unique"}
    assert "dup" not in plugin_manager.backends()


def test_a_job_kind_the_builtins_have_is_a_conflict_too(plugin_manager, register_plugin):
    """No precedence for the built-ins: a third-party 'script' kind makes both rows errors."""
    info = register_plugin(_kinds("script", NotebookJob), name="aid2e-myscript")
    assert info.status == "error"
    assert info.error.startswith("job kind 'script' is provided by both aid2e (builtins) and aid2e-myscript:")
    builtin = _row(plugin_manager, "aid2e (builtins)")
    assert builtin.status == "error" and builtin.error == info.error
    with pytest.raises(PluginConflictError, match="aid2e \\(builtins\\) and aid2e-myscript"):
        plugin_manager.job_kind("script")
    assert plugin_manager.job_kind("function").spec_type is not None  # the rest of the built-ins work


def test_an_adapter_in_two_plugins_is_a_conflict(plugin_manager, register_plugin):
    register_plugin(_kinds("notebook", NotebookJob), name="aid2e-notebook")
    register_plugin(_adapters("notebook", "script"), name="aid2e-nb-one")
    register_plugin(_adapters("notebook", "script"), name="aid2e-nb-two")
    for name in ("aid2e-nb-one", "aid2e-nb-two"):
        row = _row(plugin_manager, name)
        assert row.status == "error"
        assert row.error.startswith("job adapter 'notebook->script' is provided by both aid2e-nb-one and aid2e-nb-two")
    assert not [a for a in plugin_manager.job_adapters() if a.kind == "notebook"]
    with pytest.raises(PluginConflictError, match="aid2e-nb-one and aid2e-nb-two"):
        plugin_manager.job_adapter("notebook", {"script"})
    assert plugin_manager.job_adapter("function", {"script"}).produces == "script"
    assert plugin_manager.job_adapter("notebook", {"python"}) is None


def test_the_scheduler_names_both_adapter_plugins(plugin_manager, register_plugin, tmp_path):
    """The lookup a campaign makes: setting an objective whose kind two plugins adapt fails at once."""
    pytest.importorskip("ax")
    from aid2e import AxScheduler
    from aid2e.backend import Backend
    from aid2e.testing.experiments import unit_square_ax_client

    class PythonOnly(Backend):
        """Runs only 'python' jobs; never asked to run one here."""

        name = "python-only"
        kinds = frozenset({"python"})

        def submit(self, request):
            raise AssertionError("no job is submitted")

        poll = result = cancel = submit

    register_plugin(_adapters("script", "python"), name="aid2e-py-one")
    register_plugin(_adapters("script", "python"), name="aid2e-py-two")
    scheduler = AxScheduler(unit_square_ax_client("conflict"), PythonOnly(),
                            config={"job_output_dir": str(tmp_path)})
    script = tmp_path / "objective.py"
    script.write_text("")
    with pytest.raises(PluginConflictError, match="'script->python' is provided by both aid2e-py-one and aid2e-py-two"):
        scheduler.set_script_objective(str(script))


def test_plugins_list_shows_the_conflict_on_both_rows(plugin_manager, register_plugin, capsys):
    from aid2e.cli import main

    register_plugin(_backends("dup", RunnerA), name="aid2e-first")
    register_plugin(_backends("dup", RunnerB), name="aid2e-second")
    assert main(["plugins", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    for name in ("aid2e-first", "aid2e-second"):
        line = next(line for line in lines if line.startswith(name + " "))
        assert line.split()[2] == "error"
        assert line.endswith("backend 'dup' is provided by both aid2e-first and aid2e-second: "
                             "uninstall one, or disable one with AID2E_DISABLE_PLUGINS")
    assert aid2e.get_plugin_manager() is plugin_manager
