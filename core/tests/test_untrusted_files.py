"""Files a trial controls are read safely (aid2e.jobs.untrusted, through aid2e.jobs.script), and a
failing script's message leads with the meaningful line of its stderr (script.headline)."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest

from aid2e.jobs import script, untrusted
from aid2e.types import JobState

#: A host file's content that must never reach a message or a log.
SECRET = "host-secret-4711"
HOSTILE_FILES = (script.RESULT_FILE, script.STATUS_FILE, script.STDERR_FILE)


def _status(workdir: Path, **fields: object) -> None:
    (workdir / script.STATUS_FILE).write_text(json.dumps({"pid": 1, "started_at": 0.0, **fields}))


def _trial(tmp_path: Path) -> Path:
    workdir = tmp_path / "trial_0"
    workdir.mkdir()
    _status(workdir, exit_code=0)
    (workdir / script.RESULT_FILE).write_text('{"objective": 1.0}')
    (workdir / script.STDERR_FILE).write_text("a warning\n")
    return workdir


def _replace(path: Path, how: str, tmp_path: Path) -> None:
    """Put something hostile at ``path``, as a trial can."""
    path.unlink(missing_ok=True)
    if how == "fifo":
        os.mkfifo(path)
    elif how == "dev-zero":
        path.symlink_to("/dev/zero")
    elif how == "host-file":
        secret = tmp_path / "outside" / "secret.json"
        secret.parent.mkdir(exist_ok=True)
        secret.write_text(json.dumps({"objective": 2.0, "note": SECRET}))
        path.symlink_to(secret)
    elif how == "directory":
        path.mkdir()
    elif how == "dangling":
        path.symlink_to(tmp_path / "nowhere")
    else:
        raise AssertionError(how)


@pytest.mark.timeout(20)
@pytest.mark.parametrize("how", ["fifo", "dev-zero", "host-file", "directory", "dangling"])
@pytest.mark.parametrize("name", HOSTILE_FILES)
def test_hostile_file_fails_the_trial_without_blocking_or_leaking(tmp_path: Path, name: str, how: str,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    workdir = _trial(tmp_path)
    _replace(workdir / name, how, tmp_path)
    caplog.set_level(logging.DEBUG)
    result = script.read_result(workdir)
    assert SECRET not in result.message and SECRET not in caplog.text
    assert "outside" not in result.message, "a symlink's target must not be shown"
    if name == script.STDERR_FILE:  # stderr is only shown, the job itself completed
        assert result.state is JobState.COMPLETED
        assert script.tail(workdir / name).endswith("aid2e reads only regular files in the trial directory]")
        return
    assert result.state is JobState.FAILED and not result.metrics
    assert not result.retryable, "a trial that sabotaged its own files must not run again"
    assert name in result.message and "\n" not in result.message
    assert "regular files" in result.message


@pytest.mark.timeout(20)
def test_fifo_stderr_of_a_failed_script_is_named_not_read(tmp_path: Path) -> None:
    workdir = _trial(tmp_path)
    _status(workdir, exit_code=2)
    _replace(workdir / script.STDERR_FILE, "fifo", tmp_path)
    result = script.read_result(workdir)
    assert result.state is JobState.FAILED and result.exit_code == 2
    assert "stderr.txt is a FIFO: aid2e reads only regular files in the trial directory" in result.message


@pytest.mark.timeout(20)
def test_status_fifo_is_no_status_for_pollers(tmp_path: Path) -> None:
    workdir = _trial(tmp_path)
    _replace(workdir / script.STATUS_FILE, "fifo", tmp_path)
    assert script.read_status(workdir) is None


def test_symlinked_trial_directory_is_not_followed(tmp_path: Path) -> None:
    real = _trial(tmp_path)
    (tmp_path / "alias").symlink_to(real)
    result = script.read_result(tmp_path / "alias")
    assert result.state is JobState.FAILED and "not a directory" in result.message


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
        ('{"objective": {"mean": ' + "[" * 5000 + "]" * 5000 + "}}", "nested too deeply"),
        ('{"objective": 1' + "0" * 400 + "}", "too large"),
        ('{"objective": 1' + "0" * 5000 + "}", "digits"),
        ('{"objective": -1e999}', "finite"),
        ('"just a string"', "dict"),
        ("null", "dict"),
    ],
    ids=["deep-json", "deep-value", "400-digits", "5000-digits", "minus-inf", "string", "null"],
)
def test_odd_json_result_fails_with_one_line(tmp_path: Path, text: str, needle: str) -> None:
    workdir = _trial(tmp_path)
    (workdir / script.RESULT_FILE).write_text(text)
    result = script.read_result(workdir)
    assert result.state is JobState.FAILED and not result.metrics
    assert needle in result.message and "\n" not in result.message
    assert len(result.message) < 500


@pytest.mark.parametrize(
    "status",
    ["[" * 100_000 + "]" * 100_000, "[1, 2]", '{"exit_code": "0"}', '{"exit_code": 1' + "0" * 400 + "}",
     '{"exit_code": true}', '{"signal": 9}', "{not json"],
    ids=["deep", "list", "code-text", "code-huge", "code-bool", "signal-int", "invalid"],
)
def test_odd_status_fails_the_trial_and_reads_as_none(tmp_path: Path, status: str) -> None:
    workdir = _trial(tmp_path)
    (workdir / script.STATUS_FILE).write_text(status)
    assert script.read_status(workdir) is None
    result = script.read_result(workdir)
    assert result.state is JobState.FAILED and not result.retryable
    assert script.STATUS_FILE in result.message and "\n" not in result.message


def test_oversized_result_is_refused_unread(tmp_path: Path) -> None:
    workdir = _trial(tmp_path)
    (workdir / script.RESULT_FILE).write_text('{"objective": 1.0, "pad": "' + "x" * script.RESULT_LIMIT + '"}')
    result = script.read_result(workdir)
    assert result.state is JobState.FAILED and "larger than" in result.message


def test_tail_reads_only_the_end_of_a_huge_log(tmp_path: Path) -> None:
    path = tmp_path / "stderr.txt"
    with open(path, "wb") as handle:
        handle.truncate(1 << 30)  # a sparse 1 GiB file
        handle.seek(0, os.SEEK_END)
        handle.write(b"\nthe end\n")
    assert script.tail(path, 100).endswith("the end")


def test_reader_refuses_what_is_not_a_regular_file(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(untrusted.UntrustedFileError, match="pipe is a FIFO"):
        untrusted.read_text(tmp_path / "pipe")
    with pytest.raises(FileNotFoundError):
        untrusted.read_text(tmp_path / "missing")
    with pytest.raises(ValueError, match="nested too deeply"):
        untrusted.parse_json("{" + '"a":{' * 50_000)


# ------------------------------------------------------------------ headline
TRACEBACK = """Traceback (most recent call last):
  File "/work/objective.py", line 12, in <module>
    main()
  File "/work/objective.py", line 9, in main
    raise ValueError("bad geometry")
