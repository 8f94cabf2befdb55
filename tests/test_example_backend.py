"""The plugin tutorial's backend, examples/aid2e-nice (docs/tutorials/write-a-backend.md), apart from
the page: at most 40 lines, as the page shows it; pip-installed (into a directory of its own, the
shared environment is not touched) it is listed as an active plugin, passes the conformance suite,
runs a campaign file with exact results under nice, and a controller killed mid-campaign is resumed
with every trial run exactly once."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from aid2e.testing import BackendConformance
from aid2e.testing.docblocks import parse

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "aid2e-nice"
PAGE = ROOT / "docs" / "tutorials" / "write-a-backend.md"
LIMIT = 40


def code_lines(path: Path) -> list[str]:
    """The lines that count: every line that is neither blank nor only a comment."""
    return [line for line in path.read_text().splitlines() if line.strip() and not line.strip().startswith("#")]


def test_the_backend_is_at_most_40_lines_of_python() -> None:
    built = {"build", "__pycache__"}  # what pip leaves when it builds in the directory
    sources = sorted(p for p in EXAMPLE.rglob("*.py") if not built & set(p.relative_to(EXAMPLE).parts))
    assert [p.name for p in sources] == ["aid2e_nice.py"]
    counted = code_lines(sources[0])
    assert 20 < len(counted) <= LIMIT, f"{len(counted)} lines of code, the tutorial promises at most {LIMIT}"
    page = PAGE.read_text()
    assert f"builds a complete one in {len(counted)} lines" in page and f"{len(counted)} lines of code" in page


def test_the_tutorial_shows_the_example_as_it_is() -> None:
    """The page writes both files with ``file:`` blocks; they must be the repository's, to the letter."""
    written = {block.argument: block.code for block in parse(PAGE.read_text(), str(PAGE)) if block.kind == "file"}
    for name in ("pyproject.toml", "aid2e_nice.py"):
        shown = written.get(f"examples/aid2e-nice/{name}")
        assert shown is not None, f"the page has no file block for examples/aid2e-nice/{name}"
        assert shown.strip("\n") == (EXAMPLE / name).read_text().strip("\n"), f"the page's {name} differs from the file"


def _load_example():
    """The example module from its source file, without putting its directory on sys.path."""
    spec = importlib.util.spec_from_file_location("aid2e_nice_under_test", EXAMPLE / "aid2e_nice.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


nice = _load_example()


class TestNiceRunnerConformance(BackendConformance):
    def make_backend(self):
        return nice.NiceRunner(niceness=5, slots=4)


# ------------------------------------------------------------------ installed with pip
@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> dict[str, str]:
    """The environment of a process that has the example pip-installed (from a copy: pip builds
    in the source directory) into a directory of its own, first on PYTHONPATH."""
    where = tmp_path_factory.mktemp("aid2e-nice")
    shutil.copytree(EXAMPLE, where / "src", ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                           "--no-deps", "--no-build-isolation", "--target", str(where / "site"), str(where / "src")],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert (where / "site" / "aid2e_nice.py").read_text() == (EXAMPLE / "aid2e_nice.py").read_text()
    path = [str(where / "site"), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(path)}


def _aid2e(env: dict[str, str], *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "aid2e", *args], capture_output=True, text=True, env=env, cwd=cwd,
                          timeout=300)


def test_pip_installed_it_is_an_active_plugin_providing_the_nice_backend(installed) -> None:
    done = _aid2e(installed, "plugins", "list", "--json")
    assert done.returncode == 0, done.stderr
    rows = {row["name"]: row for row in json.loads(done.stdout)}
    assert rows["aid2e-nice"] == {
        "name": "aid2e-nice", "version": "0.1.0", "entry_point": "nice = aid2e_nice", "status": "active",
        "builtin": False, "provides": {"backends": ["nice"], "job_kinds": [], "job_adapters": []}, "error": None,
    }


#: The trial's script: runs once per trial (it says so in $RUNS_LOG), takes a moment, reports a
#: value exact to its parameters and leaves the niceness it ran at in its directory.
SCRIPT = """\
import json, os, time
p = json.load(open(os.environ["AID2E_PARAMS_FILE"]))
with open(os.environ["RUNS_LOG"], "a") as log:
    log.write(os.environ["AID2E_TRIAL_INDEX"] + "\\n")
time.sleep(float(os.environ.get("TRIAL_SECONDS", "0")))
open("niceness.txt", "w").write(str(os.nice(0)))
json.dump({"objective": 2 * p["x"] + p["y"]}, open(os.environ["AID2E_RESULT_FILE"], "w"))
"""

CAMPAIGN = """\
name: {name}
output_dir: ./runs
parameters:
  x: {{bounds: [0.0, 1.0]}}
  y: {{bounds: [0.0, 1.0]}}
objectives:
  objective: {{direction: minimize}}
optimizer: {{initial_trials: 6, method: sobol, seed: 3}}
max_trials: 6
max_parallel_trials: 2
backends:
  background: {{type: nice, niceness: 3, slots: 2}}
trial:
  backend: background
  script: [python3, trial.py]
"""
TOTAL = 6


