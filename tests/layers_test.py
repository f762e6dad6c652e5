"""Tests of the RMR layers: shapes, masking invariance, config, gradients."""

import importlib

import keras
import numpy as np
import pytest
import tensorflow as tf

from a2d_tf import masking
from a2d_tf.layers import (
  BiLSTM,
  CharEncoder,
  InputEmbedding,
  InteractiveAlignment,
  IterativeAligner,
  MemoryAnswerPointer,
  PartlyFrozenEmbedding,
  RMRAnswerPointer,
  SelfAlignment,
  SemanticFusionUnit,
  recurrent,
)
from a2d_tf.layers.alignment import reattention, self_mask

HIDDEN = 4
DIM = 2 * HIDDEN
LENGTHS_P = np.array([6, 3, 1])
LENGTHS_Q = np.array([4, 2, 3])
ATOL = 1e-5


@pytest.fixture(autouse=True)
def _seed():
  keras.utils.set_random_seed(0)


def _rng(seed=0):
  return np.random.default_rng(seed)


def _mask(lengths, maxlen):
  return tf.sequence_mask(lengths, maxlen)


def _values(batch, length, dim, seed=0):
  return tf.constant(
    _rng(seed).normal(size=(batch, length, dim)).astype("float32")
  )


def _pad_with_garbage(x, extra, seed=1):
  """Appends `extra` random steps on axis 1 (padding the mask must hide)."""
  x = np.asarray(x)
  shape = list(x.shape)
  shape[1] = extra
  garbage = _rng(seed).normal(size=shape).astype(x.dtype)
  if np.issubdtype(x.dtype, np.integer):
    garbage = _rng(seed).integers(1, 9, size=shape).astype(x.dtype)
  return tf.constant(np.concatenate([x, garbage], axis=1))


def _garble_padding(x, lengths, seed=2):
  """Replaces padded steps (axis 1 beyond `lengths`) with random values."""
  x = np.array(x)
  noise = _rng(seed).normal(size=x.shape).astype(x.dtype)
  if np.issubdtype(x.dtype, np.integer):
    noise = _rng(seed).integers(1, 9, size=x.shape).astype(x.dtype)
  for b, n in enumerate(lengths):
    x[b, n:] = noise[b, n:]
  return tf.constant(x)


def _assert_valid_equal(a, b, lengths, axis=1):
  """Compares the valid prefix (per row, along `axis`) of two outputs."""
  a, b = np.asarray(a), np.asarray(b)
  for row, n in enumerate(lengths):
    sa = np.take(a[row], np.arange(n), axis=axis - 1)
    sb = np.take(b[row], np.arange(n), axis=axis - 1)
    np.testing.assert_allclose(sa, sb, atol=ATOL)


def _flat(outputs):
  return [np.asarray(t) for t in tf.nest.flatten(outputs)]


def _assert_round_trip(layer, call):
  """from_config(get_config()) + the same weights gives the same outputs."""
  expected = _flat(call(layer))
  clone = layer.__class__.from_config(layer.get_config())
  call(clone)
  clone.set_weights(layer.get_weights())
  for a, b in zip(expected, _flat(call(clone)), strict=True):
    np.testing.assert_allclose(a, b, atol=ATOL)


def _assert_gradients_reach_all(layer, call):
  """Every trainable weight gets a nonzero gradient from a random loss."""
  call(layer)
  with tf.GradientTape() as tape:
    outputs = call(layer)
    loss = 0.0
    for i, t in enumerate(tf.nest.flatten(outputs)):
      t = tf.cast(t, tf.float32)
      t = tf.where(t < -1e8, tf.zeros_like(t), t)
      weights = tf.constant(
        _rng(i).normal(size=t.shape.as_list()).astype("float32")
      )
      loss += tf.reduce_sum(t * weights)
  grads = tape.gradient(loss, layer.trainable_weights)
  assert layer.trainable_weights
  for weight, grad in zip(layer.trainable_weights, grads, strict=True):
    assert grad is not None, weight.path
    grad = tf.convert_to_tensor(grad)
    assert float(tf.reduce_max(tf.abs(grad))) > 0, weight.path


# BiLSTM


