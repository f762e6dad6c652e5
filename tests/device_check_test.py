"""Tests of bench/device_check.py: the reduced CPU run and its arithmetic.

The script defines absl flags, which other modules of this test process
define too (`--preset`), so it only ever runs in a subprocess here.
"""

import json
import os
import subprocess
import sys
import textwrap

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SETTINGS = [
  f"{precision}/xla={xla}/det={det}"
  for precision in ("float32", "mixed_bfloat16", "mixed_float16")
  for xla in ("off", "on")
  for det in ("off", "on")
]


def _python(*args, timeout=900):
  env = dict(
    os.environ,
    TF_CPP_MIN_LOG_LEVEL="2",
    CUDA_VISIBLE_DEVICES="",
    PYTHONPATH=os.pathsep.join(
      p for p in (REPO, os.environ.get("PYTHONPATH")) if p
    ),
  )
  proc = subprocess.run(
    [sys.executable, *args],
    capture_output=True,
    text=True,
    env=env,
    cwd=REPO,
    timeout=timeout,
    check=False,
  )
  assert proc.returncode == 0, proc.stderr[-3000:]
  return proc.stdout.strip().splitlines()


def _errors(value, path=""):
  """Paths of every `error` entry in a nested result."""
  if isinstance(value, dict):
    found = [path] if "error" in value else []
    for key, item in value.items():
      found.extend(_errors(item, f"{path}/{key}"))
    return found
  return []


@pytest.fixture(name="reduced", scope="module")
def fixture_reduced():
  lines = _python(os.path.join(REPO, "bench", "device_check.py"))
  assert lines[-2].startswith("context ")
  return json.loads(lines[-1])


def test_reduced_run_reports_every_field_and_says_it_is_no_gpu_figure(
  reduced,
):
  assert {"device", "cudnn_in_graph", "examples_per_s", "xla_compiles"} <= set(
    reduced
  )
  assert reduced["mode"] == "reduced" and reduced["gpu"] is False
  assert reduced["device"].startswith("CPU")
  assert "not a GPU figure" in reduced["note"]
  assert _errors(reduced) == []
  # No GPU: the LSTMs run as while loops, and no mask assertion remains.
  assert reduced["cudnn_in_graph"] is False
  assert reduced["cudnn_graph"]["while_loops"] > 0
  assert reduced["cudnn_graph"]["assert_ops"] == 0
  for name in ("cudnn_vs_loop", "peak_memory"):
    assert reduced[name] == {"skipped": "no GPU"}
  assert reduced["pipeline_estimate"] == {"skipped": "reduced run"}


def test_reduced_run_measures_float16_xla_and_determinism_settings(reduced):
  speeds = reduced["examples_per_s"]
  assert sorted(speeds) == sorted(SETTINGS)
  measured = {k for k, v in speeds.items() if isinstance(v, float)}
  assert measured == {"mixed_float16/xla=on/det=off", "float32/xla=off/det=on"}
  assert all(speeds[k] > 0 for k in measured)
  for name in set(SETTINGS) - measured:
    assert speeds[name] == {"skipped": "reduced run"}
  compiles = reduced["xla_compiles"]
  assert compiles["setting"] == "mixed_float16/xla=on/det=off"
  assert 1 <= compiles["programs"] <= compiles["max_programs"]
  assert compiles["programs"] <= compiles["batches"]
  assert compiles["compile_s"] > 0
  (float16,) = reduced["float16"].values()
  assert float16["nonfinite_losses"] == 0 and float16["skipped_steps"] == 0
  assert float16["loss_scale"] > 0 and float16["steps"] > 0
  inference = reduced["inference"]
  assert inference["ensemble_size"] == 2
  assert inference["ensemble_s"] > 0 and inference["student_s"] > 0


def test_settings_pipeline_estimate_and_compile_count_arithmetic():
  script = textwrap.dedent(
    """
    import json
    from a2d_tf import config as config_lib
    from bench import device_check as d

    paper = config_lib.get_config("paper")
    estimate = d.pipeline_estimate(paper, 100.0, 400.0)
    full = d.make_plan(gpu=True)
    reduced = d.make_plan(gpu=False)
    try:
      d.make_plan(gpu=True, settings=("float64/xla=off/det=off",))
      bad = None
    except ValueError as e:
      bad = str(e)
    print(json.dumps({
      "estimate": estimate,
      "full": [full.preset, full.batch_size, full.compile_batches,
               full.ensemble_size, list(full.settings)],
      "reduced": [reduced.preset, list(reduced.settings)],
      "order": [d.setting_name(*s) for s in d.all_settings()],
      "compiles": d.compile_stats(
          [(8, 100, 16), (8, 100, 16), (8, 120, 16)],
          [5.0, 0.5, 4.0], [0.5, 0.5, 1.0]),
      "bad": bad,
    }))
    """
  )
  result = json.loads(_python("-c", script)[-1])
  estimate = result["estimate"]
  # 12 teachers and the student (A2D step 1.08 CE steps), 20 epochs each,
  # on the training questions less the 5% validation split (4,380).
  train = 12 * 20 * 83219 + 1.08 * 20 * 83219
  # Per-epoch validation passes, knowledge over train and validation,
  # evaluation (13 models on dev) and its 3 timed passes of 14 models.
  forward = 12 * 20 * 4380 + 12 * 87599 + 2 * 20 * 4380
  forward += 13 * 10570 + 3 * 14 * 10570
  assert estimate["train_examples"] == int(train)
  assert estimate["forward_examples"] == forward
  assert estimate["hours"] == pytest.approx(
    (train / 100 + forward / 400) / 3600
  )
  assert result["full"][:4] == ["paper", 32, 50, 12]
  assert sorted(result["full"][4]) == sorted(SETTINGS)
  assert result["reduced"][0] == "tiny"
  # Determinism is process-wide: every det=on setting comes last.
  order = result["order"]
  first_on = min(i for i, name in enumerate(order) if name.endswith("det=on"))
  assert all(name.endswith("det=off") for name in order[:first_on])
  assert all(name.endswith("det=on") for name in order[first_on:])
  # A new shape's first step minus the same batch's next step.
  assert result["compiles"] == {"programs": 2, "compile_s": 7.5}
  assert "Unknown settings ['float64/xla=off/det=off']" in result["bad"]
