"""Tests of the knowledge diagnostics."""

import math

import numpy as np
import pytest

from a2d_tf import diagnostics


def test_sharpness_of_a_hand_made_row():
  row = np.array([0.5, 0.25, 0.25, 0.0])
  got = diagnostics.sharpness(row, gold=1)
  assert got["max_prob"] == pytest.approx(0.5)
  entropy = -(0.5 * math.log(0.5) + 2 * 0.25 * math.log(0.25))
  assert got["entropy"] == pytest.approx(entropy)
  assert got["gold_prob"] == pytest.approx(0.25)
  assert "gold_prob" not in diagnostics.sharpness(row, gold=-1)


def test_sharpness_refuses_an_empty_row():
  with pytest.raises(ValueError, match="non-empty"):
    diagnostics.sharpness(np.array([]))


def test_accumulated_scores_and_sharpness():
  acc = diagnostics.KnowledgeDiagnostics(num_teachers=2)
  one_hot = np.array([0.0, 1.0, 0.0])
  flat = np.array([1 / 3, 1 / 3, 1 / 3])
  acc.add(["in 1843", "London"], "1843", ["1843"], one_hot, one_hot, 1, 1)
  acc.add(["Ada", "Ada"], "Ada", ["Ada Lovelace"], flat, flat, 0, 2)
  # No gold answer: counts toward sharpness, not toward the scores.
  acc.add(["x", "y"], "x", [], flat, one_hot, None, None)
  result = acc.result()
  assert result["examples"] == 3
  t0, t1 = result["teachers"]
  # "in 1843" vs "1843": EM 0, F1 2/3; "Ada" vs "Ada Lovelace": F1 2/3.
  assert t0["exact_match"] == pytest.approx(0.0)
  assert t0["f1"] == pytest.approx(100 * (2 / 3 + 2 / 3) / 2)
  assert t1["f1"] == pytest.approx(100 * (0 + 2 / 3) / 2)
  assert result["ensemble"]["exact_match"] == pytest.approx(50.0)
  assert result["ensemble"]["f1"] == pytest.approx(100 * (1 + 2 / 3) / 2)
  assert result["mean_argmax_prob"] == pytest.approx(
    (1 + 1 + 3 * (1 / 3) + 1) / 6
  )
  assert result["mean_gold_prob"] == pytest.approx((1 + 1 + 1 / 3 + 1 / 3) / 4)
  assert result["mean_entropy"] == pytest.approx(3 * math.log(3) / 6)


def test_wrong_number_of_teacher_answers_is_refused():
  acc = diagnostics.KnowledgeDiagnostics(num_teachers=3)
  with pytest.raises(ValueError, match="3 teacher answers"):
    acc.add(["a"], "a", ["a"], np.ones(1), np.ones(1))


def test_empty_accumulator_reports_none():
  result = diagnostics.KnowledgeDiagnostics(num_teachers=1).result()
  assert result["examples"] == 0
  assert result["ensemble"]["f1"] is None and result["mean_entropy"] is None
