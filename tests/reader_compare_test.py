"""Tests of bench/reader_compare.py: a tiny run, variants, absent data."""

import json
import os
import subprocess
import sys

# The script runs in a subprocess: importing it here would define its absl
# flags in this process, beside the pipelines' flags of the same names.
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(*args, timeout=600):
  env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
  proc = subprocess.run(
    [sys.executable, "-m", "bench.reader_compare", *args],
    cwd=ROOT,
    env=env,
    capture_output=True,
    text=True,
    timeout=timeout,
  )
  return proc


def test_absent_data_file_skips_with_a_message(tmp_path):
  missing = str(tmp_path / "train-v1.1.json")
  proc = _run(
    "--dataset=json", f"--train_file={missing}", f"--dev_file={missing}"
  )
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert f"skipped: data file absent: --train_file={missing}" in proc.stdout
  proc = _run("--dataset=json")
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert "skipped" in proc.stdout and "--train_file" in proc.stdout


def test_tiny_run_prints_context_runs_and_per_variant_scores(tmp_path):
  proc = _run(
    "--preset=tiny",
    "--seeds=1",
    "--variants=memory,rmr+qem",
    "--override=data.synthetic_train_size=3",
    "--override=data.synthetic_dev_size=1",
    "--override=train.epochs=1",
    "--run_eagerly",
    f"--output_dir={tmp_path}",
  )
  assert proc.returncode == 0, proc.stderr[-3000:]
  lines = proc.stdout.strip().splitlines()
  context = json.loads(
    next(line for line in lines if line.startswith("context "))[8:]
  )
  assert context["preset"] == "tiny" and context["seeds"] == [1]
  runs = [json.loads(line[4:]) for line in lines if line.startswith("run ")]
  assert [(r["variant"], r["seed"]) for r in runs] == [
    ("memory", 1),
    ("rmr+qem", 1),
  ]
  result = json.loads(lines[-1])
  assert set(result["variants"]) == {"memory", "rmr+qem"}
  for name, scores in result["variants"].items():
    assert len(scores["f1"]) == 1 and 0 <= scores["f1"][0] <= 100, name
    assert scores["f1_mean"] == scores["f1"][0]
    assert scores["f1_std"] == 0.0
    assert scores["seeds"] == [1]
  # The IJCAI pointer has one SFU and two scorers instead of 2 hops' worth.
  assert (
    result["variants"]["rmr+qem"]["trainable_params"]
    < result["variants"]["memory"]["trainable_params"]
  )
  assert os.path.exists(tmp_path / "memory" / "seed_1" / "model.keras")


def test_bad_variant_is_a_usage_error():
  proc = _run("--variants=memory,ptr")
  assert proc.returncode != 0
  assert "Bad variant 'ptr'" in proc.stderr
  proc = _run("--variants=rmr+pos")
  assert proc.returncode != 0
  assert "unknown modifier(s) ['pos']" in proc.stderr


_RUNTIME_CHECK = """
from a2d_tf import config as config_lib
from bench import reader_compare

config = config_lib.get_config("small")
# Without --run_eagerly the config's own setting stays, and it validates.
kept = reader_compare.with_run_eagerly(config, None)
assert kept.runtime.run_eagerly is config.runtime.run_eagerly is False
config_lib.check(kept)
assert reader_compare.with_run_eagerly(config, True).runtime.run_eagerly
print("ok")
"""


def test_run_eagerly_flag_unset_keeps_the_configs_runtime():
  proc = subprocess.run(
    [sys.executable, "-c", _RUNTIME_CHECK],
    cwd=ROOT,
    env={**os.environ, "PYTHONPATH": ROOT, "TF_CPP_MIN_LOG_LEVEL": "2"},
    capture_output=True,
    text=True,
    timeout=300,
  )
  assert proc.returncode == 0 and "ok" in proc.stdout, proc.stderr[-2000:]
