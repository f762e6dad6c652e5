"""How much of the ensemble's gain the student keeps, on real SQuAD v1.1.

  python -m bench.fidelity                      # the real-data recipe
  python -m bench.fidelity --override=distill.temperature=3 \\
      --output_dir=/tmp/a2d_fidelity_t3

Runs the whole pipeline (cached by fingerprint under `--output_dir`, so a
variant that changes only the student re-trains only the student) on the
first `--max_train_examples` questions of SQuAD v1.1 train from
`--data_dir` (default `../shared/data/squad/` beside the repository),
evaluated on the full official dev set and on the AddSent-style
adversarial split generated from it (`data.adversarial_questions`). Prints
the report and, as its last line, one JSON object: per system EM/F1 on
dev and on the adversarial split, `gain_kept` = (student - mean single) /
(ensemble - mean single) on dev F1, the paired bootstrap intervals of
student - single mean and student - ensemble, the knowledge diagnostics
of the training split and dev, and the wall time. Where the data files are
absent it says so and prints `{"skipped": ...}` (exit 0).
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time

from absl import app, flags

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from a2d_tf.config import PRESETS  # noqa: E402

RECIPE = "squad_cpu"
FILES = ("train-v1.1.json", "dev-v1.1.json")

_DATA_DIR = flags.DEFINE_string(
  "data_dir",
  os.path.join(ROOT, "..", "shared", "data", "squad"),
  "Directory holding train-v1.1.json and dev-v1.1.json.",
)
_PRESET = flags.DEFINE_enum(
  "preset",
  RECIPE if RECIPE in PRESETS else "small",
  list(PRESETS),
  "Config preset (default: the real-data CPU recipe).",
)
_NUM_TEACHERS = flags.DEFINE_integer(
  "num_teachers", None, "K (default: the preset's).", lower_bound=1
)
_MAX_TRAIN = flags.DEFINE_integer(
  "max_train_examples",
  12000,
  "Train on the first N SQuAD train questions (0 = all).",
  lower_bound=0,
)
_OVERRIDE = flags.DEFINE_multi_string(
  "override", [], "Config override section.field=value; repeatable."
)
_OUTPUT_DIR = flags.DEFINE_string(
  "output_dir", "/tmp/a2d_bench_fidelity", "Artifact root."
)
_TIMING_REPEATS = flags.DEFINE_integer(
  "timing_repeats", 1, "Timed passes over dev (0 skips).", lower_bound=0
)


def _commit() -> str:
  try:
    return subprocess.run(
      ["git", "rev-parse", "--short", "HEAD"],
      cwd=ROOT,
      capture_output=True,
      text=True,
      check=True,
    ).stdout.strip()
  except (OSError, subprocess.CalledProcessError):
    return "unknown"


def main(argv):
  del argv
  data_dir = os.path.abspath(_DATA_DIR.value)
  paths = {name: os.path.join(data_dir, name) for name in FILES}
  missing = [p for p in paths.values() if not os.path.isfile(p)]
  if missing:
    reason = f"no SQuAD v1.1 files at {data_dir} (missing: {missing})"
    print(f"fidelity: skipped: {reason}", flush=True)
    print(json.dumps({"skipped": reason}))
    return 0

  from a2d_tf import config as config_lib
  from a2d_tf import kit, report
  from a2d_tf.data import sources
  from pipelines import pipeline

  overrides = list(_OVERRIDE.value)
  if _NUM_TEACHERS.value is not None:
    overrides.append(f"teacher.num_teachers={_NUM_TEACHERS.value}")
  config = config_lib.check(config_lib.get_config(_PRESET.value, overrides))
  data_files = {"train": paths[FILES[0]], "dev": paths[FILES[1]]}
  began = time.monotonic()
  results = kit.LocalDagRunner(_OUTPUT_DIR.value, log=print).run(
    pipeline.create_pipeline(
      config,
      dataset="json",
      train_file=data_files["train"],
      dev_file=data_files["dev"],
      input_digest=sources.files_digest(data_files),
      max_train_examples=_MAX_TRAIN.value,
      timing_repeats=_TIMING_REPEATS.value,
      with_export=False,
    )
  )
  wall_s = time.monotonic() - began
  with open(results["evaluate"]["evaluation"].path("report.json")) as f:
    result = json.load(f)
  print(report.render_markdown(result), flush=True)
  figures = report.summary(result)
  print(
    json.dumps(
      {
        "preset": _PRESET.value,
        "overrides": overrides,
        "max_train_examples": _MAX_TRAIN.value,
        "k": config.teacher.num_teachers,
        "commit": _commit(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "date": time.strftime("%Y-%m-%d"),
        "wall_s": round(wall_s, 1),
        "gain_kept": figures["sets"]["dev"].get("gain_kept"),
        **figures,
      },
      sort_keys=True,
    )
  )
  return 0


if __name__ == "__main__":
  app.run(main)
