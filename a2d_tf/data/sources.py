"""Where a run's examples come from: the embedded corpus, TFDS or JSON files.

`load_splits` returns the record lists of one run: `train`, the
`validation` split held out from it by article (`data.splits`; model
selection only), `dev` and any number of named extra evaluation sets
(AddSent, AddOneSent, ...). The embedded synthetic corpus brings its own
`adversarial` evaluation set; for real SQuAD data one can be generated from
dev (`data.addsent`, AddSent-style).

Checking flags and files imports neither TensorFlow nor the readers, so a CLI
rejects a bad argument at once, with one line.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping

from a2d_tf.data.records import DataError, Record

DATASETS = ("synthetic", "tfds", "json")
# Split names a run makes itself (`adversarial`: the embedded corpus' or the
# generated one).
RESERVED_SPLITS = ("train", "validation", "dev", "adversarial")
_EVAL_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


def parse_eval_files(values: list[str] | tuple[str, ...]) -> dict[str, str]:
  """Parses repeated `NAME=PATH` flags into a dict.

  Raises:
    ValueError: On a value without `=`, a bad or repeated name.
  """
  parsed = {}
  for value in values:
    name, sep, path = value.partition("=")
    if not sep or not name or not path:
      raise ValueError(f"--eval_file expects NAME=PATH, got {value!r}.")
    if not _EVAL_NAME.match(name) or name in RESERVED_SPLITS:
      raise ValueError(
        f"--eval_file name {name!r} must use letters, digits, '.', '_' or "
        f"'-' and must not be one of {', '.join(RESERVED_SPLITS)}."
      )
    if name in parsed:
      raise ValueError(f"--eval_file name {name!r} is given twice.")
    parsed[name] = path
  return parsed


def _exists(path: str) -> bool:
  if "://" not in path:
    return os.path.isfile(path)
  import tensorflow as tf

  return tf.io.gfile.exists(path)


def _open(path: str):
  if "://" not in path:
    return open(path, "rb")
  import tensorflow as tf

  return tf.io.gfile.GFile(path, "rb")


def check_files(paths: Mapping[str, str]) -> None:
  """Raises DataError naming the first input file that does not exist."""
  for name, path in paths.items():
    if path and not _exists(path):
      raise DataError(f"{name} file does not exist", path=path)


def files_digest(paths: Mapping[str, str]) -> str:
  """A digest of the input files' contents, for caching by content."""
  digest = hashlib.sha256()
  for name in sorted(paths):
    path = paths[name]
    digest.update(f"{name}={path}\n".encode())
    if path and _exists(path):
      with _open(path) as f:
        while chunk := f.read(1 << 20):
          digest.update(chunk)
  return digest.hexdigest()[:16]


def load_splits(
  dataset: str,
  train_file: str = "",
  dev_file: str = "",
  eval_files: Mapping[str, str] | None = None,
  synthetic_train_size: int = 600,
  synthetic_dev_size: int = 100,
  synthetic_seed: int = 13,
  tfds_data_dir: str | None = None,
  max_train_examples: int = 0,
  max_dev_examples: int = 0,
  validation_fraction: float = 0.0,
  split_seed: int = 0,
  adversarial_questions: int = 0,
) -> dict[str, list[Record]]:
  """Loads the splits of one run.

  Args:
    dataset: "synthetic" (the embedded corpus), "tfds" (`squad/v1.1`) or
      "json" (SQuAD-format `train_file` and `dev_file`).
    train_file: SQuAD-format training file for "json".
    dev_file: SQuAD-format dev file for "json".
    eval_files: Extra evaluation sets, name -> SQuAD-format file; evaluated
      with the worst case over adversarial variants when ids carry them.
    synthetic_train_size: Passages in the embedded train split.
    synthetic_dev_size: Passages in the embedded dev split.
    synthetic_seed: Seed of the embedded corpus.
    tfds_data_dir: TFDS data directory for "tfds".
    max_train_examples: Keep only the first N training questions (0 = all).
    max_dev_examples: Keep only the first N dev questions (0 = all).
    validation_fraction: Share of the (first `max_train_examples`) training
      questions held out by article as `validation` (0: none).
    split_seed: Seed of the validation split and the adversarial sample.
    adversarial_questions: For "tfds" and "json": dev questions sampled for
      a generated AddSent-style `adversarial` set (0: none). Ignored for
      "synthetic", whose corpus has its own.

  Returns:
    Split name -> records: `train`, `validation` (when held out), `dev`,
    `adversarial` (synthetic, or generated), then one entry per eval set.

  Raises:
    ValueError: On an unknown dataset or missing files for "json".
    DataError: On unreadable or malformed data.
  """
  from a2d_tf.data import addsent, squad, synthetic
  from a2d_tf.data import splits as splits_lib

  eval_files = dict(eval_files or {})
  if dataset not in DATASETS:
    raise ValueError(
      f"Unknown dataset {dataset!r}; choose one of {', '.join(DATASETS)}."
    )
  if dataset == "json" and not (train_file and dev_file):
    raise ValueError("--dataset=json needs --train_file and --dev_file.")
  check_files({"train": train_file, "dev": dev_file, **eval_files})
  if dataset == "synthetic":
    splits = synthetic.generate_corpus(
      synthetic_train_size, synthetic_dev_size, synthetic_seed
    )
  elif dataset == "tfds":
    splits = {
      "train": squad.read_tfds_squad("train", data_dir=tfds_data_dir),
      "dev": squad.read_tfds_squad("validation", data_dir=tfds_data_dir),
    }
  else:
    splits = {
      "train": squad.read_squad_json(train_file),
      "dev": squad.read_squad_json(dev_file),
    }
  if max_train_examples:
    splits["train"] = splits["train"][:max_train_examples]
  if max_dev_examples:
    splits["dev"] = splits["dev"][:max_dev_examples]
  train, validation = splits_lib.split_validation(
    splits["train"], validation_fraction, split_seed
  )
  held_out = {"train": train}
  if validation:
    held_out["validation"] = validation
  splits = {**held_out, **{k: v for k, v in splits.items() if k != "train"}}
  if dataset != "synthetic" and adversarial_questions:
    splits["adversarial"] = addsent.make_adversarial(
      splits["dev"], adversarial_questions, split_seed
    )
  for name, path in eval_files.items():
    if name in splits:
      raise ValueError(f"Evaluation set {name!r} is already defined.")
    splits[name] = squad.read_squad_json(path)
  for name, records in splits.items():
    if not records:
      raise DataError(f"split {name!r} has no examples")
  return splits


def split_file(directory: str, split: str) -> str:
  """Where `example_gen` writes a split as SQuAD JSON."""
  return os.path.join(directory, f"{split}.json")
