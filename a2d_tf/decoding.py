"""Answer span decoding: the one decoder used by evaluation, knowledge
extraction and serving.

A span (k, l) of passage tokens scores p_start(k) * p_end(l) and is valid when
k <= l < k + max_answer_len and l < passage_len. `top_k_spans` (NumPy) and
`top_k_spans_tf` (TensorFlow, usable in a `tf.function` or SavedModel) return
the same spans and scores: the k best valid spans, distinct, by score
descending, ties broken by lower start then lower end, padded with span
(-1, -1) and score 0 when an example has fewer than k valid spans.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf


def _check_args(k: int, max_answer_len: int) -> None:
  if not isinstance(k, (int, np.integer)) or k < 1:
    raise ValueError(f"k must be a positive integer, got {k!r}")
  if not isinstance(max_answer_len, (int, np.integer)) or max_answer_len < 1:
    raise ValueError(
      f"max_answer_len must be a positive integer, got {max_answer_len!r}"
    )


def top_k_spans(
  start_probs: np.ndarray,
  end_probs: np.ndarray,
  passage_len: np.ndarray,
  k: int,
  max_answer_len: int,
) -> tuple[np.ndarray, np.ndarray]:
  """The k most probable answer spans of each example (NumPy).

  Scores are laid out as a band [batch, passage_len, max_answer_len] where
  cell (i, d) is span (i, i + d), so memory grows with max_answer_len, not
  with passage_len squared; the k best cells are found with a partial sort
  (`np.partition`), not a full sort.

  Args:
    start_probs: Start probabilities, [batch, passage_len].
    end_probs: End probabilities, [batch, passage_len].
    passage_len: Valid passage tokens per example, [batch]; positions at or
      beyond it are never part of a span.
    k: Number of spans to return per example.
    max_answer_len: Longest span in tokens.

  Returns:
    spans: int32 [batch, k, 2] of (start, end) token positions, inclusive;
      (-1, -1) where fewer than k spans are valid.
    scores: [batch, k] p_start * p_end in the probabilities' float dtype
      (at least float32); 0 for padding spans.

  Raises:
    ValueError: Shapes disagree, or k / max_answer_len is not positive.
  """
  _check_args(k, max_answer_len)
  start_probs = np.asarray(start_probs)
  end_probs = np.asarray(end_probs)
  passage_len = np.asarray(passage_len)
  if start_probs.ndim != 2 or start_probs.shape != end_probs.shape:
    raise ValueError(
      "start_probs and end_probs must both be [batch, passage_len], got "
      f"{start_probs.shape} and {end_probs.shape}"
    )
  batch, length = start_probs.shape
  if passage_len.shape != (batch,):
    raise ValueError(
      f"passage_len must be [batch] = [{batch}], got {passage_len.shape}"
    )
  dtype = np.result_type(start_probs.dtype, end_probs.dtype, np.float32)
  width = min(max_answer_len, length)
  num_cells = length * width
  lengths = np.clip(passage_len.astype(np.int64), 0, length)

  # Band layout: cell (i, d) holds span (i, i + d).
  starts = np.arange(length)[:, None]
  ends = starts + np.arange(width)[None, :]
  padded_end = np.concatenate(
    [end_probs.astype(dtype), np.zeros((batch, width), dtype)], axis=1
  )
  band_end = padded_end[:, np.minimum(ends, length)]
  band = start_probs.astype(dtype)[:, :, None] * band_end
  valid = ends[None, :, :] < lengths[:, None, None]
  # Flattened cell index i * width + d orders cells by (start, end); extra
  # invalid columns make room for k cells when the band has fewer.
  num_padded = max(num_cells, k)
  flat = np.full((batch, num_padded), -np.inf, dtype)
  flat[:, :num_cells] = np.where(valid, band, -np.inf).reshape(batch, num_cells)
  flat_valid = np.zeros((batch, num_padded), bool)
  flat_valid[:, :num_cells] = valid.reshape(batch, num_cells)

  # Keep exactly k cells per row: all above the k-th largest score, then the
  # lowest-index cells equal to it, so ties resolve like tf.math.top_k.
  kth = np.partition(flat, num_padded - k, axis=1)[:, num_padded - k]
  above = flat > kth[:, None]
  tied = flat == kth[:, None]
  room = k - above.sum(axis=1, keepdims=True)
  keep = above | (tied & (np.cumsum(tied, axis=1) <= room))
  picked = np.nonzero(keep)[1].reshape(batch, k)
  picked_scores = np.take_along_axis(flat, picked, axis=1)
  order = np.argsort(-picked_scores, axis=1, kind="stable")
  picked = np.take_along_axis(picked, order, axis=1)
  picked_scores = np.take_along_axis(picked_scores, order, axis=1)
  picked_valid = np.take_along_axis(flat_valid, picked, axis=1)

  span_starts = picked // max(width, 1)
  span_ends = span_starts + picked % max(width, 1)
  spans = np.stack([span_starts, span_ends], axis=-1)
  spans = np.where(picked_valid[..., None], spans, -1).astype(np.int32)
  scores = np.where(picked_valid, picked_scores, 0).astype(dtype)
  return spans, scores


def best_spans(
  start_probs: np.ndarray,
  end_probs: np.ndarray,
  passage_len: np.ndarray,
  max_answer_len: int,
) -> tuple[np.ndarray, np.ndarray]:
  """The most probable span of each example: `top_k_spans` with k = 1.

  Returns:
    spans: int32 [batch, 2]; scores: [batch].
  """
  spans, scores = top_k_spans(
    start_probs, end_probs, passage_len, 1, max_answer_len
  )
  return spans[:, 0], scores[:, 0]


# The name used in the shared contracts.
best_span = best_spans


def span_text(
  context: str,
  char_starts: np.ndarray,
  char_ends: np.ndarray,
  start: int,
  end: int,
) -> tuple[str, int, int]:
  """Maps a token span back to the original context substring.

  Args:
    context: The passage text.
    char_starts: Code-point offset where each passage token starts, [len].
    char_ends: Code-point offset just past each passage token, [len].
    start: First token of the span.
    end: Last token of the span (inclusive).

  Returns:
    The answer text `context[start_char:end_char]`, `start_char` and
    `end_char` (exclusive); ("", -1, -1) for the padding span (-1, -1).

  Raises:
    ValueError: The span is out of range, reversed, or maps outside context.
  """
  start, end = int(start), int(end)
  if start == -1 and end == -1:
    return "", -1, -1
  num_tokens = len(char_starts)
  if len(char_ends) != num_tokens:
    raise ValueError(
      f"char_starts and char_ends differ in length: {num_tokens} vs "
      f"{len(char_ends)}"
    )
  if not 0 <= start <= end < num_tokens:
    raise ValueError(f"span ({start}, {end}) is not within {num_tokens} tokens")
  start_char, end_char = int(char_starts[start]), int(char_ends[end])
  if not 0 <= start_char <= end_char <= len(context):
    raise ValueError(
      f"span ({start}, {end}) maps to characters [{start_char}, "
      f"{end_char}) outside a context of {len(context)} characters"
    )
  return context[start_char:end_char], start_char, end_char


def top_k_spans_tf(
  start_probs: tf.Tensor,
  end_probs: tf.Tensor,
  passage_len: tf.Tensor,
  k: int,
  max_answer_len: int,
) -> tuple[tf.Tensor, tf.Tensor]:
  """The k most probable answer spans of each example (TensorFlow).

  Same spans and scores as `top_k_spans`; works with dynamic batch and
  passage length inside a `tf.function` or SavedModel. Scores are the outer
  product p_start x p_end masked with a `tf.linalg.band_part` band and the
  valid-length mask, ranked with `tf.math.top_k`.

  Args:
    start_probs: float [batch, passage_len].
    end_probs: float [batch, passage_len].
    passage_len: int [batch] valid passage tokens.
    k: Number of spans per example (Python int).
    max_answer_len: Longest span in tokens (Python int).

  Returns:
    spans: int32 [batch, k, 2], (-1, -1) for padding.
    scores: [batch, k] in the probabilities' dtype, 0 for padding.
  """
  _check_args(k, max_answer_len)
  start_probs = tf.convert_to_tensor(start_probs)
  end_probs = tf.convert_to_tensor(end_probs, dtype=start_probs.dtype)
  dtype = start_probs.dtype
  batch = tf.shape(start_probs)[0]
  length = tf.shape(start_probs)[1]
  lengths = tf.minimum(tf.cast(passage_len, tf.int32), length)

  outer = start_probs[:, :, None] * end_probs[:, None, :]
  # band_part rejects a band wider than the matrix.
  num_upper = tf.minimum(max_answer_len - 1, tf.maximum(length - 1, 0))
  band = tf.linalg.band_part(
    tf.ones(tf.stack([length, length]), tf.int32), 0, num_upper
  )
  in_passage = tf.sequence_mask(lengths, length)
  valid = (
    tf.cast(band, tf.bool)[None, :, :]
    & in_passage[:, :, None]
    & in_passage[:, None, :]
  )
  neg_inf = tf.constant(-np.inf, dtype)
  flat_shape = tf.stack([batch, length * length])
  flat = tf.reshape(tf.where(valid, outer, neg_inf), flat_shape)
  flat_valid = tf.reshape(valid, flat_shape)
  # Extra invalid columns so top_k has at least k candidates.
  flat = tf.concat([flat, tf.fill(tf.stack([batch, k]), neg_inf)], axis=1)
  flat_valid = tf.concat(
    [flat_valid, tf.zeros(tf.stack([batch, k]), tf.bool)], axis=1
  )
  top_scores, top_index = tf.math.top_k(flat, k=k, sorted=True)
  top_valid = tf.gather(flat_valid, top_index, batch_dims=1)
  row = tf.maximum(length, 1)
  spans = tf.stack([top_index // row, top_index % row], axis=-1)
  spans = tf.where(top_valid[..., None], spans, -1)
  scores = tf.where(top_valid, top_scores, tf.zeros_like(top_scores))
  return tf.cast(spans, tf.int32), scores
