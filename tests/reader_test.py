"""Tests of the RMR reader model on small random batches."""

import dataclasses
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from a2d_tf import masking
from a2d_tf.config import ModelConfig
from a2d_tf.data.vocab import WordVectors
from a2d_tf.layers import (
  MemoryAnswerPointer,
  PartlyFrozenEmbedding,
  RMRAnswerPointer,
)
from a2d_tf.models.reader import (
  INPUT_KEYS,
  PARAM_BLOCKS,
  RMRReader,
  build_reader,
  count_params,
  input_keys,
  input_shapes,
)

WORDS, CHARS = 40, 15
CONFIG = ModelConfig(
  word_dim=6,
  char_dim=4,
  char_hidden=3,
  char_encoder="cnn",
  hidden=4,
  aligner_hops=2,
  pointer_hops=2,
  dropout=0.0,
)
Q_LEN = np.array([4, 2, 3], np.int32)
P_LEN = np.array([7, 3, 1], np.int32)
ATOL = 1e-5


@pytest.fixture(autouse=True)
def _seed():
  keras.utils.set_random_seed(0)


def _batch(q_len=Q_LEN, p_len=P_LEN, lq=4, lp=7, word_len=5, seed=0):
  """A padded batch; padded slots hold garbage the masks must hide."""
  rng = np.random.default_rng(seed)
  batch = len(q_len)
  x = {
    "question_ids": rng.integers(2, WORDS, (batch, lq)),
    "passage_ids": rng.integers(2, WORDS, (batch, lp)),
    "question_chars": rng.integers(1, CHARS, (batch, lq, word_len)),
    "passage_chars": rng.integers(1, CHARS, (batch, lp, word_len)),
    "question_em": rng.integers(0, 2, (batch, lq, 2)).astype(np.float32),
    "passage_em": rng.integers(0, 2, (batch, lp, 2)).astype(np.float32),
  }
  for key in ("question_chars", "passage_chars"):
    x[key][..., 3:] = 0  # at most 3 characters per token
  x = {k: v.astype(np.float32 if "em" in k else np.int32) for k, v in x.items()}
  x["question_len"] = np.asarray(q_len, np.int32)
  x["passage_len"] = np.asarray(p_len, np.int32)
  x["start"] = np.minimum(1, p_len - 1).astype(np.int32)
  x["end"] = (p_len - 1).astype(np.int32)
  return x


def _pad(x, extra_q=2, extra_p=3, seed=9):
  """The same batch with more padded positions full of garbage."""
  rng = np.random.default_rng(seed)
  out = dict(x)
  for key, extra in (
    ("question_ids", extra_q),
    ("question_chars", extra_q),
    ("passage_ids", extra_p),
    ("passage_chars", extra_p),
    ("question_em", extra_q),
    ("passage_em", extra_p),
  ):
    value = x[key]
    shape = list(value.shape)
    shape[1] = extra
    garbage = rng.integers(1, 9, shape).astype(value.dtype)
    out[key] = np.concatenate([value, garbage], axis=1)
  return out


def _model(use_cudnn="auto", **overrides):
  return build_reader(
    dataclasses.replace(CONFIG, **overrides), WORDS, CHARS, use_cudnn=use_cudnn
  )


def _assert_outputs_close(a, b, p_len=P_LEN, q_len=Q_LEN):
  for row, (p, q) in enumerate(zip(p_len, q_len, strict=True)):
    for key in ("start_logits", "end_logits"):
      np.testing.assert_allclose(a[key][row, :p], b[key][row, :p], atol=ATOL)
    np.testing.assert_allclose(
      a["attention"][row, :, :p, :q], b["attention"][row, :, :p, :q], atol=ATOL
    )


def test_reader_output_shapes_dtypes_and_padding():
  model = _model()
  out = model(_batch())
  assert set(out) == {"start_logits", "end_logits", "attention"}
  assert out["start_logits"].shape == out["end_logits"].shape == (3, 7)
  assert out["attention"].shape == (3, 2, 7, 4)
  for value in out.values():
    assert value.dtype == tf.float32
  for row, p in enumerate(P_LEN):
    for key in ("start_logits", "end_logits"):
      logits = np.asarray(out[key][row])
      assert np.all(logits[p:] == masking.MASK_VALUE)
      assert np.all(logits[:p] > -1e4)