def test_bilstm_shapes_and_zero_padding():
  layer = BiLSTM(HIDDEN)
  x = _values(3, 6, 5)
  out = layer(x, _mask(LENGTHS_P, 6))
  assert out.shape == (3, 6, DIM)
  assert np.all(np.asarray(out)[1, 3:] == 0)
  final = BiLSTM(HIDDEN, return_sequences=False)(x, _mask(LENGTHS_P, 6))
  assert final.shape == (3, DIM)


@pytest.mark.parametrize("return_sequences", [True, False])
def test_bilstm_padding_changes_no_valid_output(return_sequences):
  layer = BiLSTM(HIDDEN, return_sequences=return_sequences)
  x = _values(3, 6, 5)
  base = layer(x, _mask(LENGTHS_P, 6))
  padded = _pad_with_garbage(_garble_padding(x, LENGTHS_P), 3)
  other = layer(padded, _mask(LENGTHS_P, 9))
  if return_sequences:
    _assert_valid_equal(base, other, LENGTHS_P)
  else:
    np.testing.assert_allclose(base, other, atol=ATOL)


@pytest.mark.parametrize("return_sequences", [True, False])
def test_bilstm_row_without_valid_steps_gives_zeros(return_sequences):
  layer = BiLSTM(HIDDEN, return_sequences=return_sequences)
  x = _values(2, 5, 3)
  out = np.asarray(layer(x, _mask([3, 0], 5)))
  assert np.all(out[1] == 0)
  assert np.any(out[0] != 0)


def test_bilstm_variational_dropout_shares_mask_over_time():
  layer = BiLSTM(HIDDEN, dropout=0.5, variational=True)
  x = tf.ones((2, 7, 6))
  dropped = np.asarray(layer.input_dropout(x, training=True))
  assert np.all(dropped == dropped[:, :1, :])
  assert np.any(dropped == 0) and np.any(dropped != 0)


def test_bilstm_config_round_trip_and_gradients():
  layer = BiLSTM(HIDDEN, dropout=0.2, use_cudnn=False)
  x = _values(3, 6, 5)

  def call(lyr):
    return lyr(x, _mask(LENGTHS_P, 6))

  _assert_round_trip(layer, call)
  _assert_gradients_reach_all(layer, call)
  assert layer.get_config()["use_cudnn"] is False


def graph_op_types(concrete_function) -> list[str]:
  """Op types of a traced function, nested functions (loops) included."""
  graph_def = concrete_function.graph.as_graph_def()
  types = [node.op for node in graph_def.node]
  for function in graph_def.library.function:
    types.extend(node.op for node in function.node_def)
  return types


def _traced_bilstm(layer, gradients=False):
  x = tf.TensorSpec([None, None, 5], tf.float32)
  mask = tf.TensorSpec([None, None], tf.bool)

  @tf.function
  def forward(x, mask):
    with tf.GradientTape() as tape:
      out = layer(x, mask)
    if not gradients:
      return out
    return tape.gradient(out, layer.trainable_weights)

  layer.build((None, None, 5))
  return graph_op_types(forward.get_concrete_function(x, mask))


@pytest.mark.parametrize("return_sequences", [True, False])
def test_bilstm_cudnn_graph_has_the_kernel_and_no_mask_assertion(
  monkeypatch, return_sequences
):
  # Traced only (no GPU here): the graph a GPU would run.
  monkeypatch.setattr(recurrent, "gpu_available", lambda: True)
  layer = BiLSTM(HIDDEN, return_sequences=return_sequences)
  assert layer.uses_cudnn()
  ops = _traced_bilstm(layer)
  assert ops.count("CudnnRNNV3") == 2
  assert "Assert" not in ops and "While" not in ops
  assert "CudnnRNNBackpropV3" in _traced_bilstm(layer, gradients=True)
  # Keras' own cuDNN path asserts on the mask: a host op per LSTM call.
  keras_rnn = importlib.import_module("keras.src.backend.tensorflow.rnn")
  monkeypatch.setattr(keras_rnn, "_is_gpu_available", lambda: True)
  lstm = keras.layers.LSTM(HIDDEN, use_cudnn=True)
  lstm.build((None, None, 5))
  keras_ops = graph_op_types(
    tf.function(lambda x, m: lstm(x, mask=m)).get_concrete_function(
      tf.TensorSpec([None, None, 5]), tf.TensorSpec([None, None], tf.bool)
    )
  )
  assert "CudnnRNNV3" in keras_ops and "Assert" in keras_ops


