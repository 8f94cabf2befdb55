"""One job whose files cannot be read fails alone: PsijRunner.poll and result never raise for it."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from aid2e.jobs import script as script_kind
from aid2e.jobs.script import script_job
from aid2e.types import JobRequest, JobState
from aid2e_psij import PsijRunner


@pytest.mark.timeout(120)
def test_a_job_whose_files_break_the_reader_fails_alone(tmp_path: Path, monkeypatch) -> None:
    script = tmp_path / "ok.py"
    script.write_text("import os, json\njson.dump({'objective': 1.0}, open(os.environ['AID2E_RESULT_FILE'], 'w'))\n")
    runner = PsijRunner(executor="local", config={"status_grace": 2, "work_directory": str(tmp_path / "psij")})
    runner.start()
    handles = [runner.submit(JobRequest(experiment="e", trial_index=i, parameters={}, job=script_job(script),
                                        workdir=str(tmp_path / f"trial_{i}"))) for i in range(2)]
    bad = handles[0].workdir
    real = script_kind.read_result

    def breaks_on_the_bad_one(workdir, **kwargs):
        if str(workdir) == bad:
            raise RecursionError("maximum recursion depth exceeded")
        return real(workdir, **kwargs)

    monkeypatch.setattr(script_kind, "read_result", breaks_on_the_bad_one)
    deadline = time.monotonic() + 60
    while True:
        states = runner.poll(handles)
        if all(state.is_final for state in states.values()):
            break
        assert time.monotonic() < deadline, states
        runner.wait(handles, 1.0)
    assert states == {handles[0].native_id: JobState.FAILED, handles[1].native_id: JobState.COMPLETED}
    failed = runner.result(handles[0])
    assert failed.state is JobState.FAILED and "maximum recursion depth" in failed.message
    assert runner.result(handles[1]).metrics["objective"].mean == 1.0
    runner.close()
