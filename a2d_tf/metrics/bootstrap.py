"""Paired bootstrap confidence intervals for differences between systems.

Two systems scored on the same questions differ by the mean of their
per-question score differences. Resampling the questions with replacement
(the same resample for both systems: paired) gives the sampling spread of
that mean; the percentile interval of the resampled means is the
confidence interval (Efron and Tibshirani 1993; Koehn 2004 for MT, Dror et
al. 2018 for NLP). A difference whose interval contains 0 is not resolved
by this evaluation set.

Units are questions for SQuAD-style sets and original questions for
adversarial sets (whose score per original is the worst case over its
variants), the units the reported means average over.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

DEFAULT_RESAMPLES = 1000
DEFAULT_CONFIDENCE = 0.95
# Resamples drawn per NumPy call: bounds memory at about 8 bytes x chunk x
# units (80 MB for full SQuAD dev).
_CHUNK = 1000


def paired_differences(
  a: Mapping[str, float], b: Mapping[str, float]
) -> np.ndarray:
  """Per-unit `a - b` in the key order of `a`.

  Raises:
    ValueError: If `a` and `b` do not score the same units, or none.
  """
  if set(a) != set(b):
    only_a = sorted(set(a) - set(b))[:3]
    only_b = sorted(set(b) - set(a))[:3]
    raise ValueError(
      "paired bootstrap needs both systems scored on the same units; "
      f"only in the first: {only_a}, only in the second: {only_b}"
    )
  if not a:
    raise ValueError("paired bootstrap needs at least one scored unit")
  return np.array([a[k] - b[k] for k in a], dtype=np.float64)


def paired_bootstrap_interval(
  a: Mapping[str, float],
  b: Mapping[str, float],
  num_resamples: int = DEFAULT_RESAMPLES,
  seed: int = 0,
  confidence: float = DEFAULT_CONFIDENCE,
) -> dict[str, float | int | list[float]]:
  """The percentile interval of `mean(a - b)`, in percentage points.

  Args:
    a: Unit id -> score in [0, 1] of the first system (e.g. F1 by question).
    b: Unit id -> score of the second system, same ids.
    num_resamples: Bootstrap resamples (>= 1).
    seed: Seed of the resampling (the same seed gives the same interval).
    confidence: Two-sided coverage in (0, 1), e.g. 0.95.

  Returns:
    `difference` (the observed mean difference x 100), `interval`
    (`[low, high]` x 100), `excludes_zero` (whether 0 lies outside the
    interval), `units`, `resamples`, `confidence`.

  Raises:
    ValueError: On mismatched or empty units, or a bad parameter.
  """
  if num_resamples < 1:
    raise ValueError(f"num_resamples must be >= 1, received: {num_resamples}")
  if not 0.0 < confidence < 1.0:
    raise ValueError(f"confidence must be in (0, 1), received: {confidence}")
  diffs = paired_differences(a, b)
  n = diffs.size
  rng = np.random.default_rng(seed)
  means = np.empty(num_resamples, dtype=np.float64)
  for begin in range(0, num_resamples, _CHUNK):
    size = min(_CHUNK, num_resamples - begin)
    idx = rng.integers(0, n, size=(size, n))
    means[begin : begin + size] = diffs[idx].mean(axis=1)
  tail = (1.0 - confidence) / 2.0
  low, high = np.quantile(means, [tail, 1.0 - tail])
  low, high = 100.0 * float(low), 100.0 * float(high)
  return {
    "difference": 100.0 * float(diffs.mean()),
    "interval": [low, high],
    "excludes_zero": bool(low > 0.0 or high < 0.0),
    "units": int(n),
    "resamples": int(num_resamples),
    "confidence": float(confidence),
  }


def paired_intervals(
  units: Mapping[str, Mapping[str, float]],
  other_units: Mapping[str, Mapping[str, float]],
  metrics: Sequence[str] | None = None,
  num_resamples: int = DEFAULT_RESAMPLES,
  seed: int = 0,
  confidence: float = DEFAULT_CONFIDENCE,
) -> dict[str, dict[str, float | int | list[float]]]:
  """`paired_bootstrap_interval` per metric, one system against another.

  Args:
    units: Metric -> unit id -> score of the first system.
    other_units: The same for the second system, on the same units.
    metrics: The metrics to compare (default: every metric of `units`).
    num_resamples: Bootstrap resamples.
    seed: Seed of the resampling (the same for every metric).
    confidence: Two-sided coverage.

  Returns:
    Metric -> the first system minus the second (`difference`, `interval`,
    `excludes_zero`, ...; points).

  Raises:
    ValueError: On mismatched or empty units, or a bad parameter.
  """
  return {
    metric: paired_bootstrap_interval(
      units[metric],
      other_units[metric],
      num_resamples=num_resamples,
      seed=seed,
      confidence=confidence,
    )
    for metric in (units if metrics is None else metrics)
  }
