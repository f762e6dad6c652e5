r"""Evaluates predictions, compatible with the official SQuAD v1.1 script.

Usage:
  python -m a2d_tf.evaluate DATASET_FILE PREDICTION_FILE [--task=squad]
  python -m a2d_tf.evaluate DATASET PREDICTION_FILE --task=narrativeqa \
    [--split=test]
  python -m a2d_tf.evaluate DATASET_FILE PREDICTION_FILE \
    --compare_to=OTHER_PREDICTION_FILE [--resamples=1000] [--seed=1]

DATASET_FILE is a SQuAD-format JSON file (`{"version": .., "data": [..]}`),
PREDICTION_FILE a JSON object mapping question id to answer text. The scores
are printed as one JSON object on stdout, as the official script prints them:
`{"exact_match": .., "f1": ..}` for `--task=squad`; `--task=adversarial`
adds `num_original` and `num_variants` and reports the worst case over each
original question and its adversarial variants.

For `--task=narrativeqa`, DATASET is either a JSON object of question id ->
reference answers (as `a2d_tf.data.narrativeqa.write_references` writes it)
or the NarrativeQA directory (or its `qaps.csv`), whose `--split` questions
are scored under the ids `read_narrativeqa` gives them. The scores are
`{"bleu_1": .., "bleu_4": .., "rouge_l": ..}` in percent, computed with the
COCO caption code as earlier NarrativeQA results were
(`a2d_tf.metrics.narrativeqa`).

With `--compare_to`, the same questions are also scored for a second
system and the output is `{"scores": .., "other_scores": ..,
"difference": {metric: {"difference", "interval", "excludes_zero", ..}}}`:
PREDICTION_FILE minus OTHER_PREDICTION_FILE, in points, with the paired
bootstrap interval over the units the means average (questions; original
questions on `--task=adversarial`; ROUGE-L per question for NarrativeQA,
whose BLEU is corpus-level and gets no interval), as the pipeline's
report computes its intervals (`a2d_tf.metrics.bootstrap`). A difference
whose interval contains 0 is not resolved by the set.

Questions without a prediction score 0 and are reported on stderr. Bad input
ends with a one-line error on stderr and exit status 1: besides malformed
files, a question id that occurs twice in the dataset (naming both places)
and a key that occurs twice in one JSON object (e.g. two answers for one
id in the prediction file). A UTF-8 byte order mark at the start of a file
is skipped, as the pipeline's readers skip it.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

from absl import app, flags

from a2d_tf.data import narrativeqa as narrativeqa_data
from a2d_tf.data.records import DataError
from a2d_tf.metrics import adversarial, bootstrap, narrativeqa, squad

EXPECTED_VERSION = "1.1"
TASKS = ("squad", "adversarial", "narrativeqa")
_MAX_LISTED_IDS = 5

_TASK = flags.DEFINE_enum(
  "task",
  "squad",
  list(TASKS),
  "squad: official SQuAD v1.1 EM/F1. adversarial: worst case over each "
  "original question and its AddSent/AddOneSent variants. narrativeqa: "
  "BLEU-1, BLEU-4 and ROUGE-L against both reference answers.",
)
_SPLIT = flags.DEFINE_enum(
  "split",
  "test",
  list(narrativeqa_data.SPLITS),
  "The NarrativeQA split scored when DATASET is the NarrativeQA directory "
  "or its qaps.csv (--task=narrativeqa only).",
)

_COMPARE_TO = flags.DEFINE_string(
  "compare_to",
  None,
  "A second prediction file: also print PREDICTION_FILE minus it, with a "
  "paired bootstrap confidence interval per metric.",
)
_RESAMPLES = flags.DEFINE_integer(
  "resamples",
  bootstrap.DEFAULT_RESAMPLES,
  "Bootstrap resamples of --compare_to's intervals.",
  lower_bound=1,
)
_SEED = flags.DEFINE_integer(
  "seed", 1, "Seed of --compare_to's resampling (the report's is 1)."
)
_CONFIDENCE = flags.DEFINE_float(
  "confidence",
  bootstrap.DEFAULT_CONFIDENCE,
  "Two-sided coverage of --compare_to's intervals.",
  lower_bound=0.5,
  upper_bound=0.999,
)


class InputError(Exception):
  """A problem with the command-line input, reported as one line."""


def _read_json(path: str, what: str) -> Any:
  """The JSON in `path`, a UTF-8 byte order mark skipped (as a2d's readers)."""
  try:
    with open(path, encoding="utf-8-sig") as f:
      return json.load(f, object_pairs_hook=_unique_keys)
  except OSError as e:
    raise InputError(
      f"cannot read {what} file {path}: {e.strerror or e}"
    ) from e
  except UnicodeDecodeError as e:
    raise InputError(f"{what} file {path} is not UTF-8: {e.reason}") from e
  except json.JSONDecodeError as e:
    raise InputError(
      f"{what} file {path} is not valid JSON: {e.msg} at line {e.lineno} "
      f"column {e.colno}"
    ) from e
  except _DuplicateKey as e:
    raise InputError(
      f"{what} file {path}: key {e.args[0]!r} occurs twice in one JSON "
      "object (for a prediction file: two answers for one question id)"
    ) from None


class _DuplicateKey(ValueError):
  """A JSON object names one key twice (json would keep the last)."""


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
  result = {}
  for key, value in pairs:
    if key in result:
      raise _DuplicateKey(key)
    result[key] = value
  return result


def load_dataset(path: str) -> tuple[list[Any], str | None]:
  """Reads a SQuAD-format dataset file.

  Args:
    path: The dataset JSON file.

  Returns:
    The `data` list and the file's `version` (None when absent).

  Raises:
    InputError: The file cannot be read, is not JSON, or has no `data` list.
  """
  dataset_json = _read_json(path, "dataset")
  if not isinstance(dataset_json, dict) or "data" not in dataset_json:
    raise InputError(f"dataset file {path} has no top-level 'data' field")
  data = dataset_json["data"]
  if not isinstance(data, list):
    raise InputError(
      f"dataset file {path}: 'data' must be a list, got {type(data).__name__}"
    )
  version = dataset_json.get("version")
  return data, None if version is None else str(version)


def load_predictions(path: str) -> dict[str, str]:
  """Reads a predictions file: a JSON object of question id -> answer text.

  Args:
    path: The predictions JSON file.

  Returns:
    The predictions.

  Raises:
    InputError: The file cannot be read, is not JSON, is not an object, or a
      value is not a string.
  """
  predictions = _read_json(path, "prediction")
  if not isinstance(predictions, dict):
    raise InputError(
      f"prediction file {path} must hold a JSON object of id -> answer "
      f"text, got {type(predictions).__name__}"
    )
  for qid, text in predictions.items():
    if not isinstance(text, str):
      raise InputError(
        f"prediction file {path}: the prediction for {qid!r} must be a "
        f"string, got {type(text).__name__}"
      )
  return predictions


def run(
  task: str, data: Any, predictions: dict[str, str]
) -> tuple[dict[str, Any], tuple[str, ...]]:
  """Evaluates one task.

  Args:
    task: One of `TASKS`.
    data: The dataset's `data` list; for "narrativeqa", question id ->
      reference answers.
    predictions: Question id -> answer text.

  Returns:
    The scores to print and the ids of questions without a prediction.

  Raises:
    DataError: The dataset is malformed.
    ValueError: Unknown task.
  """
  scores, missing_ids, _ = run_with_units(task, data, predictions)
  return scores, missing_ids


def run_with_units(
  task: str, data: Any, predictions: dict[str, str]
) -> tuple[dict[str, Any], tuple[str, ...], dict[str, dict[str, float]]]:
  """`run`, and the per-unit scores (in [0, 1]) its means average.

  Returns:
    The scores, the ids without a prediction, and metric -> unit id ->
    score: `exact_match` and `f1` by question (by original question for
    "adversarial"), `rouge_l` by question for "narrativeqa".

  Raises:
    DataError: The dataset is malformed.
    ValueError: Unknown task.
  """
  if task == "squad":
    result = squad.evaluate_with_details(data, predictions)
    units = {"exact_match": result.exact_match_by_id, "f1": result.f1_by_id}
  elif task == "adversarial":
    result = adversarial.evaluate_adversarial_with_details(data, predictions)
    units = {
      "exact_match": result.exact_match_by_original,
      "f1": result.f1_by_original,
    }
  elif task == "narrativeqa":
    result = narrativeqa.evaluate_with_details(data, predictions)
    units = {"rouge_l": result.rouge_l_by_id}
  else:
    raise ValueError(f"unknown task {task!r}; expected one of {TASKS}")
  return result.summary(), result.missing_ids, units


def _report_missing(
  missing_ids: Sequence[str], path: str | None = None
) -> None:
  if not missing_ids:
    return
  listed = ", ".join(missing_ids[:_MAX_LISTED_IDS])
  more = ", ..." if len(missing_ids) > _MAX_LISTED_IDS else ""
  where = f" in {path}" if path else ""
  print(
    f"{len(missing_ids)} unanswered question(s){where} will receive score "
    f"0: {listed}{more}",
    file=sys.stderr,
  )


def main(argv: Sequence[str]) -> int:
  if len(argv) != 3:
    print(
      "usage: python -m a2d_tf.evaluate DATASET_FILE PREDICTION_FILE "
      f"[--task={'|'.join(TASKS)}] [--split=test] "
      "[--compare_to=OTHER_PREDICTION_FILE]",
      file=sys.stderr,
    )
    return 2
  dataset_path, prediction_path = argv[1], argv[2]
  try:
    if _TASK.value == "narrativeqa":
      data = narrativeqa_data.read_references(dataset_path, _SPLIT.value)
    else:
      data, version = load_dataset(dataset_path)
      if version != EXPECTED_VERSION:
        print(
          f"Evaluation expects v-{EXPECTED_VERSION}, but got dataset with "
          f"v-{version}",
          file=sys.stderr,
        )
    predictions = load_predictions(prediction_path)
    other = (
      None if _COMPARE_TO.value is None else load_predictions(_COMPARE_TO.value)
    )
    scores, missing_ids, units = run_with_units(_TASK.value, data, predictions)
    if other is not None:
      other_scores, other_missing, other_units = run_with_units(
        _TASK.value, data, other
      )
  except InputError as e:
    print(f"error: {e}", file=sys.stderr)
    return 1
  except DataError as e:
    where = "" if e.path else f"dataset file {dataset_path}: "
    print(f"error: {where}{e}", file=sys.stderr)
    return 1
  _report_missing(missing_ids)
  if other is None:
    print(json.dumps(scores))
    return 0
  _report_missing(other_missing, _COMPARE_TO.value)
  print(
    json.dumps(
      {
        "scores": scores,
        "other_scores": other_scores,
        "difference": bootstrap.paired_intervals(
          units,
          other_units,
          num_resamples=_RESAMPLES.value,
          seed=_SEED.value,
          confidence=_CONFIDENCE.value,
        ),
      }
    )
  )
  return 0


if __name__ == "__main__":
  app.run(main)
