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
import shutil
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
  "Ensemble size K (default: the preset's); shorthand for "
  "--override=teacher.num_teachers=K (both with different values is an "
  "error).",
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
  "Passes over dev when timing ensemble vs student (0 skips the timing).",
  lower_bound=0,
)


@dataclasses.dataclass(frozen=True)
class RunInputs:
  """What the shared flags resolve to.

  Attributes:
    config: The resolved `ExperimentConfig`.
    eval_files: Extra evaluation sets, name -> path.
    data_files: Every data file by role ("train", "dev", eval names, the
      three NarrativeQA files).
    dataset: The dataset the run reads: `--dataset`, or "json" inferred
      from `--train_file`/`--dev_file` when `--dataset` is not given.
    dataset_note: How the dataset was chosen, for the run's first log line
      ("" when `--dataset` said it).
  """

  config: config_lib.ExperimentConfig
  eval_files: dict[str, str]
  data_files: dict[str, str]
  dataset: str = "synthetic"
  dataset_note: str = ""

  def describe_dataset(self) -> str:
    """`dataset json (inferred from ...)` for a log line."""
    note = f" ({self.dataset_note})" if self.dataset_note else ""
    return f"dataset {self.dataset}{note}"


def resolve(argv_extra: list[str], check_files: bool = True) -> RunInputs:
  """Checks the shared flags and builds the config.

  Args:
    argv_extra: Positional arguments left after flag parsing (must be none).
    check_files: Whether the data files must exist here (False where they
      are paths on another machine, as for Kubeflow).

  Every flag and config value is checked here, before any step runs:
  `config.validate` for the config, `flag_problems` for what the flags say
  together. All problems are reported at once, one line each.

  Raises:
    ValueError: On stray arguments, bad overrides, a bad `--eval_file` or
      missing files (the message names the flag and the file).
    config.ConfigError: On flags and config values that cannot run, one
      line each.
  """
  from a2d_tf.data import sources

  if argv_extra:
    raise ValueError(f"unexpected arguments: {' '.join(argv_extra)}")
  overrides = list(OVERRIDE.value)
  config = config_lib.get_config(PRESET.value, overrides)
  problems = []
  if NUM_TEACHERS.value is not None:
    given = _overridden(overrides, "teacher.num_teachers")
    if given and config.teacher.num_teachers != NUM_TEACHERS.value:
      problems.append(
        f"--num_teachers={NUM_TEACHERS.value} and --override={given[-1]} "
        "disagree: --num_teachers is shorthand for that override; give one"
      )
    else:
      config = config_lib.apply_overrides(
        config, [f"teacher.num_teachers={NUM_TEACHERS.value}"]
      )
  dataset, note, dataset_problems = _choose_dataset()
  problems += dataset_problems
  problems += _other_flag_problems()
  problems += config_lib.validate(config)
  if problems:
    raise config_lib.ConfigError(problems)
  eval_files = sources.parse_eval_files(EVAL_FILE.value)
  data_files = {"train": TRAIN_FILE.value, "dev": DEV_FILE.value, **eval_files}
  if dataset == "narrativeqa":
    data_files.update(_narrativeqa_files(config, check_files))
  elif NARRATIVEQA_DIR.value:
    raise ValueError("--narrativeqa_dir is read by --dataset=narrativeqa only.")
  if check_files:
    sources.check_files(data_files)
    if GLOVE_FILE.value:
      sources.check_files({"glove": GLOVE_FILE.value})
  return RunInputs(config, eval_files, data_files, dataset, note)


def _overridden(overrides: list[str], key: str) -> list[str]:
  """The overrides that set `key` (e.g. `teacher.num_teachers`)."""
  return [o for o in overrides if o.split("=", 1)[0].strip() == key]


def _choose_dataset() -> tuple[str, str, list[str]]:
  """The dataset, how it was chosen, and what is wrong with the choice.

  `--train_file` and `--dev_file` are read only by the json dataset:
  without `--dataset` they select it (and the log line says so); with
  another `--dataset` they are an error, never silently ignored.
  """
  files = [f"--{flag.name}" for flag in (TRAIN_FILE, DEV_FILE) if flag.value]
  dataset = DATASET.value
  note = ""
  problems = []
  if files and dataset != "json":
    if flags.FLAGS["dataset"].present:
      verb = "is" if len(files) == 1 else "are"
      problems.append(
        f"{' and '.join(files)} {verb} read only with --dataset=json, not "
        f"--dataset={dataset}: drop {'it' if len(files) == 1 else 'them'} "
        "or use --dataset=json"
      )
    else:
      dataset, note = "json", f"inferred from {' and '.join(files)}"
  if dataset == "json" and not (TRAIN_FILE.value and DEV_FILE.value):
    how = f" ({note})" if note else ""
    problems.append(f"--dataset=json{how} needs --train_file and --dev_file.")
  return dataset, note, problems


def _other_flag_problems() -> list[str]:
  """Flags that are wrong on their own, beyond what absl checks."""
  problems = []
  if not OUTPUT_DIR.value.strip():
    problems.append(
      "--output_dir is empty: name the folder for the run's outputs"
    )
  for arg in BEAM_ARG.value:
    if not arg.startswith("--") or arg == "--":
      problems.append(
        f"--beam_arg={arg!r}: expected one Beam option as --name or "
        "--name=value, e.g. --beam_arg=--runner=DataflowRunner"
      )
  return problems


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
    dataset=inputs.dataset,
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


def lock_output_dir(log: Callable[[str], None]):
  """`--output_dir` (absolute, created) and its held `kit.RunLock`.

  One run per output folder: a second run into it fails at once with
  `kit.RunLockedError` (one line, naming the other run's pid); a dead
  run's lock is taken over with a warning through `log`. Release the lock
  (`with lock:`) when the run ends.
  """
  from a2d_tf.kit import lock as lock_lib

  output_dir = os.path.abspath(OUTPUT_DIR.value)
  return output_dir, lock_lib.RunLock(
    output_dir, log=lambda line: log(f"warning: {line}")
  ).acquire()


def write_file(path: str, text: str) -> None:
  """Writes `path` by a temporary file and a rename: whole or not at all."""
  partial = f"{path}.partial"
  with open(partial, "w", encoding="utf-8") as f:
    f.write(text)
  os.replace(partial, path)


def copy_file(source: str, destination: str) -> None:
  """Copies `source` to `destination` by a temporary file and a rename."""
  partial = f"{destination}.partial"
  shutil.copyfile(source, partial)
  os.replace(partial, destination)


def write_config(output_dir: str, config) -> None:
  """Writes the resolved config as `<output_dir>/config.json`.

  Called once the run has succeeded, so the file always describes the run
  whose outputs lie beside it; a failed run leaves the previous one's.
  """
  write_file(os.path.join(output_dir, "config.json"), config.to_json() + "\n")


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
