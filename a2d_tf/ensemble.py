"""The teacher ensemble's knowledge, as pure functions of tensors and texts.

What the A2D student learns from, per example (`losses.py` holds what it
does with it):

* `ensemble_probs`: the arithmetic mean over the teachers of their masked
  `softmax(logits / tau)` (a mean of probabilities, never of logits); at
  tau = 1 it is also the ensemble's own prediction (`inference`).
* `ensemble_attention`: the arithmetic mean over the teachers of their
  interactive-alignment distributions `[hops, passage_len, question_len]`.
* `select_confusing_span`: among every teacher's top-K spans (the
  evaluation decoder at tau = 1, confidence `p_start * p_end`), the most
  confident span whose SQuAD token F1 is 0 against every gold answer;
  `NO_SPAN` (-1, -1) when no such span exists.

`materialize` applies them to a split in an Apache Beam pipeline and
`data.knowledge` stores the result beside the features.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from a2d_tf import masking
from a2d_tf.metrics import squad

NO_SPAN = (-1, -1)


def ensemble_probs(
  logits: Sequence[tf.Tensor | np.ndarray],
  mask: tf.Tensor | np.ndarray,
  temperature: float,
) -> tf.Tensor:
  """Mean over teachers of their softened, masked distributions.

  Args:
    logits: One `[batch, passage_len]` score tensor per teacher.
    mask: `[batch, passage_len]`, true at valid passage positions.
    temperature: tau; each teacher's distribution is `softmax(logits / tau)`.

  Returns:
    float32 `[batch, passage_len]`: the arithmetic mean of the teachers'
    probabilities (not the softmax of their mean logits); rows sum to 1 over
    valid positions and are 0 at padding.
  """
  if not logits:
    raise ValueError("ensemble_probs needs at least one teacher, got none.")
  if temperature <= 0:
    raise ValueError(f"temperature must be positive, got {temperature}.")
  probs = [
    masking.masked_softmax(x, mask, temperature=temperature) for x in logits
  ]
  return tf.add_n(probs) / float(len(probs))


def ensemble_attention(
  attentions: Sequence[tf.Tensor | np.ndarray],
) -> tf.Tensor:
  """Mean over teachers of their alignment distributions.

  Args:
    attentions: One `[batch, hops, passage_len, question_len]` tensor per
      teacher (rows sum to 1 over valid question words, padded rows 0).

  Returns:
    float32 `[batch, hops, passage_len, question_len]`, the arithmetic mean;
    it keeps the row sums and the zero padding of the inputs.
  """
  if not attentions:
    raise ValueError("ensemble_attention needs at least one teacher, got none.")
  stacked = [tf.cast(a, tf.float32) for a in attentions]
  return tf.add_n(stacked) / float(len(stacked))


def select_confusing_span(
  teacher_spans: np.ndarray,
  teacher_scores: np.ndarray,
  span_texts: Sequence[Sequence[str | None]],
  gold_answers: Sequence[str],
) -> tuple[int, int]:
  """The most confident teacher span that shares no token with any answer.

  Args:
    teacher_spans: int `[teachers, k, 2]` token spans (start, end) per teacher
      from `decoding.top_k_spans`; -1 marks padding.
    teacher_scores: float `[teachers, k]` confidences `p_start * p_end`.
    span_texts: `[teachers][k]` answer texts of the spans (None or anything
      for padding spans, which are skipped).
    gold_answers: Every gold answer text of the example.

  Returns:
    `(start, end)` of the span with the highest confidence, over all teachers,
    whose SQuAD token F1 (official normalization) is 0 against every gold
    answer; `NO_SPAN` (-1, -1) when every span overlaps some answer, when
    there are no spans, or when the example has no gold answer (nothing to be
    confused with).
  """
  spans = np.asarray(teacher_spans).reshape(-1, 2)
  scores = np.asarray(teacher_scores, dtype=np.float64).reshape(-1)
  texts = [t for row in span_texts for t in row]
  if not (len(spans) == len(scores) == len(texts)):
    raise ValueError(
      f"Got {len(spans)} spans, {len(scores)} scores and {len(texts)} "
      "texts; expected one score and one text per span."
    )
  if not gold_answers:
    return NO_SPAN
  best, best_score = NO_SPAN, -np.inf
  for (start, end), score, text in zip(spans, scores, texts, strict=True):
    if start < 0 or end < 0 or score <= best_score:
      continue
    if all(squad.f1_score(text, gold) == 0 for gold in gold_answers):
      best, best_score = (int(start), int(end)), score
  return best
