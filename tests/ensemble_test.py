"""Tests for a2d_tf.ensemble: ensemble distributions and confusing answers,
against NumPy."""

from __future__ import annotations

import numpy as np
import pytest

from a2d_tf import ensemble
from a2d_tf.metrics import squad


def _softmax(x):
  e = np.exp(x - np.max(x, axis=-1, keepdims=True))
  return e / e.sum(axis=-1, keepdims=True)


def test_ensemble_probs_mean_of_probabilities_not_of_logits():
  t1 = np.array([[0.0, 0.0, 4.0]], np.float32)
  t2 = np.array([[0.0, 4.0, 0.0]], np.float32)
  mask = np.array([[True, True, True]])
  got = ensemble.ensemble_probs([t1, t2], mask, temperature=1.0).numpy()
  want = (_softmax(t1) + _softmax(t2)) / 2
  of_mean_logits = _softmax((t1 + t2) / 2)
  np.testing.assert_allclose(got, want, rtol=1e-6)
  # The two readings differ a lot on this case (0.018 vs 0.063).
  assert abs(got[0, 0] - of_mean_logits[0, 0]) > 0.04


def test_ensemble_probs_temperature_and_mask():
  t1 = np.array([[1.0, 3.0, 50.0], [2.0, 0.0, 0.0]], np.float32)
  t2 = np.array([[3.0, 1.0, 50.0], [0.0, 2.0, 0.0]], np.float32)
  mask = np.array([[True, True, False], [True, True, True]])
  got = ensemble.ensemble_probs([t1, t2], mask, temperature=2.0).numpy()
  row0 = (_softmax(t1[0, :2] / 2) + _softmax(t2[0, :2] / 2)) / 2
  row1 = (_softmax(t1[1] / 2) + _softmax(t2[1] / 2)) / 2
  np.testing.assert_allclose(got[0, :2], row0, rtol=1e-6)
  assert got[0, 2] == 0.0
  np.testing.assert_allclose(got[1], row1, rtol=1e-6)
  np.testing.assert_allclose(got.sum(-1), [1.0, 1.0], rtol=1e-6)


def test_ensemble_probs_rejects_bad_temperature():
  with pytest.raises(ValueError, match="temperature must be positive, got 0"):
    ensemble.ensemble_probs([np.zeros([1, 2])], np.ones([1, 2]), 0.0)


def test_ensemble_attention_mean_keeps_rows_and_padding():
  rng = np.random.default_rng(0)
  q_mask = np.array([True, True, False])
  atts = []
  for _ in range(3):
    att = _softmax(rng.normal(size=[1, 2, 4, 3]) + np.where(q_mask, 0, -1e9))
    att[:, :, 3] = 0.0  # padded passage row
    atts.append(att.astype(np.float32))
  got = ensemble.ensemble_attention(atts).numpy()
  np.testing.assert_allclose(got, np.mean(atts, axis=0), rtol=1e-6)
  np.testing.assert_allclose(got[:, :, :3].sum(-1), 1.0, rtol=1e-6)
  assert not got[:, :, 3].any() and not got[..., 2].any()


def _select(spans, scores, texts, gold):
  return ensemble.select_confusing_span(
    np.array(spans), np.array(scores), texts, gold
  )


def test_select_confusing_span_none_when_all_overlap():
  spans = [[[0, 1], [0, 0]], [[1, 1], [-1, -1]]]
  scores = [[0.5, 0.2], [0.4, 0.0]]
  texts = [["the Eiffel Tower", "the"], ["Eiffel", None]]
  # "the" normalizes to nothing, so it shares no token with the answer...
  assert _select(spans, scores, texts, ["Eiffel Tower"]) == (0, 0)
  # ...and without it every span overlaps.
  spans[0][1], texts[0][1] = [1, 2], "Tower ."
  assert _select(spans, scores, texts, ["Eiffel Tower"]) == ensemble.NO_SPAN


def test_select_confusing_span_highest_confidence_across_teachers():
  spans = [[[0, 0], [5, 6], [9, 9]], [[0, 0], [3, 3], [5, 6]]]
  scores = [[0.6, 0.1, 0.05], [0.5, 0.3, 0.1]]
  texts = [["Paris", "in 1889", "Gustave"], ["Paris", "France", "in 1889"]]
  # Teacher 1's rank-2 span beats teacher 0's non-overlapping spans.
  assert _select(spans, scores, texts, ["Paris"]) == (3, 3)


def test_select_confusing_span_f1_against_every_gold_answer():
  spans = [[[0, 0], [3, 3], [5, 6]]]
  scores = [[0.6, 0.3, 0.1]]
  texts = [["Paris", "France", "in 1889"]]
  # "France" overlaps the second gold answer, so the 0.1 span is chosen.
  gold = ["Paris", "Paris, France"]
  assert _select(spans, scores, texts, gold) == (5, 6)
  assert all(squad.f1_score("in 1889", g) == 0 for g in gold)


def test_select_confusing_span_none_without_gold_or_spans():
  spans = [[[0, 0], [-1, -1]]]
  scores = [[0.6, 0.0]]
  assert _select(spans, scores, [["Paris", None]], []) == ensemble.NO_SPAN
  assert _select([[[-1, -1]]], [[0.0]], [[None]], ["Rome"]) == ensemble.NO_SPAN


def test_select_confusing_span_rejects_mismatched_texts():
  with pytest.raises(ValueError, match="2 spans, 2 scores and 1 texts"):
    _select([[[0, 0], [1, 1]]], [[0.5, 0.4]], [["Paris"]], ["Rome"])