def test_bilstm_without_gpu_runs_the_while_loop_kernel():
  layer = BiLSTM(HIDDEN)
  assert not layer.uses_cudnn()
  ops = _traced_bilstm(layer)
  assert "CudnnRNNV3" not in ops and "While" in ops
  with pytest.raises(ValueError, match="use_cudnn=True needs a GPU"):
    BiLSTM(HIDDEN, use_cudnn=True).uses_cudnn()


@pytest.mark.parametrize(
  "kwargs",
  [{"units": 0}, {"units": 2, "dropout": 1.0}, {"units": 2, "use_cudnn": "x"}],
)
def test_bilstm_bad_arguments_raise(kwargs):
  with pytest.raises(ValueError, match="received"):
    BiLSTM(**kwargs)


# Character encoder and input embedding


def _char_ids(lengths, seq_len, word_len, seed=0):
  """Random char ids, 0-padded per token; token k of row b has k%4+1 chars,
  and the last valid token of row 0 has none."""
  rng = _rng(seed)
  ids = np.zeros((len(lengths), seq_len, word_len), np.int32)
  for b, n in enumerate(lengths):
    for k in range(n):
      count = k % 4 + 1
      ids[b, k, :count] = rng.integers(1, 12, size=count)
  ids[0, lengths[0] - 1] = 0
  return ids


@pytest.mark.parametrize("kind", ["cnn", "bilstm"])
def test_char_encoder_shapes_and_empty_tokens(kind):
  layer = CharEncoder(12, 5, 3, kind=kind, kernel_size=3)
  ids = _char_ids(LENGTHS_P, 6, 5)
  out = np.asarray(layer(ids, _mask(LENGTHS_P, 6)))
  width = 3 if kind == "cnn" else 6
  assert layer.output_dim == width
  assert out.shape == (3, 6, width)
  assert np.all(out[0, LENGTHS_P[0] - 1] == 0)  # token without characters
  assert np.all(out[1, 3:] == 0)  # padded tokens
  assert np.any(out[0, : LENGTHS_P[0] - 1] != 0)


@pytest.mark.parametrize("kind", ["cnn", "bilstm"])
def test_char_encoder_padding_chars_and_tokens_change_nothing(kind):
  layer = CharEncoder(12, 5, 3, kind=kind, kernel_size=3)
  ids = _char_ids(LENGTHS_P, 6, 5)
  base = layer(ids, _mask(LENGTHS_P, 6))
  wider = np.concatenate([ids, np.zeros((3, 6, 4), np.int32)], axis=2)
  longer = _pad_with_garbage(_garble_padding(wider, LENGTHS_P), 2)
  other = layer(longer, _mask(LENGTHS_P, 8))
  _assert_valid_equal(base, other, LENGTHS_P)


@pytest.mark.parametrize("kind", ["cnn", "bilstm"])
def test_char_encoder_config_round_trip_and_gradients(kind):
  layer = CharEncoder(12, 5, 3, kind=kind, kernel_size=3)
  ids = _char_ids(LENGTHS_P, 6, 5)

  def call(lyr):
    return lyr(ids, _mask(LENGTHS_P, 6))

  _assert_round_trip(layer, call)
  _assert_gradients_reach_all(layer, call)


def test_char_encoder_unknown_kind_raises():
  with pytest.raises(ValueError, match="kind="):
    CharEncoder(12, 5, 3, kind="gru")


def _embedding_inputs(lengths, seq_len):
  word_ids = _rng(3).integers(2, 20, size=(3, seq_len)).astype("int32")
  features = _rng(4).integers(0, 2, size=(3, seq_len, 2)).astype("float32")
  return word_ids, _char_ids(lengths, seq_len, 5), features


