"""Where a run's examples come from: the embedded corpus, TFDS, JSON files
or NarrativeQA.

`load_splits` returns the record lists of one run: `train`, the
`validation` split held out from it by article (`data.splits`; model
selection only), `dev` and any number of named extra evaluation sets
(AddSent, AddOneSent, ...). The embedded synthetic corpus brings its own
`adversarial` evaluation set; for real SQuAD data one can be generated from
dev (`data.addsent`, AddSent-style).

NarrativeQA (`load_narrativeqa`, the official repository's layout) gives
`train` (its train set less the validation documents), `validation`
(held out from its train set by document), `dev` (its `valid` set) and
`test`, plus each split's task and the two reference answers per question
that its sets are scored against.

Checking flags and files imports neither TensorFlow nor the readers, so a CLI
rejects a bad argument at once, with one line.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
from collections.abc import Mapping

from a2d_tf.data.records import DataError, Record

DATASETS = ("synthetic", "tfds", "json", "narrativeqa")
# What a split is scored as: SQuAD EM/F1 (adversarial sets by their worst
# case), or NarrativeQA's BLEU-1, BLEU-4 and ROUGE-L against references.
SQUAD_TASK = "squad"
NARRATIVEQA_TASK = "narrativeqa"
# A NarrativeQA run's split -> the `set` of the official files it reads.
NARRATIVEQA_SETS = {"train": "train", "dev": "valid", "test": "test"}
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


def narrativeqa_files(directory: str) -> dict[str, str]:
  """The three files of the NarrativeQA layout under `directory`, by role."""
  from a2d_tf.data import narrativeqa

  return {
    "NarrativeQA documents": os.path.join(
      directory, narrativeqa.DOCUMENTS_FILE
    ),
    "NarrativeQA questions": os.path.join(directory, narrativeqa.QAPS_FILE),
    "NarrativeQA summaries": os.path.join(
      directory, narrativeqa.SUMMARIES_FILE
    ),
  }


@dataclasses.dataclass(frozen=True)
class LoadedSplits:
  """A run's splits with what scoring them needs.

  Attributes:
    splits: Split name -> records, as `load_splits` returns them.
    tasks: Split name -> `SQUAD_TASK` or `NARRATIVEQA_TASK`.
    references: For NarrativeQA splits: question id -> the two reference
      answers.
    sources: Split name -> where its questions come from, in words.
    counts: What loading found, e.g. `dev_without_span` (questions without
      a passage span that overlaps a reference).
  """

  splits: dict[str, list[Record]]
  tasks: dict[str, str]
  references: dict[str, dict[str, list[str]]]
  sources: dict[str, str]
  counts: dict[str, int]


def _token_counts(
  splits: Mapping[str, list[Record]], limits: Mapping[str, int]
) -> dict[str, int]:
  """How the tokenized texts fit the featurization limits.

  `max_passage_tokens` and `passages_over_max_len` (distinct passages
  longer than `max_passage_len` tokens: the transform cuts them), the
  same for questions, and `train_spans_over_max_answer_len` (training
  spans longer than the decoder's `max_answer_len`), counted with the
  tokenizer the features use.
  """
  from a2d_tf.data import tokenization

  passages = list(dict.fromkeys(r.context for v in splits.values() for r in v))
  questions = [r.question for v in splits.values() for r in v]
  spans = [r.answers[0].text for r in splits["train"] if r.answers]
  lengths = {
    name: [len(t) for t in tokenization.tokenize_many(texts)]
    for name, texts in (
      ("passage", passages),
      ("question", questions),
      ("span", spans),
    )
  }
  return {
    "max_passage_tokens": max(lengths["passage"], default=0),
    "passages_over_max_len": sum(
      n > limits["max_passage_len"] for n in lengths["passage"]
    ),
    "max_question_tokens": max(lengths["question"], default=0),
    "questions_over_max_len": sum(
      n > limits["max_question_len"] for n in lengths["question"]
    ),
    "train_spans_over_max_answer_len": sum(
      n > limits["max_answer_len"] for n in lengths["span"]
    ),
  }


def load_narrativeqa(
  directory: str,
  eval_files: Mapping[str, str] | None = None,
  max_passage_words: int = 800,
  max_train_examples: int = 0,
  max_dev_examples: int = 0,
  validation_fraction: float = 0.0,
  split_seed: int = 0,
  length_limits: Mapping[str, int] | None = None,
) -> LoadedSplits:
  """Loads a NarrativeQA run (summary setting) from the official layout.

  Args:
    directory: The NarrativeQA repository root (`documents.csv`,
      `qaps.csv`, `third_party/wikipedia/summaries.csv`).
    eval_files: Extra evaluation sets in SQuAD format, name -> file.
    max_passage_words: Words of each tokenized summary kept (800 in the
      paper).
    max_train_examples: Keep only the first N training questions (0 = all).
    max_dev_examples: Keep only the first N questions of `dev` (NarrativeQA
      valid) and of `test` each (0 = all).
    validation_fraction: Share of the training questions held out by
      document as `validation` (0: none).
    split_seed: Seed of the validation split.
    length_limits: `max_passage_len`, `max_question_len` and
      `max_answer_len` (tokens); when given, `counts` says how the texts
      fit them (`_token_counts`).

  Returns:
    `LoadedSplits` with `train`, `validation` (when held out), `dev`,
    `test` and the extra sets. Questions without a span stay in every
    split; the transform skips (and counts) the training ones.

  Raises:
    DataError: On unreadable or malformed data (file, record and field
      named), or an empty split.
    ValueError: On a repeated evaluation set name.
  """
  from a2d_tf.data import narrativeqa, squad
  from a2d_tf.data import splits as splits_lib

  check_files(narrativeqa_files(directory))
  check_files(dict(eval_files or {}))
  read = narrativeqa.read_narrativeqa_splits(
    directory, tuple(NARRATIVEQA_SETS.values()), max_passage_words
  )
  splits = {name: read[s].records for name, s in NARRATIVEQA_SETS.items()}
  references = {}
  for part in read.values():
    references.update(part.references)
  if max_train_examples:
    splits["train"] = splits["train"][:max_train_examples]
  if max_dev_examples:
    for name in ("dev", "test"):
      splits[name] = splits[name][:max_dev_examples]
  train, validation = splits_lib.split_validation(
    splits["train"], validation_fraction, split_seed
  )
  held_out = {"train": train}
  if validation:
    held_out["validation"] = validation
  splits = {**held_out, "dev": splits["dev"], "test": splits["test"]}
  tasks = dict.fromkeys(splits, NARRATIVEQA_TASK)
  sources = {
    "train": "NarrativeQA train"
    + (", less the validation documents" if validation else ""),
    "dev": "NarrativeQA valid",
    "test": "NarrativeQA test",
  }
  if validation:
    sources["validation"] = "held out from NarrativeQA train by document"
  for name, path in (eval_files or {}).items():
    if name in splits:
      raise ValueError(f"Evaluation set {name!r} is already defined.")
    splits[name] = squad.read_squad_json(path)
    tasks[name] = SQUAD_TASK
  for name, records in splits.items():
    if not records:
      raise DataError(f"split {name!r} has no examples")
  counts = {
    f"{name}_without_span": sum(1 for r in splits[name] if not r.answers)
    for name in tasks
    if tasks[name] == NARRATIVEQA_TASK
  }
  if length_limits:
    counts.update(_token_counts(splits, length_limits))
  return LoadedSplits(
    splits=splits,
    tasks=tasks,
    references={
      name: {r.id: references[r.id] for r in splits[name]}
      for name in splits
      if tasks[name] == NARRATIVEQA_TASK
    },
    sources=sources,
    counts=counts,
  )


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
  narrativeqa_dir: str = "",
  max_passage_words: int = 800,
) -> dict[str, list[Record]]:
  """Loads the splits of one run.

  Args:
    dataset: "synthetic" (the embedded corpus), "tfds" (`squad/v1.1`),
      "json" (SQuAD-format `train_file` and `dev_file`) or "narrativeqa"
      (`narrativeqa_dir`; `load_narrativeqa` also gives the references).
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
      "synthetic", whose corpus has its own; an error for "narrativeqa".
    narrativeqa_dir: The NarrativeQA repository root for "narrativeqa".
    max_passage_words: For "narrativeqa": summary words kept.

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
  if dataset == "narrativeqa":
    check_narrativeqa_args(narrativeqa_dir, adversarial_questions)
    return load_narrativeqa(
      narrativeqa_dir,
      eval_files,
      max_passage_words,
      max_train_examples,
      max_dev_examples,
      validation_fraction,
      split_seed,
    ).splits
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


def check_narrativeqa_args(directory: str, adversarial_questions: int) -> None:
  """Raises ValueError on arguments a NarrativeQA run cannot take."""
  if not directory:
    raise ValueError("--dataset=narrativeqa needs --narrativeqa_dir.")
  if adversarial_questions:
    raise ValueError(
      f"data.adversarial_questions={adversarial_questions}: the generated "
      "adversarial set is made from SQuAD dev questions; it does not apply "
      "to --dataset=narrativeqa."
    )


def split_file(directory: str, split: str) -> str:
  """Where `example_gen` writes a split as SQuAD JSON."""
  return os.path.join(directory, f"{split}.json")
