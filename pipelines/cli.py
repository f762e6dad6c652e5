"""Flags and error handling shared by the pipeline CLIs.

`local_runner`, `ablation` and `kubeflow_runner` take the same data, config
and sizing flags. They are defined once here, so the three CLIs cannot drift
apart and one process may import several runners (absl allows a flag name
once per process). Each runner defines only its own extra flags.

Nothing here imports TensorFlow or Beam: flags, config values (`config.check`)
and files are checked before the heavy imports, so a mistyped path or value
fails in a second.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import sys
from collections.abc import Callable

from absl import flags
from absl import logging as absl_logging

from a2d_tf import config as config_lib

OUTPUT_DIR = flags.DEFINE_string(
  "output_dir",
  "a2d_output",
  "Where artifacts, logs and reports go (the ablation CLI defaults to "
  "a2d_ablation).",
)
DATASET = flags.DEFINE_enum(
  "dataset",
  "synthetic",
  ["synthetic", "tfds", "json", "narrativeqa"],
  "synthetic: the embedded corpus; tfds: TFDS squad/v1.1; json: "
  "--train_file and --dev_file in SQuAD v1.1 format; narrativeqa: the "
  "official NarrativeQA files under --narrativeqa_dir (summary setting).",
)
NARRATIVEQA_DIR = flags.DEFINE_string(
  "narrativeqa_dir",
  "",
  "NarrativeQA repository root with documents.csv, qaps.csv and "
  "third_party/wikipedia/summaries.csv (--dataset=narrativeqa).",
)
TRAIN_FILE = flags.DEFINE_string(
  "train_file", "", "SQuAD-format train file (for Kubeflow: as pods see it)."
)
DEV_FILE = flags.DEFINE_string(
  "dev_file", "", "SQuAD-format dev file (for Kubeflow: as pods see it)."
)
EVAL_FILE = flags.DEFINE_multi_string(
  "eval_file",
  [],
  "Extra evaluation set as NAME=PATH (SQuAD format, e.g. AddSent); repeatable.",
)
GLOVE_FILE = flags.DEFINE_string(
  "glove_file",
  "",
  "Optional GloVe-format word vectors (found words frozen, others trained).",
)
PRESET = flags.DEFINE_enum(
  "preset", "small", list(config_lib.PRESETS), "Config preset."
)
OVERRIDE = flags.DEFINE_multi_string(
  "override", [], "Config override section.field=value; repeatable."
)
NUM_TEACHERS = flags.DEFINE_integer(
  "num_teachers",
  None,
  "Ensemble size K (default: the preset's).",
  lower_bound=1,
)
MAX_TRAIN = flags.DEFINE_integer(
  "max_train_examples",
  0,
  "Use the first N training questions (0 = all).",
  lower_bound=0,
)
MAX_DEV = flags.DEFINE_integer(
  "max_dev_examples",
  0,
  "Use the first N dev questions (0 = all).",
  lower_bound=0,
)
BEAM_ARG = flags.DEFINE_multi_string(
  "beam_arg",
  [],
  "Beam pipeline option for the knowledge step, e.g. "
  "--beam_arg=--runner=DataflowRunner; repeatable.",
)
TIMING_REPEATS = flags.DEFINE_integer(
  "timing_repeats",
  3,
  "Passes over dev when timing ensemble vs student.",
  lower_bound=1,
)


@dataclasses.dataclass(frozen=True)
class RunInputs:
  """What the shared flags resolve to.

  Attributes:
    config: The resolved `ExperimentConfig`.
    eval_files: Extra evaluation sets, name -> path.
    data_files: Every data file by role ("train", "dev", eval names, the
      three NarrativeQA files).
  """

  config: config_lib.ExperimentConfig
  eval_files: dict[str, str]
  data_files: dict[str, str]


def resolve(argv_extra: list[str], check_files: bool = True) -> RunInputs:
  """Checks the shared flags and builds the config.

  Args:
    argv_extra: Positional arguments left after flag parsing (must be none).
    check_files: Whether the data files must exist here (False where they
      are paths on another machine, as for Kubeflow).

  Raises:
    ValueError: On stray arguments, bad overrides or missing files (the
      message names the flag and the file).
    config.ConfigError: On config values that cannot run, one line each.
  """
  from a2d_tf.data import sources

  if argv_extra:
    raise ValueError(f"unexpected arguments: {' '.join(argv_extra)}")
  overrides = list(OVERRIDE.value)
  if NUM_TEACHERS.value is not None:
    overrides.append(f"teacher.num_teachers={NUM_TEACHERS.value}")
  config = config_lib.check(config_lib.get_config(PRESET.value, overrides))
  eval_files = sources.parse_eval_files(EVAL_FILE.value)
  data_files = {"train": TRAIN_FILE.value, "dev": DEV_FILE.value, **eval_files}
  if DATASET.value == "json" and not (TRAIN_FILE.value and DEV_FILE.value):
    raise ValueError("--dataset=json needs --train_file and --dev_file.")
  if DATASET.value == "narrativeqa":
    data_files.update(_narrativeqa_files(config, check_files))
  elif NARRATIVEQA_DIR.value:
    raise ValueError("--narrativeqa_dir is read by --dataset=narrativeqa only.")
  if check_files:
    sources.check_files(data_files)
    if GLOVE_FILE.value:
      sources.check_files({"glove": GLOVE_FILE.value})
  return RunInputs(config, eval_files, data_files)


def _narrativeqa_files(
  config: config_lib.ExperimentConfig, check_dir: bool
) -> dict[str, str]:
  """The NarrativeQA files of `--narrativeqa_dir`, after the flag checks.

  Raises:
    ValueError: On a missing or misplaced flag, or a directory that does not
      exist (when `check_dir`).
  """
  from a2d_tf.data import sources

  if TRAIN_FILE.value or DEV_FILE.value:
    raise ValueError(
      "--dataset=narrativeqa reads its splits from --narrativeqa_dir; "
      "--train_file and --dev_file are for --dataset=json."
    )
  directory = NARRATIVEQA_DIR.value
  sources.check_narrativeqa_args(directory, config.data.adversarial_questions)
  if check_dir and "://" not in directory and not os.path.isdir(directory):
    raise ValueError(f"--narrativeqa_dir {directory}: no such directory.")
  return sources.narrativeqa_files(directory)


def pipeline_kwargs(inputs: RunInputs) -> dict:
  """The `pipeline.create_pipeline` arguments the shared flags decide."""
  from a2d_tf.data import sources

  return dict(
    dataset=DATASET.value,
    train_file=TRAIN_FILE.value,
    dev_file=DEV_FILE.value,
    eval_files=inputs.eval_files,
    glove_file=GLOVE_FILE.value,
    input_digest=sources.files_digest(inputs.data_files),
    glove_digest=sources.files_digest({"glove": GLOVE_FILE.value}),
    max_train_examples=MAX_TRAIN.value,
    max_dev_examples=MAX_DEV.value,
    beam_pipeline_args=list(BEAM_ARG.value),
    timing_repeats=TIMING_REPEATS.value,
    narrativeqa_dir=NARRATIVEQA_DIR.value,
  )


def quiet_logging() -> None:
  """Keeps TF, Beam and absl to warnings: progress lines stay readable."""
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  logging.getLogger().setLevel(logging.WARNING)
  absl_logging.set_verbosity(absl_logging.WARNING)


def prepare_output_dir(config) -> str:
  """Creates `--output_dir` and writes the resolved `config.json` there."""
  output_dir = os.path.abspath(OUTPUT_DIR.value)
  os.makedirs(output_dir, exist_ok=True)
  with open(os.path.join(output_dir, "config.json"), "w") as f:
    f.write(config.to_json() + "\n")
  return output_dir


def main(run: Callable[[list[str]], int], argv: list[str]) -> int:
  """Runs `run(argv[1:])`; expected failures end in one line on stderr.

  Config values that cannot run end in one line per problem.
  """
  try:
    return run(argv[1:])
  except config_lib.ConfigError as e:
    for problem in e.problems:
      print(f"a2d: error: {problem}", file=sys.stderr)
    return 1
  except KeyboardInterrupt:
    print(
      "a2d: interrupted; re-run the same command to resume.", file=sys.stderr
    )
    return 130
  except (ValueError, OSError) as e:
    message = " ".join(str(e).split())
    print(f"a2d: error: {message}", file=sys.stderr)
    return 1


def parse_flags(argv: list[str]) -> list[str]:
  """absl's flag parser, with a one-line error and exit status 2."""
  try:
    return flags.FLAGS(argv)
  except flags.Error as e:
    print(f"a2d: error: {e}", file=sys.stderr)
    sys.exit(2)
