"""Single teacher vs K-teacher ensemble vs A2D student, one table.

  python -m bench.distillation --preset=small --num_teachers=3
  python -m bench.distillation --preset=tiny --num_teachers=2 \\
      --output_dir=/tmp/a2d_bench_tiny

Runs the whole pipeline (cached by fingerprint under `--output_dir`, so a
second call only re-prints) on the embedded synthetic corpus and prints the
EM/F1 of the three systems on dev and on the adversarial split, the
parameter counts and the ensemble/student inference times, measured in this
run. The last line is one JSON object with every figure.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time

from absl import app, flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from a2d_tf.config import PRESETS  # noqa: E402

_PRESET = flags.DEFINE_enum("preset", "small", list(PRESETS), "Config preset.")
_NUM_TEACHERS = flags.DEFINE_integer("num_teachers", 3, "K.", lower_bound=1)
_OVERRIDE = flags.DEFINE_multi_string(
  "override", [], "Config override section.field=value; repeatable."
)
_OUTPUT_DIR = flags.DEFINE_string(
  "output_dir", "/tmp/a2d_bench_distillation", "Artifact root."
)
_TIMING_REPEATS = flags.DEFINE_integer("timing_repeats", 3, "Timed passes.")


def main(argv):
  del argv
  from a2d_tf import config as config_lib
  from a2d_tf import kit, report
  from pipelines import pipeline

  config = config_lib.check(
    config_lib.get_config(
      _PRESET.value,
      [*_OVERRIDE.value, f"teacher.num_teachers={_NUM_TEACHERS.value}"],
    )
  )
  began = time.monotonic()
  results = kit.LocalDagRunner(_OUTPUT_DIR.value, log=print).run(
    pipeline.create_pipeline(config, timing_repeats=_TIMING_REPEATS.value)
  )
  with open(results["evaluate"]["evaluation"].path("report.json")) as f:
    result = json.load(f)
  print(report.render_markdown(result))
  summary = {
    "preset": _PRESET.value,
    "k": _NUM_TEACHERS.value,
    "machine": f"{platform.machine()}, {os.cpu_count()} cores",
    "date": time.strftime("%Y-%m-%d"),
    "wall_s": round(time.monotonic() - began, 1),
    **report.summary(result),
  }
  print(json.dumps(summary, sort_keys=True))


if __name__ == "__main__":
  app.run(main)