def test_input_embedding_shapes_frozen_words_and_padding():
  layer = InputEmbedding(20, 6, 12, 4, 3, trainable_words=False)
  word_ids, char_ids, features = _embedding_inputs(LENGTHS_P, 6)
  out = layer(word_ids, char_ids, features, _mask(LENGTHS_P, 6))
  assert out.shape == (3, 6, 6 + 3 + 2)
  assert layer.output_dim == 11
  assert not layer.word_embedding.trainable
  trainable = {w.path for w in layer.trainable_weights}
  assert not any("word_embedding" in path for path in trainable)
  padded = [
    _pad_with_garbage(_garble_padding(t, LENGTHS_P), 2)
    for t in (word_ids, char_ids, features)
  ]
  other = layer(*padded, _mask(LENGTHS_P, 8))
  _assert_valid_equal(out, other, LENGTHS_P)
  assert np.all(np.asarray(other)[1, 3:] == 0)


def test_input_embedding_config_round_trip_and_gradients():
  layer = InputEmbedding(20, 6, 12, 4, 3, char_encoder="bilstm")
  inputs = _embedding_inputs(LENGTHS_P, 6)

  def call(lyr):
    return lyr(*inputs, _mask(LENGTHS_P, 6))

  _assert_round_trip(layer, call)
  _assert_gradients_reach_all(layer, call)


def test_partly_frozen_embedding_looks_up_both_blocks():
  layer = PartlyFrozenEmbedding(10, 3, 4)
  layer.build()
  matrix = _rng(5).normal(size=(10, 3)).astype("float32")
  layer.assign_matrix(matrix)
  ids = np.array([[0, 3, 4, 9], [5, 1, 8, 2]], np.int32)
  np.testing.assert_array_equal(layer(ids), matrix[ids])
  assert [w.path for w in layer.trainable_weights] == [
    layer.trainable_rows.path
  ]
  assert layer.trainable_rows.shape == (4, 3)
  assert layer.frozen_rows.shape == (6, 3)
  assert not layer.frozen_rows.trainable


def test_partly_frozen_embedding_gradients_reach_trainable_rows_only():
  layer = PartlyFrozenEmbedding(10, 3, 4)
  layer.build()
  ids = tf.constant([[1, 7, 2]])
  with tf.GradientTape() as tape:
    loss = tf.reduce_sum(layer(ids) * _rng(1).normal(size=(1, 3, 3)))
  grad = tf.convert_to_tensor(tape.gradient(loss, layer.trainable_rows))
  assert np.abs(grad[1]).max() > 0 and np.abs(grad[2]).max() > 0
  assert np.abs(grad[0]).max() == 0 and np.abs(grad[3]).max() == 0


def test_partly_frozen_embedding_config_round_trip():
  layer = PartlyFrozenEmbedding(10, 3, 4)
  ids = tf.constant([[1, 7, 2, 9]])
  _assert_round_trip(layer, lambda lyr: lyr(ids))


@pytest.mark.parametrize("num_trainable", [0, 10, 11])
def test_partly_frozen_embedding_bad_split_raises(num_trainable):
  with pytest.raises(ValueError, match=f"num_trainable={num_trainable}"):
    PartlyFrozenEmbedding(10, 3, num_trainable)


def test_input_embedding_with_trainable_rows_keeps_pretrained_frozen():
  layer = InputEmbedding(
    20, 6, 12, 4, 3, trainable_words=False, num_trainable_words=5
  )
  word_ids, char_ids, features = _embedding_inputs(LENGTHS_P, 6)
  mask = _mask(LENGTHS_P, 6)
  out = layer(word_ids, char_ids, features, mask)
  assert out.shape == (3, 6, 11)
  assert isinstance(layer.word_embedding, PartlyFrozenEmbedding)
  paths = {w.path for w in layer.trainable_weights}
  assert layer.word_embedding.trainable_rows.path in paths
  assert layer.word_embedding.frozen_rows.path not in paths
  clone = InputEmbedding.from_config(layer.get_config())
  assert clone.num_trainable_words == 5
  with pytest.raises(ValueError, match="num_trainable_words"):
    InputEmbedding(20, 6, 12, 4, 3, num_trainable_words=5)


# Semantic fusion unit


