"""Adversarial SQuAD (AddSent / AddOneSent) worst-case exact match and F1.

An adversarial dataset holds the original questions plus variants whose
paragraph has a distracting sentence appended; a variant's id is the
original id plus a suffix (`<id>-high-conf-turk0`, `<id>-addsent`, ...).
Following Jia and Liang (2017), a model is scored per original question by
its worst score over the original and all of its variants, and EM / F1 are
the means of those worst scores over original questions.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from a2d_tf.metrics import squad


def original_id(question_id: str, known_ids: frozenset[str] | set[str]) -> str:
  """The id of the original question a (possibly adversarial) id belongs to.

  The original id is the shortest prefix of `question_id` that ends just
  before a `-` and is itself an id in `known_ids` (for SQuAD ids, the part
  before the first `-`); an id with no such prefix is its own original.

  Args:
    question_id: A question id.
    known_ids: All question ids of the dataset.

  Returns:
    The original question's id.
  """
  cut = question_id.find("-")
  while cut != -1:
    prefix = question_id[:cut]
    if prefix in known_ids:
      return prefix
    cut = question_id.find("-", cut + 1)
  return question_id


def group_by_original(question_ids: Iterable[str]) -> dict[str, list[str]]:
  """Groups ids by original question.

  Args:
    question_ids: All question ids of an adversarial dataset.

  Returns:
    Original id -> the ids in its group (the original first when present,
    then variants in input order), in order of first appearance.
  """
  ids = list(dict.fromkeys(question_ids))
  known = frozenset(ids)
  groups: dict[str, list[str]] = {}
  for qid in ids:
    root = original_id(qid, known)
    group = groups.setdefault(root, [])
    if qid == root:
      group.insert(0, qid)
    else:
      group.append(qid)
  return groups


@dataclasses.dataclass(frozen=True)
class AdversarialEvaluation:
  """Worst-case scores over original questions and their variants.

  Attributes:
    exact_match: Mean worst-case exact match in percent.
    f1: Mean worst-case F1 in percent.
    num_original: Number of original questions (groups).
    num_variants: Number of adversarial variants (ids that are not
      originals).
    exact_match_by_original: Original id -> worst exact match in [0, 1].
    f1_by_original: Original id -> worst F1 in [0, 1].
    missing_ids: Ids without a prediction (scored 0), in dataset order.
  """

  exact_match: float
  f1: float
  num_original: int
  num_variants: int
  exact_match_by_original: dict[str, float]
  f1_by_original: dict[str, float]
  missing_ids: tuple[str, ...]

  def summary(self) -> dict[str, float | int]:
    """`{"exact_match", "f1", "num_original", "num_variants"}`."""
    return {
      "exact_match": self.exact_match,
      "f1": self.f1,
      "num_original": self.num_original,
      "num_variants": self.num_variants,
    }


def evaluate_adversarial_with_details(
  dataset: Sequence[Any], predictions: Mapping[str, str]
) -> AdversarialEvaluation:
  """Worst-case evaluation of predictions on an adversarial SQuAD dataset.

  Each question is scored with the official SQuAD v1.1 metrics (missing
  predictions score 0); exact match and F1 are minimised separately over
  each original question's group.

  Args:
    dataset: The `data` list of the adversarial dataset JSON.
    predictions: Question id -> predicted answer text.

  Returns:
    An `AdversarialEvaluation`.

  Raises:
    DataError: The dataset is malformed.
    TypeError: A prediction is not a string.
  """
  details = squad.evaluate_with_details(dataset, predictions)
  groups = group_by_original(details.exact_match_by_id)
  em_by_original = {
    root: min(details.exact_match_by_id[qid] for qid in ids)
    for root, ids in groups.items()
  }
  f1_by_original = {
    root: min(details.f1_by_id[qid] for qid in ids)
    for root, ids in groups.items()
  }
  num_original = len(groups)
  return AdversarialEvaluation(
    exact_match=100.0 * sum(em_by_original.values()) / num_original,
    f1=100.0 * sum(f1_by_original.values()) / num_original,
    num_original=num_original,
    num_variants=sum(len(ids) for ids in groups.values()) - num_original,
    exact_match_by_original=em_by_original,
    f1_by_original=f1_by_original,
    missing_ids=details.missing_ids,
  )


def evaluate_adversarial(
  dataset: Sequence[Any], predictions: Mapping[str, str]
) -> dict[str, float | int]:
  """`{"exact_match", "f1", "num_original", "num_variants"}`; see above."""
  return evaluate_adversarial_with_details(dataset, predictions).summary()
