"""Tests of `kit.RunLock`: one run per output folder."""

import json
import os
import signal
import subprocess
import sys

import pytest

from a2d_tf.kit import lock as lock_lib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_HOLD = """
import sys, time
from a2d_tf.kit import lock
held = lock.RunLock(sys.argv[1]).acquire()
print("held", flush=True)
time.sleep(120)
"""


def _holder(directory):
  """A process holding the folder's lock (reads its 'held' line first)."""
  process = subprocess.Popen(
    [sys.executable, "-c", _HOLD, str(directory)],
    cwd=ROOT,
    env={**os.environ, "PYTHONPATH": ROOT},
    stdout=subprocess.PIPE,
    text=True,
  )
  assert process.stdout.readline().strip() == "held"
  return process


def test_second_lock_fails_at_once_naming_the_holders_pid(tmp_path):
  with lock_lib.RunLock(str(tmp_path)):
    with pytest.raises(lock_lib.RunLockedError) as error:
      lock_lib.RunLock(str(tmp_path)).acquire()
  message = str(error.value)
  assert f"pid {os.getpid()}" in message
  assert str(tmp_path) in message and "\n" not in message
  assert isinstance(error.value, OSError)


def test_lock_of_another_live_process_is_refused(tmp_path):
  process = _holder(tmp_path)
  try:
    with pytest.raises(lock_lib.RunLockedError, match=f"pid {process.pid} "):
      lock_lib.RunLock(str(tmp_path)).acquire()
  finally:
    process.kill()
    process.wait()


def test_lock_of_a_killed_process_is_taken_over_with_a_warning(tmp_path):
  process = _holder(tmp_path)
  process.send_signal(signal.SIGKILL)
  process.wait()
  warnings = []
  with lock_lib.RunLock(str(tmp_path), log=warnings.append) as held:
    with open(held.path) as f:
      assert json.load(f)["pid"] == os.getpid()
  assert len(warnings) == 1
  assert f"pid {process.pid} " in warnings[0]
  assert "no longer running" in warnings[0]


def test_released_lock_is_empty_and_taken_without_a_warning(tmp_path):
  with lock_lib.RunLock(str(tmp_path)) as held:
    path = held.path
  assert os.path.getsize(path) == 0
  warnings = []
  with lock_lib.RunLock(str(tmp_path), log=warnings.append):
    pass
  assert warnings == []
  assert path == os.path.join(str(tmp_path), lock_lib.LOCK_FILE)


def test_acquired_lock_used_as_context_is_kept_then_released(tmp_path):
  taken = lock_lib.RunLock(str(tmp_path)).acquire()
  with taken as held:
    assert held is taken
    with pytest.raises(lock_lib.RunLockedError):
      lock_lib.RunLock(str(tmp_path)).acquire()
  assert os.path.getsize(taken.path) == 0
  lock_lib.RunLock(str(tmp_path)).acquire().release()