def test_sfu_matches_numpy():
  layer = SemanticFusionUnit()
  x = _values(2, 3, 4, seed=5)
  y = _values(2, 3, 4, seed=6)
  out = np.asarray(layer(x, y))
  fused = np.concatenate([x, y, x * y, x - y], axis=-1)
  wr, br = (np.asarray(w) for w in layer.composition.weights)
  wg, bg = (np.asarray(w) for w in layer.gate.weights)
  r = np.tanh(fused @ wr + br)
  g = 1.0 / (1.0 + np.exp(-(fused @ wg + bg)))
  np.testing.assert_allclose(out, g * r + (1 - g) * np.asarray(x), atol=ATOL)


def test_sfu_config_round_trip_gradients_and_width_check():
  layer = SemanticFusionUnit()
  x, y = _values(2, 3, 4, seed=5), _values(2, 3, 4, seed=6)
  _assert_round_trip(layer, lambda lyr: lyr(x, y))
  _assert_gradients_reach_all(layer, lambda lyr: lyr(x, y))
  with pytest.raises(ValueError, match="one known width"):
    SemanticFusionUnit()(x, _values(2, 3, 5))


# Alignment


def _alignment_inputs(p_len=6, q_len=4):
  passage = _values(3, p_len, DIM, seed=7)
  question = _values(3, q_len, DIM, seed=8)
  return passage, question


def _assert_attention_rows(attention, p_lengths, q_lengths):
  """Rows of valid passage words sum to 1 over valid question words."""
  attention = np.asarray(attention)
  for b, (p, q) in enumerate(zip(p_lengths, q_lengths, strict=True)):
    np.testing.assert_allclose(attention[b, ..., :p, :q].sum(-1), 1, atol=1e-5)
    assert np.all(attention[b, ..., p:, :] == 0)
    assert np.all(attention[b, ..., q:] == 0)


def test_interactive_alignment_shapes_and_attention_rows():
  layer = InteractiveAlignment(HIDDEN)
  passage, question = _alignment_inputs()
  fused, scores, attention = layer(
    passage, question, _mask(LENGTHS_P, 6), _mask(LENGTHS_Q, 4)
  )
  assert fused.shape == (3, 6, DIM)
  assert scores.shape == (3, 4, 6) and scores.dtype == tf.float32
  assert attention.shape == (3, 6, 4) and attention.dtype == tf.float32
  _assert_attention_rows(attention, LENGTHS_P, LENGTHS_Q)


def test_interactive_alignment_padding_changes_no_valid_output():
  layer = InteractiveAlignment(HIDDEN)
  passage, question = _alignment_inputs()
  prior = tf.constant(_rng(9).normal(size=(3, 4, 6)).astype("float32"))
  base = layer(
    passage, question, _mask(LENGTHS_P, 6), _mask(LENGTHS_Q, 4), prior=prior
  )
  padded_prior = np.pad(np.asarray(prior), [(0, 0), (0, 2), (0, 3)])
  other = layer(
    _pad_with_garbage(_garble_padding(passage, LENGTHS_P), 3),
    _pad_with_garbage(_garble_padding(question, LENGTHS_Q), 2),
    _mask(LENGTHS_P, 9),
    _mask(LENGTHS_Q, 6),
    prior=tf.constant(padded_prior),
  )
  _assert_valid_equal(base[0], other[0], LENGTHS_P)
  for b in range(3):
    p, q = LENGTHS_P[b], LENGTHS_Q[b]
    np.testing.assert_allclose(
      base[2][b, :p, :q], other[2][b, :p, :q], atol=ATOL
    )
    np.testing.assert_allclose(
      base[1][b, :q, :p], other[1][b, :q, :p], atol=ATOL
    )


def test_interactive_alignment_config_round_trip_and_gradients():
  layer = InteractiveAlignment(HIDDEN)
  passage, question = _alignment_inputs()

  def call(lyr):
    return lyr(passage, question, _mask(LENGTHS_P, 6), _mask(LENGTHS_Q, 4))

  _assert_round_trip(layer, call)
  _assert_gradients_reach_all(layer, call)