ValueError: bad geometry
"""

CHAINED = """Traceback (most recent call last):
  File "x.py", line 2, in <module>
    {}["k"]
    ~~^^^^^
KeyError: 'k'

During handling of the above exception, another exception occurred:

Traceback (most recent call last):
  File "x.py", line 4, in <module>
    raise RuntimeError("no key")
RuntimeError: no key
"""


@pytest.mark.parametrize(
    ("tail", "expected"),
    [
        (TRACEBACK, "ValueError: bad geometry"),
        (TRACEBACK + "\n\n   \n", "ValueError: bad geometry"),
        (CHAINED, "RuntimeError: no key"),
        ("warming up\n" + TRACEBACK.replace("ValueError: bad geometry", "ValueError: two\nlines"), "ValueError: two"),
        (TRACEBACK[40:], "ValueError: bad geometry"),  # the tail began inside the traceback
        ("step 1 ok\n./run.sh: line 3: geant: command not found\n\n", "./run.sh: line 3: geant: command not found"),
        ("Segmentation fault (core dumped)", "Segmentation fault (core dumped)"),
        ("", ""),
        ("\n  \n", ""),
    ],
    ids=["traceback", "trailing-blank", "chained", "multi-line-message", "cut-traceback", "shell", "one-line",
         "empty", "blank"],
)
def test_headline_is_the_meaningful_line(tail: str, expected: str) -> None:
    assert script.headline(tail) == expected


def test_failed_python_script_message_leads_with_its_exception(tmp_path: Path) -> None:
    workdir = _trial(tmp_path)
    _status(workdir, exit_code=1)
    (workdir / script.STDERR_FILE).write_text(TRACEBACK)
    result = script.read_result(workdir)
    first, second, *tail = result.message.splitlines()
    assert first == "script exited with code 1: ValueError: bad geometry"     # one line says what happened
    assert second == "stderr (its end):" and tail[0] == "Traceback (most recent call last):"
    assert 'File "/work/objective.py", line 9' in result.message, "the tail still follows"


def test_one_line_stderr_is_not_repeated(tmp_path: Path) -> None:
    workdir = _trial(tmp_path)
    _status(workdir, exit_code=3)
    (workdir / script.STDERR_FILE).write_text("boom\n")
    assert script.read_result(workdir).message == "script exited with code 3 (stderr: boom)"
