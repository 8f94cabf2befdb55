"""Fixtures for the container tests: the real engines scripts/services/containers.sh and
scripts/services/apptainer.sh set up.

containers.sh writes ``state.json`` (``$AID2E_CONTAINERS_STATE``, default
``/var/lib/aid2e-containers/state.json``): the test image, dockerd's socket and, for podman and
docker, ``"ok"`` or why it does not work. apptainer.sh writes ``apptainer.json`` next to it:
``"ok"`` or why Apptainer is not usable, its program and the test images (a busybox root
directory and a SIF built from it). Tests needing an engine skip with that reason (or fail where
AID2E_REQUIRE names the engine).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from aid2e.testing.requirements import require

STATE_FILE = Path(os.environ.get("AID2E_CONTAINERS_STATE", "/var/lib/aid2e-containers/state.json"))
APPTAINER_STATE_FILE = STATE_FILE.with_name("apptainer.json")

#: Reads params.json ({"x": .., "y": ..}) and writes x + y and x * y to $AID2E_RESULT_FILE, with
#: busybox awk (17 significant digits: the doubles come back exactly).
SUM_AWK = (
    'BEGIN { RS = "\\001" } '
    '{ s = $0; gsub(/[{} "\\n]/, "", s); n = split(s, kv, ","); '
    '  for (i = 1; i <= n; i++) { split(kv[i], p, ":"); v[p[1]] = p[2] + 0 } '
    '  printf "{\\"objective\\": %.17g, \\"area\\": %.17g}\\n", v["x"] + v["y"], v["x"] * v["y"] '
    '    > ENVIRON["AID2E_RESULT_FILE"] }'
)
SUM_COMMAND = ["awk", SUM_AWK, "params.json"]


def _read(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


@pytest.fixture(scope="session")
def container_state() -> dict:
    return _read(STATE_FILE)


@pytest.fixture(scope="session")
def apptainer_state() -> dict:
    return _read(APPTAINER_STATE_FILE)


def _require(state: dict, engine: str) -> None:
    """Skip without the engine; fail where AID2E_REQUIRE (set by .ci/run) names it."""
    if not state:
        require(engine, False, f"no {STATE_FILE}: run scripts/services/containers.sh (as root) to set up the engines")
    status = state.get(engine, "not set up")
    require(engine, status == "ok", f"{engine} is not usable here: {status}")


@pytest.fixture(params=["podman", "docker"])
def engine(request, container_state, monkeypatch) -> str:
    """Each real OCI engine in turn; docker talks to the private dockerd through DOCKER_HOST."""
    name = request.param
    _require(container_state, name)
    if name == "docker":
        monkeypatch.setenv("DOCKER_HOST", container_state["docker_host"])
    return name


@pytest.fixture
def podman(container_state) -> str:
    _require(container_state, "podman")
    return "podman"


@pytest.fixture
def apptainer(apptainer_state) -> dict:
    """apptainer.json: ``executable``, ``rootfs`` (an unpacked image directory), ``sif``."""
    if not apptainer_state:
        require("apptainer", False,
                f"no {APPTAINER_STATE_FILE}: run scripts/services/apptainer.sh (as root) to install Apptainer")
    status = apptainer_state.get("apptainer", "not set up")
    require("apptainer", status == "ok", f"apptainer is not usable here: {status}")
    return apptainer_state


@pytest.fixture
def apptainer_limits(apptainer) -> dict:
    """Apptainer whose --cpus/--memory (cgroups) work, as apptainer.sh found."""
    status = apptainer.get("limits", "not checked")
    require("apptainer", status == "ok", f"apptainer's --cpus/--memory (cgroups) do not work here: {status}")
    return apptainer


@pytest.fixture
def test_image(container_state) -> str:
    return container_state.get("image", "localhost/aid2e-test:latest")


@pytest.fixture
def make_ax_client():
    """``make_ax_client(name, parameters=None)``: an AxClient with Sobol only, x and y in [0, 1]."""
    from aid2e.testing.experiments import unit_square_ax_client

    def make(name="ctr", parameters=None, objectives=("objective",)):
        return unit_square_ax_client(name, parameters=parameters or ("x", "y"), objectives=objectives, seed=3)

    return make


@pytest.fixture
def sum_command() -> list[str]:
    """A command writing ``{"objective": x + y, "area": x * y}`` (see ``SUM_AWK``)."""
    return list(SUM_COMMAND)


@pytest.fixture
def run_request():
    """``run_request(request, timeout=60)``: adapt one JobRequest and run it on a JobLibRunner, as
    the scheduler would; returns its JobResult and trial directory."""
    import time

    from aid2e_containers import adapt
    from aid2e_joblib import JobLibRunner

    def run(request, timeout: float = 60.0):
        runner = JobLibRunner(n_jobs=1)
        try:
            handle = runner.submit(adapt(request, runner))
            deadline = time.time() + timeout
            while not runner.poll([handle])[handle.native_id].is_final:
                assert time.time() < deadline, "the container job did not end"
                runner.wait([handle], 1.0)
            return runner.result(handle), Path(request.workdir)
        finally:
            runner.close()

    return run


#: Doubles a string until it holds 256 MiB (busybox awk), then prints its length.
MEMORY_HOG = ["awk", 'BEGIN { s = "x"; while (length(s) < 268435456) s = s s; print length(s) }']


@pytest.fixture
def memory_hog() -> list[str]:
    return list(MEMORY_HOG)


@pytest.fixture
def scheduler_config(tmp_path) -> dict:
    return {"job_output_dir": str(tmp_path / "jobs"), "monitoring_interval": 2}


def assert_sum_campaign(scheduler, *, trials: int, engine: str, image: str, image_id: str) -> None:
    """A campaign of ``sum_command`` trials: each COMPLETED with exactly ``x + y`` and ``x * y``,
    its handle naming engine, image and resolved image ID, and those IDs in the saved state."""
    assert len(scheduler.trials) == trials
    for record in scheduler.trials.values():
        assert record.status == "COMPLETED", record.message
        x, y = record.parameters["x"], record.parameters["y"]
        assert record.metrics["objective"].mean == x + y
        assert record.metrics["area"].mean == x * y
        extra = record.handle.extra
        assert extra["container_engine"] == engine
        assert extra["container_image"] == image
        assert extra["container_image_id"] == image_id
    saved = json.loads((scheduler.experiment_dir / "experiment.json").read_text())
    assert image_id in json.dumps(saved)