def test_reader_attention_rows_sum_to_one_over_valid_question_words():
  attention = np.asarray(_model()(_batch())["attention"])
  for row, (p, q) in enumerate(zip(P_LEN, Q_LEN, strict=True)):
    np.testing.assert_allclose(attention[row, :, :p, :q].sum(-1), 1, atol=1e-5)
    assert np.all(attention[row, :, p:] == 0)
    assert np.all(attention[row, :, :, q:] == 0)


@pytest.mark.parametrize(
  "overrides",
  [
    {"char_encoder": "cnn"},
    {"char_encoder": "bilstm"},
    {"pointer": "rmr", "question_em": True},
  ],
)
def test_reader_padding_changes_no_valid_output(overrides):
  model = _model(**overrides)
  x = _batch()
  _assert_outputs_close(model(x), model(_pad(x)))


def test_reader_without_question_em_ignores_question_flags():
  model = _model()
  assert model.input_keys == input_keys(False)
  assert "question_em" not in model.input_keys
  x = _batch()
  flipped = dict(x, question_em=1.0 - x["question_em"])
  absent = {k: v for k, v in x.items() if k != "question_em"}
  expected = model(x)
  for key, value in model(flipped).items():
    np.testing.assert_array_equal(expected[key], value)
  for key, value in model(absent).items():
    np.testing.assert_array_equal(expected[key], value)


def test_reader_with_question_em_reads_question_flags():
  model = _model(question_em=True)
  assert model.input_keys == INPUT_KEYS
  x = _batch()
  flipped = dict(x, question_em=1.0 - x["question_em"])
  assert not np.allclose(
    model(x)["start_logits"][0, :7], model(flipped)["start_logits"][0, :7]
  )
  # The question flags enter through the shared embedding: no new weights.
  assert count_params(model) == count_params(_model())


@pytest.mark.parametrize(
  ("pointer", "layer_class"),
  [("memory", MemoryAnswerPointer), ("rmr", RMRAnswerPointer)],
)
def test_reader_pointer_is_chosen_by_config(pointer, layer_class):
  model = _model(pointer=pointer)
  assert isinstance(model.pointer, layer_class)
  assert model.get_config()["pointer"] == pointer
  out = model(_batch())
  assert out["start_logits"].shape == out["end_logits"].shape == (3, 7)


def test_reader_unknown_pointer_raises():
  with pytest.raises(ValueError, match="pointer='ptr'"):
    _model(pointer="ptr")


def test_reader_length_zero_filler_row_is_finite_and_costs_nothing():
  model = _model(char_encoder="bilstm")
  x = _batch(q_len=np.array([4, 0, 3]), p_len=np.array([7, 0, 2]))
  x["start"][1] = x["end"][1] = 0
  with tf.GradientTape() as tape:
    out = model(x, training=True)
    loss = model.compute_loss(x=x, y_pred=out)
  assert np.all(np.asarray(out["start_logits"][1]) == masking.MASK_VALUE)
  assert np.all(np.asarray(out["attention"][1]) == 0)
  grads = tape.gradient(loss, model.trainable_weights)
  assert all(np.all(np.isfinite(tf.convert_to_tensor(g))) for g in grads)
  kept = {k: v[[0, 2]] for k, v in x.items()}
  np.testing.assert_allclose(
    loss, model.compute_loss(x=kept, y_pred=model(kept)) * 2 / 3, rtol=1e-5
  )


def test_reader_ignores_extra_input_keys():
  model = _model()
  x = _batch()
  extra = dict(x)
  extra["teacher_attention"] = np.ones((3, 2, 7, 4), np.float32)
  extra["confusing_start"] = np.full((3,), -1, np.int32)
  extra["passage_char_starts"] = np.zeros((3, 7), np.int32)
  _assert_outputs_close(model(x), model(extra))


