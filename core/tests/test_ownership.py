"""The campaign lock (aid2e.ownership): exclusive across processes and within one, released by
the kernel when its holder dies (never stale), readable without taking it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys

import pytest

from aid2e.ownership import LOCK_FILE, CampaignLock, CampaignLockedError, holder

HOLD = """
import sys
from aid2e.ownership import CampaignLock
lock = CampaignLock(sys.argv[1], "campaign-in-child")
lock.acquire()
print("held", flush=True)
sys.stdin.read()  # until the test closes stdin or kills this process
"""


def hold_in_child(directory):
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(directory)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_lock_held_by_another_process_is_refused_and_named(tmp_path):
    proc = hold_in_child(tmp_path)
    try:
        owner = holder(tmp_path)
        assert owner.pid == proc.pid and owner.host == socket.gethostname() and owner.campaign == "campaign-in-child"
        with pytest.raises(CampaignLockedError) as info:
            CampaignLock(tmp_path).acquire()
        assert f"run by another controller: pid {proc.pid} on {socket.gethostname()} since " in str(info.value)
        assert f"aid2e status {tmp_path}" in str(info.value)
    finally:
        proc.kill()
        proc.wait()


def test_a_killed_holder_leaves_no_stale_lock(tmp_path):
    proc = hold_in_child(tmp_path)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert (tmp_path / LOCK_FILE).exists()  # the file stays, its lock is gone with the process
    assert holder(tmp_path) is None
    with CampaignLock(tmp_path, "mine"):
        assert holder(tmp_path).pid == os.getpid()
    assert holder(tmp_path) is None


def test_two_locks_in_one_process_exclude_each_other(tmp_path):
    first = CampaignLock(tmp_path)
    first.acquire()
    try:
        with pytest.raises(CampaignLockedError, match=r"\(this process\)"):
            CampaignLock(tmp_path).acquire()
        # reading the lock file (a second descriptor, closed again) must not drop the lock
        (tmp_path / LOCK_FILE).read_bytes()
        assert holder(tmp_path) is not None
        proc = subprocess.run([sys.executable, "-c", "import sys; from aid2e.ownership import CampaignLock; "
                               "CampaignLock(sys.argv[1]).acquire()", str(tmp_path)], capture_output=True, text=True)
        assert proc.returncode == 1 and "CampaignLockedError" in proc.stderr
    finally:
        first.release()
    CampaignLock(tmp_path).acquire()


def test_a_damaged_or_foreign_lock_file_is_still_a_lock(tmp_path):
    (tmp_path / LOCK_FILE).write_text("[not json")
    assert holder(tmp_path) is None  # nobody holds it: its content does not matter
    proc = hold_in_child(tmp_path)
    try:
        os.truncate(tmp_path / LOCK_FILE, 0)  # the holder's description lost
        with pytest.raises(CampaignLockedError, match=r"pid \? on \?"):
            CampaignLock(tmp_path).acquire()
    finally:
        proc.kill()
        proc.wait()


def test_a_symlinked_lock_file_is_not_followed(tmp_path):
    target = tmp_path / "elsewhere"
    target.write_text("precious")
    campaign = tmp_path / "campaign"
    campaign.mkdir()
    (campaign / LOCK_FILE).symlink_to(target)
    with pytest.raises(Exception, match="cannot open the campaign lock"):
        CampaignLock(campaign).acquire()
    assert target.read_text() == "precious"
    assert holder(campaign) is None
