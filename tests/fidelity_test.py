"""Tests of bench/fidelity.py: the skip path, and one tiny real run."""

import json
import os
import subprocess
import sys

import pytest

from a2d_tf.data import squad, synthetic

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(*args, timeout=900):
  return subprocess.run(
    [sys.executable, "-m", "bench.fidelity", *args],
    cwd=ROOT,
    capture_output=True,
    text=True,
    timeout=timeout,
  )


def test_absent_data_is_a_clear_skip(tmp_path):
  result = _run(f"--data_dir={tmp_path / 'none'}")
  assert result.returncode == 0, result.stderr[-2000:]
  assert "fidelity: skipped: no SQuAD v1.1 files" in result.stdout
  last = json.loads(result.stdout.strip().splitlines()[-1])
  assert "train-v1.1.json" in last["skipped"]


@pytest.mark.slow
def test_tiny_run_prints_every_figure(tmp_path):
  corpus = synthetic.generate_corpus(24, 6, seed=5)
  data = tmp_path / "squad"
  data.mkdir()
  squad.write_squad_json(corpus["train"], str(data / "train-v1.1.json"))
  squad.write_squad_json(corpus["dev"], str(data / "dev-v1.1.json"))
  result = _run(
    f"--data_dir={data}",
    "--preset=tiny",
    "--num_teachers=2",
    "--max_train_examples=0",
    f"--output_dir={tmp_path / 'out'}",
    "--override=train.epochs=1",
    "--override=distill.epochs=1",
    "--override=train.batch_size=128",
    "--override=data.adversarial_questions=10",
    # One aligning and one pointer hop: half the graph per model.
    "--override=model.aligner_hops=1",
    "--override=model.pointer_hops=1",
    "--override=runtime.run_eagerly=true",
    "--timing_repeats=0",
  )
  assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
  figures = json.loads(result.stdout.strip().splitlines()[-1])
  assert set(figures["sets"]) == {"dev", "adversarial"}
  for name in ("dev", "adversarial"):
    entry = figures["sets"][name]
    for system in ("single", "ensemble", "student"):
      assert 0.0 <= entry[system]["f1"] <= 100.0
    for comparison in ("student_minus_single", "student_minus_ensemble"):
      low, high = entry["intervals"][comparison]["f1"]
      assert low <= high
  assert figures["gain_kept"] == figures["sets"]["dev"]["gain_kept"]
  assert set(figures["knowledge_diagnostics"]) == {"train", "dev"}
  assert figures["wall_s"] > 0 and figures["k"] == 2