def test_reader_gradients_reach_every_trainable_weight():
  # hidden=8: with 4 ReLU projection units a whole projection can start dead.
  model = _model(dropout=0.2, hidden=8)
  x = _batch()
  with tf.GradientTape() as tape:
    out = model(x, training=True)
    loss = model.compute_loss(x=x, y_pred=out)
    loss += tf.reduce_sum(
      out["attention"] * np.random.default_rng(0).random((3, 2, 7, 4))
    )
  grads = tape.gradient(loss, model.trainable_weights)
  for weight, grad in zip(model.trainable_weights, grads, strict=True):
    assert grad is not None, weight.path
    grad = tf.convert_to_tensor(grad)
    assert float(tf.reduce_max(tf.abs(grad))) > 0, weight.path


def test_reader_compute_loss_is_mean_span_cross_entropy():
  model = _model()
  x = _batch()
  out = model(x)
  loss = float(model.compute_loss(x=x, y_pred=out))

  def log_softmax(logits, n):
    logits = logits[:n]
    return logits - np.log(np.sum(np.exp(logits - logits.max()))) - logits.max()

  expected = []
  for row, p in enumerate(P_LEN):
    start = log_softmax(np.asarray(out["start_logits"][row]), p)
    end = log_softmax(np.asarray(out["end_logits"][row]), p)
    expected.append(-start[x["start"][row]] - end[x["end"][row]])
  np.testing.assert_allclose(loss, np.mean(expected), rtol=1e-5)
  del x["start"]
  with pytest.raises(KeyError, match="start"):
    model.compute_loss(x=x, y_pred=out)


def test_reader_keras_file_round_trip_gives_identical_outputs(tmp_path):
  matrix = np.random.default_rng(3).normal(size=(WORDS, 6)).astype("float32")
  model = build_reader(CONFIG, WORDS, CHARS, embedding_matrix=matrix)
  x = _batch()
  path = os.path.join(tmp_path, "reader.keras")
  model.save(path)
  loaded = keras.models.load_model(path)
  assert isinstance(loaded, RMRReader)
  assert loaded.get_config() == model.get_config()
  expected, actual = model(x), loaded(x)
  for key in expected:
    np.testing.assert_array_equal(expected[key], actual[key])
  np.testing.assert_array_equal(
    loaded.embedding.word_embedding.embeddings, matrix
  )
  assert count_params(loaded) == count_params(model)


def test_reader_pretrained_embedding_is_frozen_and_checked():
  matrix = np.random.default_rng(3).normal(size=(WORDS, 6)).astype("float32")
  frozen = build_reader(CONFIG, WORDS, CHARS, embedding_matrix=matrix)
  trained = build_reader(CONFIG, WORDS, CHARS)
  frozen_counts, trained_counts = count_params(frozen), count_params(trained)
  assert frozen_counts["non_trainable"] == WORDS * 6
  assert trained_counts["non_trainable"] == 0
  assert frozen_counts["total"] == trained_counts["total"]
  assert frozen_counts["trainable"] == trained_counts["trainable"] - WORDS * 6
  assert set(frozen_counts) >= {
    "trainable/embedding",
    "trainable/encoder",
    "trainable/aligner",
    "trainable/pointer",
  }
  with pytest.raises(ValueError, match="embedding_matrix"):
    build_reader(CONFIG, WORDS + 1, CHARS, embedding_matrix=matrix)


def test_reader_train_step_runs_under_xla_with_same_results():
  model = _model(char_encoder="bilstm", use_cudnn=False)
  x = {k: tf.constant(v) for k, v in _batch().items()}

  def step(inputs):
    with tf.GradientTape() as tape:
      out = model(inputs, training=True)
      loss = model.compute_loss(x=inputs, y_pred=out)
    return out, loss, tape.gradient(loss, model.trainable_weights)

  compiled = tf.function(step, jit_compile=True)
  (out, loss, grads), (xla_out, xla_loss, xla_grads) = step(x), compiled(x)
  _assert_outputs_close(out, xla_out)
  np.testing.assert_allclose(loss, xla_loss, rtol=1e-5)
  for grad, xla_grad in zip(grads, xla_grads, strict=True):
    np.testing.assert_allclose(
      tf.convert_to_tensor(grad),
      tf.convert_to_tensor(xla_grad),
      rtol=1e-3,
      atol=1e-5,
    )


