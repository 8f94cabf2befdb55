"""The ``aid2e`` command line: in-process with registered plugins, and in subprocesses with fake
installed distributions (real entry points) on PYTHONPATH."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import aid2e
from aid2e import BackendInfo, JobKind, hookimpl
from aid2e.cli import main
from aid2e.errors import ConfigError


class FakeRunner:
    pass


class ContainerJob:
    kind = "container"


class FakePlugin:
    @hookimpl
    def aid2e_backends(self):
        yield BackendInfo(name="fake", factory=FakeRunner, kinds={"script"})

    @hookimpl
    def aid2e_job_kinds(self):
        yield JobKind(name="container", spec_type=ContainerJob)


class BrokenPlugin:
    @hookimpl
    def aid2e_backends(self):
        raise ModuleNotFoundError("No module named 'pandaclient'")
        yield  # pragma: no cover


@pytest.fixture
def without_containers(monkeypatch):
    """The installed aid2e-containers disabled: ``FakePlugin``'s 'container' kind would be a
    name two plugins provide (an error on both rows). List it before ``plugin_manager``."""
    monkeypatch.setenv("AID2E_DISABLE_PLUGINS", "aid2e-containers")


# ---------------------------------------------------------------- in-process
def test_table_shows_name_version_status_and_provides(without_containers, plugin_manager, register_plugin,
                                                       capsys):
    register_plugin(FakePlugin(), name="aid2e-fake", version="2.0")
    register_plugin(BrokenPlugin(), name="aid2e-gridfail", version="0.1.0")
    assert main(["plugins", "list"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split() == ["Name", "Version", "Status", "Provides"]
    fake = next(line for line in lines if line.startswith("aid2e-fake "))
    assert fake.split()[:3] == ["aid2e-fake", "2.0", "active"]
    assert fake.endswith("backends: fake; job kinds: container")
    panda = next(line for line in lines if line.startswith("aid2e-gridfail "))
    assert panda.split()[:3] == ["aid2e-gridfail", "0.1.0", "error"]
    assert panda.endswith("ModuleNotFoundError: No module named 'pandaclient'")
    # columns line up
    assert lines[0].index("Status") == fake.index("active") == panda.index("error")
    assert "aid2e (builtins)" not in out


def test_all_includes_the_builtins(plugin_manager, capsys):
    assert main(["plugins", "list", "--all"]) == 0
    out = capsys.readouterr().out
    builtin = next(line for line in out.splitlines() if line.startswith("aid2e (builtins)"))
    assert "active" in builtin and "job kinds: function, script; job adapters: function->script" in builtin


def test_json_lists_plugin_records(without_containers, plugin_manager, register_plugin, capsys):
    register_plugin(FakePlugin(), name="aid2e-fake", version="2.0")
    assert main(["plugins", "list", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["aid2e-fake"] == {
        "name": "aid2e-fake",
        "version": "2.0",
        "entry_point": "(in-process)",
        "status": "active",
        "builtin": False,
        "provides": {"backends": ["fake"], "job_kinds": ["container"], "job_adapters": []},
        "error": None,
    }
    assert not any(r["builtin"] for r in rows.values())

    assert main(["plugins", "list", "--json", "--all"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["aid2e (builtins)"]["status"] == "active"
    assert rows["aid2e (builtins)"]["builtin"] is True


def test_no_plugins_besides_builtins(plugin_manager, monkeypatch, capsys):
    monkeypatch.setattr(plugin_manager, "plugins", lambda include_builtin=True: [])
    assert main(["plugins", "list"]) == 0
    assert "no plugins installed" in capsys.readouterr().out
    assert main(["plugins", "list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"aid2e {aid2e.__version__}"


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["frobnicate"], "invalid choice: 'frobnicate'"),
        ([], "the following arguments are required"),
        (["plugins"], "the following arguments are required"),
        (["plugins", "remove"], "invalid choice: 'remove'"),
        (["plugins", "list", "--bogus"], "unrecognized arguments: --bogus"),
    ],
)
def test_usage_errors_exit_2(argv, expected, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: aid2e")
    assert expected in err
    assert "Traceback" not in err


def test_help_exits_0(capsys):
    assert main(["--help"]) == 0
    assert "plugins" in capsys.readouterr().out


def test_aid2e_errors_are_one_line(plugin_manager, monkeypatch, capsys):
    def fail(include_builtin=True):
        raise ConfigError("the storage root /nope is not writable")

    monkeypatch.setattr(plugin_manager, "plugins", fail)
    assert main(["plugins", "list"]) == 1
    captured = capsys.readouterr()
    assert captured.err == "aid2e: error: the storage root /nope is not writable\n"
    assert captured.out == ""


@pytest.mark.parametrize("argv", [["-v", "plugins", "list"], ["plugins", "list", "--verbose"],
                                  ["plugins", "-v", "list", "--json"]])
def test_verbose_anywhere(plugin_manager, argv, monkeypatch, capsys):
    calls = []
    monkeypatch.setattr(logging, "basicConfig", lambda **kw: calls.append(kw))
    assert main(argv) == 0
    assert [c["level"] for c in calls] == [logging.DEBUG]
    monkeypatch.undo()
    calls.clear()
    assert main(["plugins", "list"]) == 0


def test_importing_the_cli_configures_no_logging():
    code = "import logging, aid2e.cli; print(len(logging.getLogger().handlers))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "0"


# ---------------------------------------------------------------- subprocesses, real entry points
def _dist(root: Path, name: str, entry_points: str, modules: dict[str, str]) -> None:
    info = root / f"{name}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(entry_points)
    for module, source in modules.items():
        (root / f"{module}.py").write_text(textwrap.dedent(source))


@pytest.fixture
def fake_site(tmp_path: Path) -> Path:
    """Two installed distributions with ``aid2e`` entry points: one broken, one working."""
    _dist(tmp_path, "brokenplug", "[aid2e]\nbroken = brokenplug_mod\n", {
        "brokenplug_mod": """
            import pathlib
            pathlib.Path(__file__).with_name("brokenplug_imported").touch()
            raise ImportError("needs pandaclient")
        """,
    })
    _dist(tmp_path, "goodplug", "[aid2e]\ngood = goodplug_mod\n", {
        "goodplug_mod": """
            from aid2e import BackendInfo, hookimpl

            class GoodRunner:
                pass

            @hookimpl
            def aid2e_backends():
                yield BackendInfo(name="good", factory=GoodRunner, kinds={"script"})
        """,
    })
    return tmp_path


def _run(args: list[str], site: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k != "AID2E_DISABLE_PLUGINS"}
    environ["PYTHONPATH"] = os.pathsep.join([str(site), *filter(None, [os.environ.get("PYTHONPATH")])])
    environ.update(env)
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=environ,
                          cwd=site, timeout=120)


def test_broken_entry_point_is_reported_not_fatal(fake_site):
    proc = _run(["-m", "aid2e", "plugins", "list", "--json", "--all"], fake_site)
    assert proc.returncode == 0, proc.stderr
    rows = {r["name"]: r for r in json.loads(proc.stdout)}
    broken = rows["brokenplug"]
    assert broken["status"] == "error"
    assert broken["error"] == "ImportError: needs pandaclient"
    assert broken["version"] == "0.1"
    assert broken["entry_point"] == "broken = brokenplug_mod"
    good = rows["goodplug"]
    assert good["status"] == "active" and good["error"] is None
    assert good["provides"] == {"backends": ["good"], "job_kinds": [], "job_adapters": []}
    assert rows["aid2e (builtins)"]["status"] == "active"
    assert rows["aid2e (builtins)"]["provides"]["job_kinds"] == ["function", "script"]
    assert "Traceback" not in proc.stderr


def test_installed_plugins_that_declare_wrongly_or_collide_are_error_rows(fake_site):
    """Real entry points: a module with no @hookimpl, and a second distribution with the
    backend name 'good' that goodplug has: each is an error row naming what to fix."""
    _dist(fake_site, "nohooks", "[aid2e]\nnohooks = nohooks_mod\n", {
        "nohooks_mod": """
            from aid2e import BackendInfo

            def aid2e_backends():
                yield BackendInfo(name="nohooks", factory=dict)
        """,
    })
    _dist(fake_site, "twinplug", "[aid2e]\ntwin = twinplug_mod\n", {
        "twinplug_mod": """
            from aid2e import BackendInfo, hookimpl

            class TwinRunner:
                pass

            @hookimpl
            def aid2e_backends():
                yield BackendInfo(name="good", factory=TwinRunner, kinds={"script"})
        """,
    })
    proc = _run(["-m", "aid2e", "plugins", "list", "--json"], fake_site)
    assert proc.returncode == 0, proc.stderr
    rows = {r["name"]: r for r in json.loads(proc.stdout)}
    assert rows["nohooks"]["status"] == "error"
    assert rows["nohooks"]["error"] == ("registers no hook implementations: decorate its functions with "
                                        "@aid2e.hookimpl (aid2e_backends)")
    assert rows["nohooks"]["provides"]["backends"] == []
    for name in ("goodplug", "twinplug"):
        assert rows[name]["status"] == "error"
        assert rows[name]["error"] == ("backend 'good' is provided by both goodplug and twinplug: "
                                       "uninstall one, or disable one with AID2E_DISABLE_PLUGINS")
    proc = _run(["-c", "from aid2e import GoodRunner"], fake_site)
    assert proc.returncode == 1
    assert "PluginConflictError: backend 'good' is provided by both goodplug and twinplug" in proc.stderr
    proc = _run(["-c", "from aid2e import GoodRunner; print(GoodRunner.__module__)"], fake_site,
                AID2E_DISABLE_PLUGINS="twinplug")
    assert proc.stdout.strip() == "goodplug_mod", proc.stderr


def test_runner_from_an_installed_plugin(fake_site):
    code = "from aid2e import GoodRunner; print(GoodRunner.__module__)"
    proc = _run(["-c", code], fake_site)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "goodplug_mod"


def test_disabled_plugin_is_never_imported(fake_site):
    proc = _run(["-m", "aid2e", "plugins", "list", "--json"], fake_site, AID2E_DISABLE_PLUGINS="brokenplug")
    assert proc.returncode == 0, proc.stderr
    rows = {r["name"]: r for r in json.loads(proc.stdout)}
    assert rows["brokenplug"]["status"] == "disabled"
    assert rows["brokenplug"]["error"] is None
    assert rows["goodplug"]["status"] == "active"
    assert not (fake_site / "brokenplug_imported").exists()


def test_disable_by_entry_point_name(fake_site):
    proc = _run(["-m", "aid2e", "plugins", "list", "--json"], fake_site, AID2E_DISABLE_PLUGINS=" x, good ")
    rows = {r["name"]: r for r in json.loads(proc.stdout)}
    assert rows["goodplug"]["status"] == "disabled"
    assert rows["brokenplug"]["status"] == "error"
    assert (fake_site / "brokenplug_imported").exists()


def test_table_in_a_subprocess(fake_site):
    proc = _run(["-m", "aid2e", "plugins", "list"], fake_site, AID2E_DISABLE_PLUGINS="goodplug")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].split() == ["Name", "Version", "Status", "Provides"]
    broken = next(line for line in lines if line.startswith("brokenplug "))
    assert broken.split()[:3] == ["brokenplug", "0.1", "error"]
    assert broken.endswith("ImportError: needs pandaclient")
    good = next(line for line in lines if line.startswith("goodplug "))
    assert good.split()[:3] == ["goodplug", "0.1", "disabled"]
    assert not any(line.startswith("aid2e (builtins)") for line in lines)


def test_verbose_logs_why_a_plugin_failed(fake_site):
    proc = _run(["-m", "aid2e", "-v", "plugins", "list"], fake_site)
    assert proc.returncode == 0
    assert "brokenplug failed to load" in proc.stderr
    assert "needs pandaclient" in proc.stderr


def test_console_script_usage_error_exit_code(fake_site):
    proc = _run(["-m", "aid2e", "frobnicate"], fake_site)
    assert proc.returncode == 2
    assert "invalid choice" in proc.stderr and "Traceback" not in proc.stderr


def test_plugins_list_is_light_and_fast(tmp_path):
    code = textwrap.dedent(
        """
        import contextlib, io, json, sys, time
        start = time.perf_counter()
        import aid2e.cli
        with contextlib.redirect_stdout(io.StringIO()):
            rc = aid2e.cli.main(["plugins", "list", "--json"])
        elapsed = time.perf_counter() - start
        heavy = sorted(m for m in ("ax", "torch", "joblib", "botorch", "pandas") if m in sys.modules)
        print(json.dumps({"rc": rc, "elapsed": elapsed, "heavy": heavy}))
        """
    )
    proc = _run(["-c", code], tmp_path)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.splitlines()[-1])
    print(f"aid2e plugins list --json: import + run took {report['elapsed']:.3f} s")
    assert report["rc"] == 0
    assert report["heavy"] == [], f"plugins list imported {report['heavy']}"
    assert report["elapsed"] < 1.0, f"import + run took {report['elapsed']:.3f} s"


def test_output_cut_off_by_a_closed_pipe_is_not_an_error(tmp_path):
    """`aid2e status DIR --json | head -c 1`: the reader goes away while aid2e still writes (far
    more than a pipe holds); no message, exit 0."""
    trials = [{"index": i, "parameters": {"x": i / 3}, "status": "COMPLETED", "metrics": {"objective": i}}
              for i in range(3000)]
    (tmp_path / "trials.json").write_text(json.dumps(
        {"format": "aid2e-experiment", "version": 2, "saved_at": 1.0, "scheduler": {"trials": trials}}))
    proc = subprocess.Popen([sys.executable, "-m", "aid2e", "status", str(tmp_path), "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout.read(1) == b"{"
    proc.stdout.close()
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0 and err == b"", err


_BROKEN_STATE_READER = """
import sys
import aid2e.state

def read_state(path):
    return {}["trials"]  # a state of a shape nobody foresaw

aid2e.state.read_state = read_state
from aid2e.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize("verbose", [False, True])
def test_an_error_is_one_line_and_verbose_shows_its_cause(tmp_path, verbose):
    """Without -v one line; with -v the traceback, down to the cause (it was cut off: 'from None')."""
    argv = [sys.executable, "-c", _BROKEN_STATE_READER, *(["-v"] if verbose else []), "status", str(tmp_path)]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    line = f"aid2e: error: cannot read the campaign state at {tmp_path}: KeyError: 'trials'"
    if not verbose:
        assert proc.stderr == line + "\n"
        return
    assert proc.stderr.rstrip().endswith(line)
    cause, _, error = proc.stderr.partition("The above exception was the direct cause of the following exception")
    assert "KeyError: 'trials'" in cause.splitlines() and "Traceback" in error
    assert "aid2e.errors.ConfigError: cannot read the campaign state" in proc.stderr
