"""Fault injection: a run killed again and again ends where a clean one does.

One slow test runs the tiny pipeline once without interruption and, at the
same time, once more into another folder, killed with SIGKILL (the whole
process group, as a preempted container: the infra check's child process
dies too) at `NUM_KILLS` points and re-run after each until it finishes.
The kill points are drawn with a fixed seed: a step, from every step that
does work, and a delay after that step's start line. Afterwards every file
of the two output folders has the same content digest
(`kit.digest.tree_digests`: weights, records and reports compared value by
value, timings left out), no work folder is left, and each kill point is
listed in the failure message.
"""

import os
import random
import signal
import subprocess
import sys
import time

import pytest
from local_runner_test import ROOT, SMALL_RUN, _env

from a2d_tf.kit import digest

SEED = 13
NUM_KILLS = 3
# Steps a kill can hit, with the longest delay after their start line
# (seconds): within the step on this machine's tiny run.
KILLABLE = {
  "transform": 0.5,
  "train_teacher_0": 8.0,
  "train_teacher_1": 8.0,
  "distill_knowledge_train": 2.0,
  "train_student": 10.0,
  "evaluate": 2.0,
  "export": 4.0,
  "validate_model": 4.0,
}
# The local runner's tiny run, with two epochs of a few batches each (a kill
# can land between two of them) and no timing (left out of the digests).
_REPLACED = ("--override=train.epochs", "--override=train.batch_size")
ARGS = [
  *(a for a in SMALL_RUN if not a.startswith((*_REPLACED, "--timing_repeats"))),
  "--override=train.epochs=2",
  "--override=train.batch_size=32",
  "--timing_repeats=0",
]


def _start(out, log_path):
  with open(log_path, "w") as log:
    return subprocess.Popen(
      [sys.executable, "-m", "pipelines.local_runner", f"--output_dir={out}"]
      + ARGS,
      cwd=ROOT,
      env=_env(),
      stdout=log,
      stderr=subprocess.STDOUT,
      start_new_session=True,
    )


def _run_killed_at(out, log_path, step, delay, timeout=900):
  """Runs until `step` has run `delay` seconds, then kills the group.

  Returns:
    "killed", or "finished" when the run ended first (the step was cached
    or took less than `delay`).
  """
  process = _start(out, log_path)
  deadline = time.monotonic() + timeout
  started = None
  try:
    while time.monotonic() < deadline:
      if process.poll() is not None:
        assert process.returncode == 0, log_path.read_text()[-3000:]
        return "finished"
      if started is None and f"] {step}: start (" in log_path.read_text():
        started = time.monotonic()
      if started is not None and time.monotonic() - started >= delay:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=60)
        return "killed"
      time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {step}")
  finally:
    if process.poll() is None:
      os.killpg(process.pid, signal.SIGKILL)
      process.wait(timeout=60)


def _kill_points():
  rng = random.Random(SEED)
  # Pipeline order: each kill lands at or after the previous one's step.
  order = list(KILLABLE)
  steps = sorted(rng.sample(order, NUM_KILLS), key=order.index)
  return [(s, round(rng.uniform(0.0, KILLABLE[s]), 2)) for s in steps]


@pytest.mark.slow
def test_run_killed_at_seeded_points_matches_a_clean_run(tmp_path):
  # The clean run goes alongside the killed ones: two processes keep both
  # cores busy where one alone leaves them idle between its steps.
  clean = tmp_path / "clean"
  clean_log = tmp_path / "clean.log"
  clean_run = _start(clean, clean_log)
  killed = tmp_path / "killed"
  outcomes = []
  try:
    for index, (step, delay) in enumerate(_kill_points()):
      log = tmp_path / f"kill{index}.log"
      outcomes.append((step, delay, _run_killed_at(killed, log, step, delay)))
    assert any(o == "killed" for *_, o in outcomes), outcomes
    final = tmp_path / "final.log"
    assert _run_killed_at(killed, final, "never", 0) == "finished"
    assert clean_run.wait(timeout=900) == 0, clean_log.read_text()[-3000:]
  finally:
    if clean_run.poll() is None:
      os.killpg(clean_run.pid, signal.SIGKILL)
      clean_run.wait(timeout=60)

  want = digest.tree_digests(str(clean))
  got = digest.tree_digests(str(killed))
  assert sorted(got) == sorted(want), (outcomes, set(got) ^ set(want))
  differing = sorted(p for p in want if got[p] != want[p])
  assert not differing, (outcomes, differing)
  assert not [p for p in got if "/.work-" in p or "beam-temp" in p]
