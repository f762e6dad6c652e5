"""Tests for a2d_tf.decoding (NumPy and TensorFlow span decoders)."""

import numpy as np
import pytest
import tensorflow as tf

from a2d_tf import decoding


def _brute_force(start_probs, end_probs, passage_len, k, max_answer_len):
  """Reference: enumerate every valid span, sort, pad."""
  batch = start_probs.shape[0]
  spans = np.full((batch, k, 2), -1, np.int32)
  scores = np.zeros((batch, k), start_probs.dtype)
  for b in range(batch):
    n = min(int(passage_len[b]), start_probs.shape[1])
    cands = [
      (start_probs[b, i] * end_probs[b, j], i, j)
      for i in range(n)
      for j in range(i, min(i + max_answer_len, n))
    ]
    cands.sort(key=lambda c: (-c[0], c[1], c[2]))
    for r, (score, i, j) in enumerate(cands[:k]):
      spans[b, r] = (i, j)
      scores[b, r] = score
  return spans, scores


def _random_probs(rng, batch, length):
  lengths = rng.integers(0, length + 1, size=batch)
  lengths[0] = length
  logits = rng.normal(size=(2, batch, length)).astype(np.float32)
  mask = np.arange(length)[None, :] < lengths[:, None]
  logits = np.where(mask[None], logits, -1e9)
  probs = np.exp(logits - logits.max(-1, keepdims=True))
  probs = probs / probs.sum(-1, keepdims=True)
  return probs[0].astype(np.float32), probs[1].astype(np.float32), lengths


@pytest.mark.parametrize(
  "seed, batch, length, k, max_len",
  [
    (0, 4, 12, 5, 4),
    (1, 3, 7, 40, 3),
    (2, 5, 20, 1, 15),
    (3, 2, 6, 10, 30),
    (4, 3, 9, 3, 1),
  ],
)
def test_top_k_spans_matches_brute_force(seed, batch, length, k, max_len):
  rng = np.random.default_rng(seed)
  start, end, lengths = _random_probs(rng, batch, length)
  spans, scores = decoding.top_k_spans(start, end, lengths, k, max_len)
  want_spans, want_scores = _brute_force(start, end, lengths, k, max_len)
  assert spans.shape == (batch, k, 2) and spans.dtype == np.int32
  assert scores.shape == (batch, k) and scores.dtype == np.float32
  np.testing.assert_array_equal(spans, want_spans)
  np.testing.assert_array_equal(scores, want_scores)


def test_top_k_spans_respects_max_answer_len_and_padding():
  # The best unconstrained span (0, 3) is 4 tokens long; position 4 is
  # padding with the highest probabilities of all.
  start = np.array([[0.5, 0.01, 0.01, 0.01, 0.9]], np.float32)
  end = np.array([[0.0, 0.1, 0.1, 0.6, 0.9]], np.float32)
  spans, scores = decoding.top_k_spans(start, end, np.array([4]), 2, 3)
  # (0, 1) and (0, 2) tie at 0.05: the lower end comes first.
  np.testing.assert_array_equal(spans[0], [[0, 1], [0, 2]])
  np.testing.assert_allclose(scores[0], [0.05, 0.05])
  assert (spans[..., 1] - spans[..., 0] < 3).all()
  assert (spans < 4).all()


def test_top_k_spans_pads_when_fewer_valid_spans():
  start = np.full((2, 4), 0.25, np.float32)
  end = np.full((2, 4), 0.25, np.float32)
  spans, scores = decoding.top_k_spans(start, end, np.array([2, 0]), 5, 10)
  # Length 2 has spans (0,0), (0,1), (1,1); ties resolve by start, end.
  np.testing.assert_array_equal(
    spans[0], [[0, 0], [0, 1], [1, 1], [-1, -1], [-1, -1]]
  )
  np.testing.assert_allclose(scores[0], [0.0625] * 3 + [0, 0])
  np.testing.assert_array_equal(spans[1], np.full((5, 2), -1))
  np.testing.assert_array_equal(scores[1], np.zeros(5))


def test_top_k_spans_spans_are_distinct_and_sorted():
  rng = np.random.default_rng(7)
  start, end, lengths = _random_probs(rng, 3, 15)
  spans, scores = decoding.top_k_spans(start, end, lengths, 20, 5)
  for b in range(3):
    valid = spans[b, :, 0] >= 0
    assert len({tuple(s) for s in spans[b, valid]}) == valid.sum()
    assert (np.diff(scores[b]) <= 0).all()


def test_best_spans_is_top_one():
  rng = np.random.default_rng(3)
  start, end, lengths = _random_probs(rng, 4, 10)
  spans, scores = decoding.best_spans(start, end, lengths, 4)
  top_spans, top_scores = decoding.top_k_spans(start, end, lengths, 1, 4)
  np.testing.assert_array_equal(spans, top_spans[:, 0])
  np.testing.assert_array_equal(scores, top_scores[:, 0])
  assert decoding.best_span is decoding.best_spans


