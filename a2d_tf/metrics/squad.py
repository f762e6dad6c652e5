"""SQuAD v1.1 exact match and F1, with the official script's semantics.

`normalize_answer`, `f1_score`, `exact_match_score`,
`metric_max_over_ground_truths` and `evaluate` give the same numbers as the
official `evaluate-v1.1.py`, including its quirks: punctuation is
`string.punctuation` only (ASCII), removed before articles, so "the-end"
becomes "theend"; an answer that normalizes to nothing matches an empty
prediction exactly but has F1 0.

Unlike the official script, the functions here never print: questions
without a prediction score 0 and are returned in `Evaluation.missing_ids`
for the caller to report, and a malformed dataset raises `DataError` naming
the offending entry instead of a `KeyError`; so does a question id that
occurs twice (the official script scores it twice), naming both places.
"""

from __future__ import annotations

import collections
import dataclasses
import re
import string
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from a2d_tf.data.records import DataError

_PUNCTUATION = frozenset(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize_answer(s: str) -> str:
  """Lowercases, drops punctuation and articles, collapses whitespace."""
  text = s.lower()
  text = "".join(ch for ch in text if ch not in _PUNCTUATION)
  text = _ARTICLES.sub(" ", text)
  return " ".join(text.split())


def f1_score(prediction: str, ground_truth: str) -> float:
  """Token-level F1 of the normalized prediction against one gold answer."""
  prediction_tokens = normalize_answer(prediction).split()
  ground_truth_tokens = normalize_answer(ground_truth).split()
  common = collections.Counter(prediction_tokens) & collections.Counter(
    ground_truth_tokens
  )
  num_same = sum(common.values())
  if num_same == 0:
    return 0
  precision = 1.0 * num_same / len(prediction_tokens)
  recall = 1.0 * num_same / len(ground_truth_tokens)
  return (2 * precision * recall) / (precision + recall)


def exact_match_score(prediction: str, ground_truth: str) -> bool:
  """Whether prediction and gold answer are equal after normalization."""
  return normalize_answer(prediction) == normalize_answer(ground_truth)


def metric_max_over_ground_truths(
  metric_fn: Callable[[str, str], float],
  prediction: str,
  ground_truths: Sequence[str],
) -> float:
  """The best score of `prediction` over all gold answers."""
  return max(metric_fn(prediction, gt) for gt in ground_truths)


@dataclasses.dataclass(frozen=True)
class Question:
  """One question of a SQuAD-format dataset, as the metrics need it.

  Attributes:
    id: The question id.
    question: The question text ("" when the dataset has none).
    ground_truths: Gold answer texts, at least one.
  """

  id: str
  question: str
  ground_truths: tuple[str, ...]


def _require(container: Any, key: str, kind: type, where: str, qid: str = ""):
  if not isinstance(container, dict) or key not in container:
    raise DataError(f"missing at {where}", record_id=qid, field=key)
  value = container[key]
  if not isinstance(value, kind):
    raise DataError(
      f"expected {kind.__name__}, got {type(value).__name__} at {where}",
      record_id=qid,
      field=key,
    )
  return value


def iter_questions(dataset: Sequence[Any]) -> Iterator[Question]:
  """Yields the questions of the `data` list of a SQuAD v1.1 JSON file.

  Args:
    dataset: The `data` list: articles with `paragraphs`, each with `qas`,
      each with `id` and `answers` (dicts with `text`).

  Yields:
    `Question`s in file order.

  Raises:
    DataError: An entry lacks a field, has the wrong type, a question has
      no gold answer, or two questions share an id (the official script
      would count such a question twice); the message names the entry, or
      both entries.
  """
  if not isinstance(dataset, list):
    raise DataError(
      f"expected a list of articles, got {type(dataset).__name__}",
      field="data",
    )
  seen: dict[str, str] = {}
  for a, article in enumerate(dataset):
    paragraphs = _require(article, "paragraphs", list, f"data[{a}]")
    for p, paragraph in enumerate(paragraphs):
      where = f"data[{a}].paragraphs[{p}]"
      qas = _require(paragraph, "qas", list, where)
      for q, qa in enumerate(qas):
        qa_where = f"{where}.qas[{q}]"
        qid = _require(qa, "id", str, qa_where)
        if qid in seen:
          raise DataError(
            f"duplicate id (first at {seen[qid]}, again at {qa_where})",
            record_id=qid,
            field="id",
          )
        seen[qid] = qa_where
        answers = _require(qa, "answers", list, qa_where, qid)
        if not answers:
          raise DataError(
            f"no gold answer at {qa_where}", record_id=qid, field="answers"
          )
        texts = tuple(
          _require(ans, "text", str, f"{qa_where}.answers[{i}]", qid)
          for i, ans in enumerate(answers)
        )
        question = qa.get("question", "")
        yield Question(
          id=qid,
          question=question if isinstance(question, str) else "",
          ground_truths=texts,
        )


@dataclasses.dataclass(frozen=True)
class Evaluation:
  """Aggregate and per-question SQuAD scores.

  Attributes:
    exact_match: Exact match in percent over all questions of the dataset.
    f1: F1 in percent over all questions of the dataset.
    total: Number of questions (occurrences, as the official script counts).
    exact_match_by_id: Question id -> exact match in [0, 1]; 0 when missing.
    f1_by_id: Question id -> F1 in [0, 1]; 0 when missing.
    missing_ids: Ids without a prediction, in dataset order.
  """

  exact_match: float
  f1: float
  total: int
  exact_match_by_id: dict[str, float]
  f1_by_id: dict[str, float]
  missing_ids: tuple[str, ...]

  def summary(self) -> dict[str, float]:
    """The official script's output: `{"exact_match": .., "f1": ..}`."""
    return {"exact_match": self.exact_match, "f1": self.f1}


def evaluate_with_details(
  dataset: Sequence[Any], predictions: Mapping[str, str]
) -> Evaluation:
  """Scores predictions against a SQuAD v1.1 dataset, keeping per-id scores.

  Args:
    dataset: The `data` list of the dataset JSON.
    predictions: Question id -> predicted answer text. Ids not in the
      dataset are ignored, as in the official script.

  Returns:
    An `Evaluation`; questions without a prediction score 0.

  Raises:
    DataError: The dataset is malformed (see `iter_questions`).
    TypeError: A prediction is not a string.
  """
  exact_match = f1 = 0.0
  total = 0
  em_by_id: dict[str, float] = {}
  f1_by_id: dict[str, float] = {}
  missing = []
  for question in iter_questions(dataset):
    total += 1
    if question.id not in predictions:
      missing.append(question.id)
      em_by_id[question.id] = 0.0
      f1_by_id[question.id] = 0.0
      continue
    prediction = predictions[question.id]
    if not isinstance(prediction, str):
      raise TypeError(
        f"prediction for {question.id!r} must be a string, got "
        f"{type(prediction).__name__}"
      )
    em = float(
      metric_max_over_ground_truths(
        exact_match_score, prediction, question.ground_truths
      )
    )
    f1_value = float(
      metric_max_over_ground_truths(
        f1_score, prediction, question.ground_truths
      )
    )
    exact_match += em
    f1 += f1_value
    em_by_id[question.id] = em
    f1_by_id[question.id] = f1_value
  if total == 0:
    raise DataError("the dataset has no questions", field="data")
  return Evaluation(
    exact_match=100.0 * exact_match / total,
    f1=100.0 * f1 / total,
    total=total,
    exact_match_by_id=em_by_id,
    f1_by_id=f1_by_id,
    missing_ids=tuple(missing),
  )


def evaluate(
  dataset: Sequence[Any], predictions: Mapping[str, str]
) -> dict[str, float]:
  """The official `evaluate`: `{"exact_match": pct, "f1": pct}`.

  Args:
    dataset: The `data` list of the dataset JSON.
    predictions: Question id -> predicted answer text.

  Returns:
    Exact match and F1 in percent; missing predictions score 0.
  """
  return evaluate_with_details(dataset, predictions).summary()