def test_reader_mixed_precision_outputs_stay_float32():
  model = build_reader(CONFIG, WORDS, CHARS, dtype="mixed_bfloat16")
  assert model.encoder.compute_dtype == "bfloat16"
  out = model(_batch())
  for value in out.values():
    assert value.dtype == tf.float32
  attention = np.asarray(out["attention"])
  np.testing.assert_allclose(attention[0, :, :7, :4].sum(-1), 1, atol=1e-3)


def test_reader_tiny_fit_on_random_data_reduces_loss():
  # One hop each keeps the graph (and its tracing time) small.
  model = _model(aligner_hops=1, pointer_hops=1)
  model.compile(optimizer=keras.optimizers.Adam(0.02))
  x = _batch(q_len=np.array([4, 2, 3, 4]), p_len=np.array([7, 5, 6, 7]), seed=1)
  dataset = tf.data.Dataset.from_tensor_slices(x).batch(2)
  history = model.fit(dataset, epochs=12, verbose=0)
  losses = history.history["loss"]
  assert losses[-1] < 0.5 * losses[0], losses


def test_input_shapes_cover_model_inputs():
  shapes = input_shapes(5)
  assert shapes["passage_chars"] == (None, None, 5)
  assert shapes["question_em"] == (None, None, 2)
  assert (
    set(shapes)
    == set(INPUT_KEYS)
    == {
      "question_ids",
      "passage_ids",
      "question_chars",
      "passage_chars",
      "question_em",
      "passage_em",
      "question_len",
      "passage_len",
    }
  )


# Partly trainable word embedding (pretrained rows frozen).

NUM_TRAINABLE = 12


def _vectors():
  matrix = np.random.default_rng(3).normal(size=(WORDS, 6)).astype("float32")
  return WordVectors(matrix, NUM_TRAINABLE)


def test_reader_word_vectors_split_trainable_and_frozen_rows():
  vectors = _vectors()
  model = build_reader(CONFIG, WORDS, CHARS, embedding_matrix=vectors)
  words = model.embedding.word_embedding
  assert isinstance(words, PartlyFrozenEmbedding)
  np.testing.assert_array_equal(words.trainable_rows, vectors.matrix[:12])
  np.testing.assert_array_equal(words.frozen_rows, vectors.matrix[12:])
  ids = np.arange(WORDS)[None, :]
  np.testing.assert_array_equal(words(ids)[0], vectors.matrix)
  counts = count_params(model)
  assert counts["non_trainable"] == (WORDS - NUM_TRAINABLE) * 6
  assert counts["block/frozen_words"] == (WORDS - NUM_TRAINABLE) * 6
  assert counts["block/word_embedding"] == NUM_TRAINABLE * 6


def test_reader_train_step_moves_trainable_rows_only():
  vectors = _vectors()
  model = build_reader(CONFIG, WORDS, CHARS, embedding_matrix=vectors)
  model.compile(optimizer=keras.optimizers.Adam(0.05))
  x = _batch()
  # Ids on both sides of the split, so both blocks are looked up.
  x["question_ids"][:, 0] = 3
  x["passage_ids"][:, 0] = 2
  x["passage_ids"][:, 1] = WORDS - 1
  model.fit(tf.data.Dataset.from_tensors(x), epochs=2, verbose=0)
  words = model.embedding.word_embedding
  np.testing.assert_array_equal(words.frozen_rows, vectors.matrix[12:])
  moved = np.abs(np.asarray(words.trainable_rows) - vectors.matrix[:12])
  assert moved[2].max() > 1e-3 and moved[3].max() > 1e-3
  # A trainable row no input used stays where it was.
  unused = sorted(
    set(range(12))
    - set(np.unique(x["question_ids"]))
    - set(np.unique(x["passage_ids"]))
  )
  assert unused and moved[unused].max() == 0


def test_reader_word_vectors_keras_round_trip(tmp_path):
  model = build_reader(
    dataclasses.replace(CONFIG, pointer="rmr", question_em=True),
    WORDS,
    CHARS,
    embedding_matrix=_vectors(),
  )
  path = os.path.join(tmp_path, "reader.keras")
  model.save(path)
  loaded = keras.models.load_model(path)
  assert loaded.get_config() == model.get_config()
  assert isinstance(loaded.pointer, RMRAnswerPointer)
  x = _batch()
  expected, actual = model(x), loaded(x)
  for key in expected:
    np.testing.assert_array_equal(expected[key], actual[key])
  assert count_params(loaded) == count_params(model)
  assert not loaded.embedding.word_embedding.frozen_rows.trainable


