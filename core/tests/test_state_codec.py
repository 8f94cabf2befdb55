"""The state codec: records encoded once and spliced into a state file read back exactly as the
document built in one piece, and one rule for a saved record (status and resume agree)."""

from __future__ import annotations

import json
from pathlib import Path

import attrs
import pytest

from aid2e import state
from aid2e.state_records import RecordEncoder, record_from_json, record_to_json, scheduler_json
from aid2e.trials import TrialRecord
from aid2e.types import JobHandle, Measurement

AWKWARD = 'quote " backslash \\ newline \n tab \t unicode é ☃ nul \x00 brace } bracket ]'


def records(home: Path) -> list[TrialRecord]:
    handle = JobHandle(backend="joblib", native_id="7", workdir=str(home / "trial_1"), submitted_at=1.5,
                       extra={"token": "t", "note": AWKWARD})
    return [
        TrialRecord(index=0, parameters={"x": 0.25, "name": AWKWARD}, status="COMPLETED",
                    metrics={"loss": Measurement(mean=1.0, sem=0.5)}, ended_at=3.0, token="a"),
        TrialRecord(index=1, parameters={"x": 1e-300}, handle=handle, message=AWKWARD, attempts=2, token="b"),
    ]


def test_spliced_state_file_equals_the_document_built_in_one_piece(tmp_path):
    home = tmp_path / "campaign"
    encoder = RecordEncoder()
    head = {"config": {"job_output_dir": AWKWARD}, "campaign": {"id": "c", "dir": str(home)}}
    recs = records(home)
    for _ in range(2):  # the second time, the finished record's text comes from the cache
        text = state.document_text(scheduler_json(head, encoder.encode(recs, home)), 12.5, {"snapshot": [AWKWARD]})
        expected = {"format": state.STATE_FORMAT, "version": state.STATE_VERSION, "saved_at": 12.5,
                    "scheduler": {**head, "trials": [record_to_json(r, home) for r in recs]},
                    "ax": {"snapshot": [AWKWARD]}}
        assert json.loads(text) == expected
    assert json.loads(text)["scheduler"]["trials"][1]["handle"]["workdir"] == "trial_1"  # relative to home


def test_a_changed_running_record_is_encoded_again(tmp_path):
    encoder = RecordEncoder()
    recs = records(tmp_path)
    encoder.encode(recs, tmp_path)
    recs[1].message = "changed"
    assert json.loads(encoder.encode(recs, tmp_path))[1]["message"] == "changed"


def test_records_round_trip_and_move_with_their_campaign(tmp_path):
    old, new = tmp_path / "old", tmp_path / "new"
    for record in records(old):
        back = record_from_json(json.loads(json.dumps(record_to_json(record, old))), new, str(old))
        expected_handle = None if record.handle is None else attrs.evolve(record.handle, workdir=str(new / "trial_1"))
        assert back.parameters == record.parameters and back.metrics == record.metrics
        assert back.handle == expected_handle


@pytest.mark.parametrize("record, message", [
    ([1], "expected an object"),
    ({"index": True, "parameters": {}}, "'index' must be an integer"),
    ({"index": 0}, "'parameters' must be an object"),
    ({"index": 0, "parameters": {}, "status": "DONE"}, "unknown 'status' 'DONE'"),
    ({"index": 0, "parameters": {}, "handle": "h"}, "'handle' must be an object"),
    ({"index": 0, "parameters": {}, "colour": "red"}, "unknown key(s) 'colour'"),
])
def test_one_rule_for_a_saved_record(tmp_path, record, message):
    with pytest.raises((TypeError, ValueError), match=None) as status_error:
        state.check_record(record)
    assert message in str(status_error.value)
    with pytest.raises((TypeError, ValueError)) as resume_error:
        record_from_json(record, tmp_path)
    assert str(resume_error.value) == str(status_error.value)