@pytest.mark.parametrize(
  "kwargs, message",
  [
    ({"k": 0}, "k must be"),
    ({"max_answer_len": 0}, "max_answer_len must be"),
    ({"passage_len": np.array([1, 2])}, "passage_len must be"),
    ({"end_probs": np.zeros((1, 3))}, "start_probs and end_probs"),
  ],
)
def test_top_k_spans_bad_arguments_raise(kwargs, message):
  args = {
    "start_probs": np.zeros((1, 4)),
    "end_probs": np.zeros((1, 4)),
    "passage_len": np.array([4]),
    "k": 2,
    "max_answer_len": 3,
    **kwargs,
  }
  with pytest.raises(ValueError, match=message):
    decoding.top_k_spans(**args)


def test_span_text_maps_tokens_to_context_substring():
  context = "Le «Café» de Zoë, 1889."
  # Tokens: Le « Café » de Zoë , 1889 .
  char_starts = np.array([0, 3, 4, 8, 10, 13, 16, 18, 22])
  char_ends = np.array([2, 4, 8, 9, 12, 16, 17, 22, 23])
  assert decoding.span_text(context, char_starts, char_ends, 1, 3) == (
    "«Café»",
    3,
    9,
  )
  assert decoding.span_text(context, char_starts, char_ends, 5, 7) == (
    "Zoë, 1889",
    13,
    22,
  )
  assert decoding.span_text(context, char_starts, char_ends, -1, -1) == (
    "",
    -1,
    -1,
  )


@pytest.mark.parametrize("start, end", [(3, 2), (0, 9), (-1, 0)])
def test_span_text_invalid_span_raises(start, end):
  with pytest.raises(ValueError, match="span"):
    decoding.span_text("a b c", [0, 2, 4], [1, 3, 5], start, end)


@pytest.mark.parametrize(
  "seed, batch, length, k, max_len",
  [(10, 4, 12, 5, 4), (11, 3, 5, 20, 3), (12, 2, 9, 1, 30)],
)
def test_top_k_spans_tf_agrees_with_numpy(seed, batch, length, k, max_len):
  rng = np.random.default_rng(seed)
  start, end, lengths = _random_probs(rng, batch, length)

  @tf.function(
    input_signature=[
      tf.TensorSpec([None, None], tf.float32),
      tf.TensorSpec([None, None], tf.float32),
      tf.TensorSpec([None], tf.int32),
    ]
  )
  def decode(s, e, n):
    return decoding.top_k_spans_tf(s, e, n, k, max_len)

  tf_spans, tf_scores = decode(start, end, lengths.astype(np.int32))
  np_spans, np_scores = decoding.top_k_spans(start, end, lengths, k, max_len)
  assert tf_spans.dtype == tf.int32
  np.testing.assert_array_equal(tf_spans.numpy(), np_spans)
  np.testing.assert_array_equal(tf_scores.numpy(), np_scores)


def test_top_k_spans_tf_ties_and_empty_passages_match_numpy():
  start = np.full((3, 4), 0.25, np.float32)
  end = np.full((3, 4), 0.25, np.float32)
  lengths = np.array([4, 1, 0])
  tf_spans, tf_scores = decoding.top_k_spans_tf(start, end, lengths, 6, 2)
  np_spans, np_scores = decoding.top_k_spans(start, end, lengths, 6, 2)
  np.testing.assert_array_equal(tf_spans.numpy(), np_spans)
  np.testing.assert_array_equal(tf_scores.numpy(), np_scores)


def test_top_k_spans_tf_survives_saved_model(tmp_path):
  module = tf.Module()
  module.decode = tf.function(
    lambda s, e, n: decoding.top_k_spans_tf(s, e, n, 3, 4),
    input_signature=[
      tf.TensorSpec([None, None], tf.float32),
      tf.TensorSpec([None, None], tf.float32),
      tf.TensorSpec([None], tf.int64),
    ],
  )
  tf.saved_model.save(module, str(tmp_path))
  restored = tf.saved_model.load(str(tmp_path))
  rng = np.random.default_rng(5)
  start, end, lengths = _random_probs(rng, 2, 8)
  spans, scores = restored.decode(start, end, lengths.astype(np.int64))
  np_spans, np_scores = decoding.top_k_spans(start, end, lengths, 3, 4)
  np.testing.assert_array_equal(spans.numpy(), np_spans)
  np.testing.assert_array_equal(scores.numpy(), np_scores)


@pytest.mark.parametrize("shape", [(2, 0), (0, 5)])
def test_top_k_spans_empty_inputs_return_padding(shape):
  probs = np.zeros(shape, np.float32)
  lengths = np.zeros(shape[0], np.int32)
  for spans, scores in (
    decoding.top_k_spans(probs, probs, lengths, 2, 3),
    decoding.top_k_spans_tf(probs, probs, lengths, 2, 3),
  ):
    assert tuple(spans.shape) == (shape[0], 2, 2)
    assert (np.asarray(spans) == -1).all()
    assert (np.asarray(scores) == 0).all()