def test_reader_word_vectors_all_trainable_is_a_plain_embedding():
  matrix = _vectors().matrix
  model = build_reader(
    CONFIG, WORDS, CHARS, embedding_matrix=WordVectors(matrix, WORDS)
  )
  words = model.embedding.word_embedding
  assert isinstance(words, keras.layers.Embedding) and words.trainable
  np.testing.assert_array_equal(words.embeddings, matrix)
  with pytest.raises(ValueError, match="num_trainable"):
    build_reader(
      CONFIG, WORDS, CHARS, embedding_matrix=WordVectors(matrix, WORDS + 1)
    )


@pytest.mark.parametrize("pointer", ["memory", "rmr"])
@pytest.mark.parametrize("pretrained", [False, True])
def test_count_params_blocks_sum_to_trainable(pointer, pretrained):
  model = build_reader(
    dataclasses.replace(CONFIG, pointer=pointer),
    WORDS,
    CHARS,
    embedding_matrix=_vectors() if pretrained else None,
  )
  counts = count_params(model)
  blocks = [counts[f"block/{name}"] for name, _ in PARAM_BLOCKS]
  assert all(n > 0 for n in blocks)
  assert sum(blocks) == counts["trainable"]
  assert counts["block/frozen_words"] == counts["non_trainable"]
  assert (
    counts["block/word_embedding"] + counts["block/char_encoder"]
    == counts["trainable/embedding"]
  )


def test_padding_onto_the_length_grid_changes_no_loss_or_valid_output():
  from a2d_tf import losses
  from a2d_tf.config import DistillConfig
  from a2d_tf.data import dataset as dataset_lib
  from a2d_tf.data import knowledge as knowledge_lib

  model = _model(char_encoder="bilstm")
  x = {k: tf.constant(v) for k, v in _batch().items()}
  rng = np.random.default_rng(4)
  p_mask = np.arange(7)[None] < P_LEN[:, None]
  q_mask = np.arange(4)[None] < Q_LEN[:, None]

  def dist(mask):
    values = np.where(mask, rng.random(mask.shape) + 0.1, 0.0)
    total = values.sum(-1, keepdims=True)
    return np.divide(values, np.maximum(total, 1e-9)).astype(np.float32)

  att_mask = np.broadcast_to(
    p_mask[:, None, :, None] & q_mask[:, None, None, :], (3, 2, 7, 4)
  )
  x.update(
    teacher_start_probs=tf.constant(dist(p_mask)),
    teacher_end_probs=tf.constant(dist(p_mask)),
    teacher_attention=tf.constant(dist(att_mask)),
    confusing_start=tf.constant([3, -1, 0], tf.int32),
    confusing_end=tf.constant([4, -1, 0], tf.int32),
  )
  grid = dataset_lib.LengthGrid(passage=(5, 12), question=(6,))
  padded = dataset_lib.pad_batch(x, grid, knowledge_lib.KNOWLEDGE_LENGTH_AXES)
  assert padded["passage_ids"].shape == (3, 12)
  assert padded["passage_chars"].shape == (3, 12, 5)
  assert padded["question_chars"].shape == (3, 6, 5)
  assert padded["teacher_attention"].shape == (3, 2, 12, 6)
  out, padded_out = model(x), model(padded)
  _assert_outputs_close(out, padded_out)
  np.testing.assert_allclose(
    model.compute_loss(x=x, y_pred=out),
    model.compute_loss(x=padded, y_pred=padded_out),
    rtol=1e-6,
  )
  terms = losses.a2d_loss(out, x, DistillConfig())
  padded_terms = losses.a2d_loss(padded_out, padded, DistillConfig())
  for name, value in terms.items():
    np.testing.assert_allclose(value, padded_terms[name], rtol=1e-5, atol=1e-6)
  assert float(tf.reduce_max(terms["att"])) > 0
