"""Tests for the synthetic corpus' type-matching baseline."""

from __future__ import annotations

import pytest

from a2d_tf.data import synthetic, synthetic_baseline
from a2d_tf.metrics import squad


@pytest.fixture(scope="module")
def corpus():
  return synthetic.generate_corpus(12, 30, 13)


def _mean_f1(records, predictions) -> float:
  """Official SQuAD v1.1 token F1, in percent, over `records`."""
  total = sum(
    max(squad.f1_score(predictions[r.id], a.text) for a in r.answers)
    for r in records
  )
  return 100 * total / len(records)


def test_expected_answer_type_matches_gold_type(corpus):
  for record in corpus["train"] + corpus["dev"]:
    (gold,) = synthetic.entity_mentions(record.answers[0].text)
    assert synthetic_baseline.expected_answer_type(record.question) == gold.kind


def test_type_matching_baseline_scores_low_on_dev(corpus):
  dev = corpus["dev"]
  predictions = synthetic_baseline.type_matching_baseline(dev)
  assert set(predictions) == {r.id for r in dev}
  gold = {r.id: r.answers[0].text for r in dev}
  # It always answers with an entity of the right type ...
  for record in dev:
    (gold_mention,) = synthetic.entity_mentions(gold[record.id])
    (predicted,) = synthetic.entity_mentions(predictions[record.id])
    assert predicted.kind == gold_mention.kind
  # ... but without the relation it is mostly wrong.
  assert _mean_f1(dev, predictions) < 45.0
  assert _mean_f1(dev, gold) == 100.0


def test_type_matching_baseline_word_anchors_below_gold(corpus):
  predictions = synthetic_baseline.type_matching_baseline(
    corpus["dev"], "words"
  )
  assert _mean_f1(corpus["dev"], predictions) < 50.0


def test_type_matching_baseline_bad_anchors_raises():
  with pytest.raises(ValueError, match="anchors"):
    synthetic_baseline.type_matching_baseline([], anchors="relations")