def test_self_mask_excludes_diagonal_and_padding():
  mask = np.asarray(self_mask(_mask([3, 1], 4)))
  assert mask.shape == (2, 4, 4)
  assert not np.any(mask[:, np.arange(4), np.arange(4)])
  assert mask[0, :3, :3].sum() == 6 and mask[0, 3].sum() == 0
  assert mask[1].sum() == 0  # one word: nothing else to attend


def test_self_alignment_diagonal_masked_not_zeroed():
  layer = SelfAlignment(HIDDEN)
  passage, _ = _alignment_inputs()
  fused, scores = layer(passage, _mask(LENGTHS_P, 6))
  assert fused.shape == (3, 6, DIM) and scores.shape == (3, 6, 6)
  probs = np.asarray(
    masking.masked_softmax(scores, self_mask(_mask(LENGTHS_P, 6)), axis=1)
  )
  assert np.all(probs[:, np.arange(6), np.arange(6)] == 0)
  np.testing.assert_allclose(probs[0, :6, :6].sum(0), 1, atol=1e-6)
  # A negative diagonal score would win if the diagonal were merely zeroed.
  assert np.any(np.asarray(scores)[0, np.arange(6), np.arange(6)] != 0)


def test_self_alignment_padding_config_and_gradients():
  layer = SelfAlignment(HIDDEN)
  passage, _ = _alignment_inputs()
  base = layer(passage, _mask(LENGTHS_P, 6))
  other = layer(
    _pad_with_garbage(_garble_padding(passage, LENGTHS_P), 3),
    _mask(LENGTHS_P, 9),
  )
  _assert_valid_equal(base[0], other[0], LENGTHS_P)

  def call(lyr):
    return lyr(passage, _mask(LENGTHS_P, 6))

  _assert_round_trip(layer, call)
  _assert_gradients_reach_all(layer, call)


def test_reattention_is_product_of_masked_softmaxes():
  e = _rng(10).normal(size=(1, 2, 3)).astype("float32")
  b = _rng(11).normal(size=(1, 3, 3)).astype("float32")
  e_mask = np.ones((1, 2, 3), bool)
  b_mask = np.asarray(self_mask(_mask([3], 3)))
  out = np.asarray(reattention(e, e_mask, b, b_mask))

  def softmax(x, axis):
    x = np.exp(x - x.max(axis=axis, keepdims=True))
    return x / x.sum(axis=axis, keepdims=True)

  b_masked = np.where(b_mask, b, -np.inf)
  expected = softmax(e[0], 1) @ softmax(b_masked[0], 0)
  np.testing.assert_allclose(out[0], expected, atol=1e-6)


def test_iterative_aligner_shapes_attention_and_padding():
  layer = IterativeAligner(2, HIDDEN)
  passage, question = _alignment_inputs()
  memory, attention = layer(
    passage, question, _mask(LENGTHS_P, 6), _mask(LENGTHS_Q, 4)
  )
  assert memory.shape == (3, 6, DIM)
  assert attention.shape == (3, 2, 6, 4)
  _assert_attention_rows(attention, LENGTHS_P, LENGTHS_Q)
  memory2, attention2 = layer(
    _pad_with_garbage(_garble_padding(passage, LENGTHS_P), 3),
    _pad_with_garbage(_garble_padding(question, LENGTHS_Q), 2),
    _mask(LENGTHS_P, 9),
    _mask(LENGTHS_Q, 6),
  )
  _assert_valid_equal(memory, memory2, LENGTHS_P)
  for b in range(3):
    p, q = LENGTHS_P[b], LENGTHS_Q[b]
    np.testing.assert_allclose(
      attention[b, :, :p, :q], attention2[b, :, :p, :q], atol=ATOL
    )


def test_iterative_aligner_reattention_changes_later_hops_only():
  passage, question = _alignment_inputs()
  masks = (_mask(LENGTHS_P, 6), _mask(LENGTHS_Q, 4))
  layer = IterativeAligner(2, HIDDEN)
  _, with_gamma = layer(passage, question, *masks)
  layer.gamma.assign(0.0)
  _, without = layer(passage, question, *masks)
  np.testing.assert_allclose(with_gamma[:, 0], without[:, 0], atol=1e-6)
  assert not np.allclose(with_gamma[:, 1], without[:, 1], atol=1e-4)


