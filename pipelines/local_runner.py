"""Runs the a2d pipeline on this machine.

  python -m pipelines.local_runner                      # embedded corpus
  python -m pipelines.local_runner --dataset=json \\
      --train_file=train-v1.1.json --dev_file=dev-v1.1.json \\
      --eval_file=addsent=sample1k-HCVerifyAll.json --preset=small

Each component's output is cached under `<output_dir>/artifacts/` by a
fingerprint of its code, parameters and inputs: a re-run skips finished
steps, and a killed run resumes (teacher training from its last epoch).
The resolved config goes to `<output_dir>/config.json`, TensorBoard logs to
`<output_dir>/tensorboard/`, the report to `<output_dir>/report.{json,md}`.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import time

from absl import app, flags
from absl import logging as absl_logging

_OUTPUT_DIR = flags.DEFINE_string(
  "output_dir", "a2d_output", "Where artifacts, logs and the report go."
)
_DATASET = flags.DEFINE_enum(
  "dataset",
  "synthetic",
  ["synthetic", "tfds", "json"],
  "synthetic: the embedded corpus; tfds: TFDS squad/v1.1; json: "
  "--train_file and --dev_file in SQuAD v1.1 format.",
)
_TRAIN_FILE = flags.DEFINE_string("train_file", "", "SQuAD-format train file.")
_DEV_FILE = flags.DEFINE_string("dev_file", "", "SQuAD-format dev file.")
_EVAL_FILE = flags.DEFINE_multi_string(
  "eval_file",
  [],
  "Extra evaluation set as NAME=PATH (SQuAD format, e.g. AddSent); repeatable.",
)
_GLOVE_FILE = flags.DEFINE_string(
  "glove_file", "", "Optional GloVe-format word vectors (frozen when given)."
)
_PRESET = flags.DEFINE_enum(
  "preset", "small", ["tiny", "small", "paper"], "Config preset."
)
_OVERRIDE = flags.DEFINE_multi_string(
  "override", [], "Config override section.field=value; repeatable."
)
_NUM_TEACHERS = flags.DEFINE_integer(
  "num_teachers",
  None,
  "Ensemble size K (default: the preset's).",
  lower_bound=1,
)
_MAX_TRAIN = flags.DEFINE_integer(
  "max_train_examples",
  0,
  "Use the first N training questions (0 = all).",
  lower_bound=0,
)
_MAX_DEV = flags.DEFINE_integer(
  "max_dev_examples",
  0,
  "Use the first N dev questions (0 = all).",
  lower_bound=0,
)
_BEAM_ARG = flags.DEFINE_multi_string(
  "beam_arg",
  [],
  "Beam pipeline option for the knowledge step, e.g. "
  "--beam_arg=--runner=DataflowRunner; repeatable.",
)
_TIMING_REPEATS = flags.DEFINE_integer(
  "timing_repeats",
  3,
  "Passes over dev when timing ensemble vs student.",
  lower_bound=1,
)


def _log(line: str) -> None:
  print(f"[a2d {time.strftime('%H:%M:%S')}] {line}", flush=True)


def run(argv_extra: list[str]) -> int:
  """Works out paths and config, builds the pipeline and runs it."""
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  logging.getLogger().setLevel(logging.WARNING)
  absl_logging.set_verbosity(absl_logging.WARNING)
  # Flags and files are checked before TensorFlow and Beam are imported.
  from a2d_tf import config as config_lib
  from a2d_tf.data import sources

  if argv_extra:
    raise ValueError(f"unexpected arguments: {' '.join(argv_extra)}")
  overrides = list(_OVERRIDE.value)
  if _NUM_TEACHERS.value is not None:
    overrides.append(f"teacher.num_teachers={_NUM_TEACHERS.value}")
  config = config_lib.get_config(_PRESET.value, overrides)
  eval_files = sources.parse_eval_files(_EVAL_FILE.value)
  data_files = {
    "train": _TRAIN_FILE.value,
    "dev": _DEV_FILE.value,
    **eval_files,
  }
  if _DATASET.value == "json" and not (_TRAIN_FILE.value and _DEV_FILE.value):
    raise ValueError("--dataset=json needs --train_file and --dev_file.")
  sources.check_files(data_files)
  if _GLOVE_FILE.value:
    sources.check_files({"glove": _GLOVE_FILE.value})

  from a2d_tf import kit
  from pipelines import pipeline

  output_dir = os.path.abspath(_OUTPUT_DIR.value)
  os.makedirs(output_dir, exist_ok=True)
  with open(os.path.join(output_dir, "config.json"), "w") as f:
    f.write(config.to_json() + "\n")
  _log(
    f"output: {output_dir} (preset {_PRESET.value}, dataset "
    f"{_DATASET.value}, K={config.teacher.num_teachers})"
  )
  pipe = pipeline.create_pipeline(
    config,
    dataset=_DATASET.value,
    train_file=_TRAIN_FILE.value,
    dev_file=_DEV_FILE.value,
    eval_files=eval_files,
    glove_file=_GLOVE_FILE.value,
    input_digest=sources.files_digest(data_files),
    glove_digest=sources.files_digest({"glove": _GLOVE_FILE.value}),
    max_train_examples=_MAX_TRAIN.value,
    max_dev_examples=_MAX_DEV.value,
    tensorboard_root=os.path.join(output_dir, "tensorboard"),
    beam_pipeline_args=list(_BEAM_ARG.value),
    timing_repeats=_TIMING_REPEATS.value,
  )
  began = time.monotonic()
  runner = kit.LocalDagRunner(os.path.join(output_dir, "artifacts"), log=_log)
  results = runner.run(pipe)
  evaluation = results["evaluate"]["evaluation"]
  for name in ("report.json", "report.md"):
    shutil.copyfile(evaluation.path(name), os.path.join(output_dir, name))
  serving_dir = _publish_serving(results["export"]["serving"], output_dir)
  with open(os.path.join(output_dir, "report.md")) as f:
    print(f.read(), flush=True)
  _log(
    f"finished in {time.monotonic() - began:.0f}s; report: "
    f"{os.path.join(output_dir, 'report.md')}; serving model: {serving_dir}"
  )
  return 0


def _publish_serving(artifact, output_dir: str) -> str:
  """Copies the export to `<output_dir>/serving/<version>/` for TF Serving.

  An existing version folder from another run is replaced as a whole (by
  rename), so a server watching the folder never sees half a model.
  """
  version = str(artifact.counts["version"])
  target = os.path.join(output_dir, "serving", version)
  marker = os.path.join(target, "a2d_fingerprint.txt")
  if os.path.exists(marker):
    with open(marker) as f:
      if f.read().strip() == artifact.fingerprint:
        return target
  staging = os.path.join(output_dir, "serving", f".{version}.tmp")
  shutil.rmtree(staging, ignore_errors=True)
  shutil.copytree(artifact.path(version), staging)
  with open(os.path.join(staging, "a2d_fingerprint.txt"), "w") as f:
    f.write(artifact.fingerprint + "\n")
  if os.path.exists(target):
    _log(f"replacing {target} with the export of this run")
    old = os.path.join(output_dir, "serving", f".{version}.old")
    shutil.rmtree(old, ignore_errors=True)
    os.rename(target, old)
    shutil.rmtree(old)
  os.rename(staging, target)
  return target


def main(argv: list[str]) -> int:
  try:
    return run(argv[1:])
  except KeyboardInterrupt:
    print(
      "a2d: interrupted; re-run the same command to resume.", file=sys.stderr
    )
    return 130
  except (ValueError, OSError) as e:
    message = " ".join(str(e).split())
    print(f"a2d: error: {message}", file=sys.stderr)
    return 1


def _parse_flags(argv: list[str]) -> list[str]:
  try:
    return flags.FLAGS(argv)
  except flags.Error as e:
    print(f"a2d: error: {e}", file=sys.stderr)
    sys.exit(2)


if __name__ == "__main__":
  app.run(main, flags_parser=_parse_flags)
