"""``aid2e dashboard`` next to a running controller, in the real headless Chromium: it draws the
campaign, its counts change as the test lets trials finish (each trial's script waits for a gate
file the test creates: no timing is assumed), it never takes the campaign's lock, it serves a
job's output file and nothing outside the campaign, and a taken port is one line."""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

pytestmark = pytest.mark.timeout(300)
BOUND = 120.0

GATED = """\
import json, os, time
p = json.load(open(os.environ["AID2E_PARAMS_FILE"]))
index = os.environ["AID2E_TRIAL_INDEX"]
print(f"trial {{index}} waits for its gate")
gate = os.path.join({gates!r}, index)
deadline = time.monotonic() + 240
while not os.path.exists(gate) and time.monotonic() < deadline:
    time.sleep(0.05)
json.dump({{"loss": p["x"] + p["y"]}}, open(os.environ["AID2E_RESULT_FILE"], "w"))
"""

CAMPAIGN = """\
name: live
parameters: {x: {bounds: [0.0, 1.0]}, y: {bounds: [0.0, 1.0]}}
objectives: {loss: {direction: minimize}}
optimizer: {method: sobol, seed: 1}
max_trials: 4
max_parallel_trials: 2
backends: {local: {type: joblib, n_jobs: 2}}
trial: {backend: local, script: [python3, gated.py]}
scheduler: {monitoring_interval: 0.5}
"""


def wait_until(condition, what: str) -> None:
    deadline = time.monotonic() + BOUND
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {BOUND:g} s: {what}")
        time.sleep(0.05)


def first_line(process: subprocess.Popen) -> str:
    """The first line the process prints, waited for with a bound."""
    ready, _, _ = select.select([process.stdout], [], [], BOUND)
    assert ready, "the dashboard printed nothing"
    return process.stdout.readline()


def aid2e(*args: str) -> list[str]:
    return [sys.executable, "-m", "aid2e", *args]


@pytest.fixture
def campaign(tmp_path):
    gates = tmp_path / "gates"
    gates.mkdir()
    (tmp_path / "gated.py").write_text(GATED.format(gates=str(gates)))
    (tmp_path / "live.yaml").write_text(CAMPAIGN)
    controller = subprocess.Popen(aid2e("run", "live.yaml"), cwd=tmp_path, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True)
    where = tmp_path / "aid2e_jobs" / "live"
    try:
        yield controller, where, gates
    finally:
        for index in range(4):  # let every trial end, so the controller does too
            (gates / str(index)).touch()
        try:
            controller.wait(timeout=BOUND)
        except subprocess.TimeoutExpired:
            controller.kill()
            controller.wait()


@pytest.fixture
def dashboard(campaign):
    _, where, _ = campaign
    wait_until(lambda: (where / "trials.json").exists(), "the controller saved its first state")
    process = subprocess.Popen(aid2e("dashboard", str(where), "--port", "0", "--refresh", "0.5"),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = first_line(process)
        assert line.startswith(f"aid2e dashboard of {where}: http://127.0.0.1:"), line
        yield process, line.split(": ", 1)[1].split(" ")[0]
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=BOUND)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def counts(browser) -> dict[str, int]:
    """The counts the page shows, read in one script: the page redraws them every 0.5 s, and
    element by element a redraw in between would leave stale elements."""
    return browser.script("return Object.fromEntries([...document.querySelectorAll('#counts span')]"
                          ".map(s => [s.dataset.state, Number(s.querySelector('b').textContent)]))")


def test_the_dashboard_follows_a_running_campaign(browser, campaign, dashboard):
    controller, where, gates = campaign
    process, url = dashboard
    browser.open(url)
    browser.wait_for("body[data-drawn]")
    browser.wait_for(lambda b: counts(b).get("RUNNING") == 2)
    assert counts(browser)["COMPLETED"] == 0
    first_drawn = browser.script("return document.body.dataset.drawn")

    for index in (0, 1):
        (gates / str(index)).touch()
    browser.wait_for(lambda b: counts(b).get("COMPLETED") == 2)  # redrawn by itself: no reload
    assert browser.script("return document.body.dataset.drawn") != first_drawn
    for index in (2, 3):
        (gates / str(index)).touch()
    browser.wait_for(lambda b: counts(b).get("COMPLETED") == 4 and counts(b).get("RUNNING") == 0)
    assert controller.wait(timeout=BOUND) == 0
    browser.wait_for(lambda b: b.count("#trials tr.trial") == 4)
    for plot in ("trace-0", "parallel", "generation", "inflight"):
        assert browser.count(f"#{plot} svg.main-svg") >= 1, plot
    assert browser.console_errors() == []

    # it never held the campaign's lock: a controller takes it while the dashboard still serves
    resumed = subprocess.run(aid2e("resume", str(where), "--max-trials", "0"), capture_output=True, text=True,
                             timeout=BOUND)
    assert resumed.returncode == 0, resumed.stderr
    assert process.poll() is None

    # a job's output, as the trial table links it; nothing outside the campaign directory
    href = browser.script("return document.querySelector('#trials a').getAttribute('href')")
    assert href.startswith("files/") and href.endswith("stdout.txt")
    with urllib.request.urlopen(url + href, timeout=30) as answer:
        assert answer.read().decode().startswith("trial ")
    os.symlink("/etc/passwd", where / "trial_0" / "leak.txt")
    for path in ("files/trial_0/leak.txt", "files/../../../etc/passwd", "files/%2e%2e/live.yaml", "files/trial_0"):
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(url + path, timeout=30)
        assert refused.value.code == 404, path
    data = json.loads(urllib.request.urlopen(url + "data.json", timeout=30).read())
    assert data["counts"]["COMPLETED"] == 4 and len(data["trials"]) == 4

    process.send_signal(signal.SIGINT)  # Ctrl-C stops it cleanly
    assert process.wait(timeout=BOUND) == 0


def test_a_taken_port_is_one_line(tmp_path):
    where = tmp_path / "campaign"
    where.mkdir()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(aid2e("dashboard", str(where), "--port", str(port)), capture_output=True, text=True,
                              timeout=60)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == f"aid2e: error: port {port} on 127.0.0.1 is taken (another dashboard?): choose another " \
                          "with --port\n"


def test_a_directory_that_is_not_there_is_one_line(tmp_path):
    done = subprocess.run(aid2e("dashboard", str(tmp_path / "nope")), capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and done.stderr == (
        f"aid2e: error: {tmp_path / 'nope'} is not a campaign directory (give <job_output_dir>/<experiment name>/)\n")