def test_iterative_aligner_config_round_trip_and_gradients():
  layer = IterativeAligner(2, HIDDEN, gamma_init=1.5)
  passage, question = _alignment_inputs()

  def call(lyr):
    return lyr(passage, question, _mask(LENGTHS_P, 6), _mask(LENGTHS_Q, 4))

  _assert_round_trip(layer, call)
  _assert_gradients_reach_all(layer, call)
  assert any(w.path.endswith("gamma") for w in layer.trainable_weights)
  assert float(layer.gamma) == 1.5


def test_iterative_aligner_width_check():
  passage, question = _alignment_inputs()
  with pytest.raises(ValueError, match="width"):
    IterativeAligner(1, HIDDEN + 1)(
      passage, question, _mask(LENGTHS_P, 6), _mask(LENGTHS_Q, 4)
    )


# Answer pointer


def test_pointer_shapes_masked_logits_and_padding():
  layer = MemoryAnswerPointer(2, HIDDEN)
  memory, question = _alignment_inputs()
  start, end = layer(memory, question, _mask(LENGTHS_P, 6), _mask(LENGTHS_Q, 4))
  assert start.shape == end.shape == (3, 6)
  assert start.dtype == end.dtype == tf.float32
  assert np.all(np.asarray(end)[1, 3:] == masking.MASK_VALUE)
  assert np.all(np.asarray(start)[1, :3] > masking.MASK_VALUE)
  start2, end2 = layer(
    _pad_with_garbage(_garble_padding(memory, LENGTHS_P), 3),
    _pad_with_garbage(_garble_padding(question, LENGTHS_Q), 2),
    _mask(LENGTHS_P, 9),
    _mask(LENGTHS_Q, 6),
  )
  _assert_valid_equal(start, start2, LENGTHS_P)
  _assert_valid_equal(end, end2, LENGTHS_P)


def test_pointer_end_depends_on_start_scorer():
  layer = MemoryAnswerPointer(1, HIDDEN)
  memory, question = _alignment_inputs()
  args = (memory, question, _mask(LENGTHS_P, 6), _mask(LENGTHS_Q, 4))
  _, end = layer(*args)
  kernel = layer.start_scorers[0].output_layer.kernel
  kernel.assign(kernel * 5.0 + 1.0)
  _, end2 = layer(*args)
  assert not np.allclose(end, end2, atol=1e-5)


def test_pointer_config_round_trip_and_gradients():
  layer = MemoryAnswerPointer(2, HIDDEN, dropout=0.1)
  memory, question = _alignment_inputs()

  def call(lyr):
    return lyr(memory, question, _mask(LENGTHS_P, 6), _mask(LENGTHS_Q, 4))

  _assert_round_trip(layer, call)
  _assert_gradients_reach_all(layer, call)


def test_rmr_pointer_shapes_masked_logits_and_padding():
  layer = RMRAnswerPointer(HIDDEN)
  memory, question = _alignment_inputs()
  start, end = layer(memory, question, _mask(LENGTHS_P, 6), _mask(LENGTHS_Q, 4))
  assert start.shape == end.shape == (3, 6)
  assert start.dtype == end.dtype == tf.float32
  for logits in (start, end):
    assert np.all(np.asarray(logits)[1, 3:] == masking.MASK_VALUE)
    assert np.all(np.asarray(logits)[1, :3] > masking.MASK_VALUE)
  start2, end2 = layer(
    _pad_with_garbage(_garble_padding(memory, LENGTHS_P), 3),
    _pad_with_garbage(_garble_padding(question, LENGTHS_Q), 2),
    _mask(LENGTHS_P, 9),
    _mask(LENGTHS_Q, 6),
  )
  _assert_valid_equal(start, start2, LENGTHS_P)
  _assert_valid_equal(end, end2, LENGTHS_P)


