"""Tests of the paired bootstrap intervals."""

import numpy as np
import pytest

from a2d_tf.metrics import bootstrap


def test_interval_of_hand_made_case_matches_numpy_resampling():
  # Two systems on five questions: a beats b on q1 and q2 only.
  a = {"q1": 1.0, "q2": 1.0, "q3": 0.5, "q4": 0.0, "q5": 1.0}
  b = {"q1": 0.0, "q2": 0.5, "q3": 0.5, "q4": 0.0, "q5": 1.0}
  result = bootstrap.paired_bootstrap_interval(a, b, num_resamples=500, seed=3)
  diffs = np.array([1.0, 0.5, 0.0, 0.0, 0.0])
  rng = np.random.default_rng(3)
  means = diffs[rng.integers(0, 5, size=(500, 5))].mean(axis=1)
  low, high = np.quantile(means, [0.025, 0.975])
  assert result["difference"] == pytest.approx(30.0)
  assert result["interval"] == pytest.approx([100 * low, 100 * high])
  assert result["units"] == 5 and result["resamples"] == 500
  # Resampling five questions can draw only ties: the interval reaches 0.
  assert result["interval"][0] == pytest.approx(0.0)
  assert result["excludes_zero"] is False


def test_interval_excludes_zero_for_a_consistent_difference():
  a = {f"q{i}": 1.0 for i in range(200)}
  b = {f"q{i}": float(i % 4 == 0) for i in range(200)}
  result = bootstrap.paired_bootstrap_interval(a, b, seed=0)
  low, high = result["interval"]
  assert 0.0 < low < result["difference"] < high <= 100.0
  assert result["excludes_zero"] is True
  assert result["difference"] == pytest.approx(75.0)


def test_interval_is_seeded_and_symmetric_under_swap():
  rng = np.random.default_rng(1)
  a = {f"q{i}": float(v) for i, v in enumerate(rng.random(300))}
  b = {f"q{i}": float(v) for i, v in enumerate(rng.random(300))}
  first = bootstrap.paired_bootstrap_interval(a, b, seed=7)
  again = bootstrap.paired_bootstrap_interval(a, b, seed=7)
  swapped = bootstrap.paired_bootstrap_interval(b, a, seed=7)
  assert first == again
  assert swapped["interval"] == pytest.approx(
    [-first["interval"][1], -first["interval"][0]]
  )


def test_chunked_resampling_covers_every_resample():
  a = {f"q{i}": float(i % 2) for i in range(10)}
  b = dict.fromkeys(a, 0.0)
  result = bootstrap.paired_bootstrap_interval(a, b, num_resamples=2500)
  assert result["resamples"] == 2500
  assert 0.0 <= result["interval"][0] <= 50.0 <= result["interval"][1]


@pytest.mark.parametrize(
  "a, b, message",
  [
    ({"q1": 1.0}, {"q2": 1.0}, "same units"),
    ({}, {}, "at least one"),
  ],
)
def test_mismatched_or_empty_units_are_refused(a, b, message):
  with pytest.raises(ValueError, match=message):
    bootstrap.paired_bootstrap_interval(a, b)


def test_bad_parameters_are_refused():
  a = {"q1": 1.0}
  with pytest.raises(ValueError, match="num_resamples"):
    bootstrap.paired_bootstrap_interval(a, a, num_resamples=0)
  with pytest.raises(ValueError, match="confidence"):
    bootstrap.paired_bootstrap_interval(a, a, confidence=1.0)