def _campaign(tmp_path: Path, installed: dict[str, str], name: str, seconds: float) -> tuple[Path, dict[str, str]]:
    (tmp_path / "trial.py").write_text(SCRIPT)
    (tmp_path / "campaign.yaml").write_text(CAMPAIGN.format(name=name))
    env = {**installed, "RUNS_LOG": str(tmp_path / "runs.log"), "TRIAL_SECONDS": str(seconds),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    return tmp_path / "runs" / name, env


def _check_every_trial_ran_once_with_exact_values(tmp_path: Path, state_dir: Path, env: dict[str, str]) -> None:
    done = _aid2e(env, "status", str(state_dir), "--json")
    assert done.returncode == 0, done.stderr
    trials = json.loads(done.stdout)["trials"]
    assert [t["status"] for t in trials] == ["COMPLETED"] * TOTAL, [(t["index"], t["message"]) for t in trials]
    ours = os.nice(0)
    for trial in trials:
        p = trial["parameters"]
        assert trial["metrics"] == {"objective": {"mean": 2 * p["x"] + p["y"], "sem": None}}
        assert [job["backend"] for job in trial["jobs"]] == ["nice"]
        assert (state_dir / trial["jobs"][0]["workdir"] / "niceness.txt").read_text() == str(min(ours + 3, 19))
    runs = Counter(int(line) for line in (tmp_path / "runs.log").read_text().split())
    assert runs == Counter(range(TOTAL)), f"runs per trial: {dict(runs)}"


@pytest.mark.timeout(300)
def test_a_campaign_file_runs_on_it(tmp_path: Path, installed) -> None:
    state_dir, env = _campaign(tmp_path, installed, "nice-campaign", 0.0)
    done = _aid2e(env, "validate", "campaign.yaml", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "    background (nice): ready, 2 job(s) at once at niceness 3" in done.stdout.splitlines()
    done = _aid2e(env, "run", "campaign.yaml", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1].startswith(f"{TOTAL} completed, 0 failed, 0 abandoned, 0 running; best: ")
    _check_every_trial_ran_once_with_exact_values(tmp_path, state_dir, env)


FUNCTION = """\
import os


def objective(x, y):
    with open(os.environ["RUNS_LOG"], "a") as log:
        log.write(os.environ["AID2E_TRIAL_INDEX"] + "\\n")
    open("niceness.txt", "w").write(str(os.nice(0)))
    return {"objective": 2 * x + y}
"""


@pytest.mark.timeout(300)
def test_a_function_trial_runs_on_it_as_a_script(tmp_path: Path, installed) -> None:
    """The backend runs scripts only; the core's function->script adapter makes a function trial one."""
    state_dir, env = _campaign(tmp_path, installed, "nice-function", 0.0)
    (tmp_path / "model.py").write_text(FUNCTION)
    campaign = tmp_path / "campaign.yaml"
    campaign.write_text(campaign.read_text().replace("script: [python3, trial.py]", 'function: "model:objective"'))
    done = _aid2e(env, "run", "campaign.yaml", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    _check_every_trial_ran_once_with_exact_values(tmp_path, state_dir, env)


def test_a_bad_option_is_one_line_from_validate(tmp_path: Path, installed) -> None:
    (tmp_path / "trial.py").write_text(SCRIPT)
    (tmp_path / "campaign.yaml").write_text(CAMPAIGN.format(name="bad").replace("niceness: 3", "niceness: 25"))
    done = _aid2e(installed, "validate", "campaign.yaml", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip() == ("campaign.yaml: backends.background: niceness must be 0 to 19 and slots 1 or more, "
                                   "got 25 and 2")


#: (trials started to wait for, extra delay in s) before the SIGKILL: just after a launch, mid-trial
KILLS = [(1, 0.0), (3, 0.4)]


@pytest.mark.timeout(300)
@pytest.mark.parametrize("kill_at", KILLS, ids=lambda k: f"{k[0]}@{k[1]}")
def test_a_killed_controller_is_resumed_without_losing_or_repeating_a_trial(tmp_path: Path, installed,
                                                                            kill_at) -> None:
    """Its jobs outlive the controller: those running at the kill are followed by their saved
    handles (or adopted, if the handle was not saved yet), none is submitted again."""
    state_dir, env = _campaign(tmp_path, installed, "killed", 1.0)
    runs_log = tmp_path / "runs.log"
    controller = subprocess.Popen([sys.executable, "-m", "aid2e", "run", "campaign.yaml"], cwd=tmp_path, env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    started, delay = kill_at
    deadline = time.monotonic() + 120
    while (not runs_log.exists() or len(runs_log.read_text().split()) < started) and controller.poll() is None:
        assert time.monotonic() < deadline, "the campaign's trials did not start"
        time.sleep(0.01)
    time.sleep(delay)
    controller.send_signal(signal.SIGKILL)
    controller.wait(timeout=30)
    assert controller.returncode == -signal.SIGKILL, f"it ended before the kill: {controller.stderr.read()[-1500:]}"
    done = _aid2e(env, "resume", str(state_dir), cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.splitlines()[-1].startswith(f"{TOTAL} completed, 0 failed")
    _check_every_trial_ran_once_with_exact_values(tmp_path, state_dir, env)