def test_rmr_pointer_matches_its_equations():
  layer = RMRAnswerPointer(HIDDEN)
  memory, question = _alignment_inputs()
  p_mask, q_mask = _mask(LENGTHS_P, 6), _mask(LENGTHS_Q, 4)
  start, end = layer(memory, question, p_mask, q_mask)
  summary = layer.summary(question, q_mask)
  np.testing.assert_allclose(
    start, layer.start_scorer(memory, summary, p_mask), atol=ATOL
  )
  p_start = masking.masked_softmax(start, p_mask)
  evidence = tf.einsum("bp,bpd->bd", p_start, memory)
  state = layer.fusion(summary, evidence)
  np.testing.assert_allclose(
    end, layer.end_scorer(memory, state, p_mask), atol=ATOL
  )
  # The scorers see [r; z; r * z; r - z].
  assert layer.start_scorer.projection.kernel.shape == (4 * DIM, HIDDEN)


def test_rmr_pointer_end_depends_on_start_scorer():
  layer = RMRAnswerPointer(HIDDEN)
  memory, question = _alignment_inputs()
  args = (memory, question, _mask(LENGTHS_P, 6), _mask(LENGTHS_Q, 4))
  start, end = layer(*args)
  kernel = layer.start_scorer.output_layer.kernel
  kernel.assign(kernel * 5.0 + 1.0)
  start2, end2 = layer(*args)
  assert not np.allclose(start, start2, atol=1e-5)
  assert not np.allclose(end, end2, atol=1e-5)
  # ... while the end scorer leaves the start alone.
  kernel = layer.end_scorer.output_layer.kernel
  kernel.assign(kernel * 5.0 + 1.0)
  start3, end3 = layer(*args)
  np.testing.assert_array_equal(start2, start3)
  assert not np.allclose(end2, end3, atol=1e-5)


def test_rmr_pointer_config_round_trip_and_gradients():
  layer = RMRAnswerPointer(HIDDEN, dropout=0.1)
  memory, question = _alignment_inputs()

  def call(lyr):
    return lyr(memory, question, _mask(LENGTHS_P, 6), _mask(LENGTHS_Q, 4))

  _assert_round_trip(layer, call)
  _assert_gradients_reach_all(layer, call)
  assert layer.get_config()["hidden"] == HIDDEN


def test_rmr_pointer_checks_arguments_and_widths():
  with pytest.raises(ValueError, match="dropout"):
    RMRAnswerPointer(HIDDEN, dropout=1.5)
  memory, question = _alignment_inputs()
  with pytest.raises(ValueError, match="one width"):
    RMRAnswerPointer(HIDDEN)(
      memory,
      question[..., :3],
      _mask(LENGTHS_P, 6),
      _mask(LENGTHS_Q, 4),
    )


def test_layers_keep_float32_outputs_under_mixed_precision():
  policy = keras.DTypePolicy("mixed_bfloat16")
  memory, question = _alignment_inputs()
  masks = (_mask(LENGTHS_P, 6), _mask(LENGTHS_Q, 4))
  aligner = IterativeAligner(2, HIDDEN, dtype=policy)
  memory_out, attention = aligner(memory, question, *masks)
  assert memory_out.dtype == tf.bfloat16
  assert attention.dtype == tf.float32
  _assert_attention_rows(attention, LENGTHS_P, LENGTHS_Q)
  start, end = MemoryAnswerPointer(2, HIDDEN, dtype=policy)(
    memory_out, question, *masks
  )
  assert start.dtype == end.dtype == tf.float32
  start, end = RMRAnswerPointer(HIDDEN, dtype=policy)(
    memory_out, question, *masks
  )
  assert start.dtype == end.dtype == tf.float32
  words = PartlyFrozenEmbedding(10, 3, 4, dtype=policy)
  assert words(tf.constant([[1, 8]])).dtype == tf.bfloat16
  assert words.frozen_rows.dtype == "float32"


def test_bilstm_construction_serializes_nothing(monkeypatch):
  # keras.layers.Bidirectional serializes its template LSTM while it is
  # built; inside load_model's object-sharing scope a reused object id then
  # handed back the forward LSTM as the backward one and loading failed.
  from keras.src.saving import serialization_lib

  def refuse(obj):
    raise AssertionError(f"serialized {obj!r} while building a BiLSTM")

  monkeypatch.setattr(serialization_lib, "serialize_keras_object", refuse)
  layer = BiLSTM(4, return_sequences=True)
  assert not layer.forward_lstm.go_backwards
  assert layer.backward_lstm.go_backwards
