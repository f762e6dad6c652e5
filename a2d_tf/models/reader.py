"""The Reinforced Mnemonic Reader (Hu et al., IJCAI 2018) as a Keras model.

Input: the flat batch dict of `a2d_tf.data.dataset.make_dataset`; the keys in
`RMRReader.input_keys` (`INPUT_KEYS`, less `question_em` unless the reader
uses it) are read and any other key (`start`, `id`, `teacher_*`, ...) is
ignored by `call`. Masks come from `question_len` / `passage_len` only.

Architecture: feature-rich embedding (word; character BiLSTM or CNN;
exact-match flags) -> one shared contextual BiLSTM over question and passage
-> iterative aligner with re-attention (T hops) -> answer pointer: the IJCAI
RMR pointer (`pointer="rmr"`: start, one SFU update, end) or the earlier
Mnemonic Reader's memory-based pointer (`pointer="memory"`, L hops).

Exact-match features: the passage uses `passage_em` `[batch, passage_len,
2]` (the passage token occurs in the question, exact / lowercased). With
`question_em=True` the question uses `question_em` `[batch, question_len,
2]` (the question token occurs in the passage), as RMR does; with False the
question tokens get two zero flags (the input is still accepted and
ignored), so the flag channels carry a signal on the passage side only.
Both sides share the two channels, as they share the encoder.

Word embedding: trained from scratch without pretrained vectors; with them
(`build_reader(embedding_matrix=...)`) the rows of words found in the file
are frozen and the first `num_trainable_words` ids (specials, tuned
question words, words without a vector; see `a2d_tf.data.vocab`) train in
a separate block (`a2d_tf.layers.PartlyFrozenEmbedding`).

Plain (teacher/baseline) training minimizes span cross-entropy on the gold
`start` / `end` read from the same input dict (`compute_loss`, the reader's
own `train_step`), with the reduction of `a2d_tf.losses.reduce_loss`; the
logged `loss` is the mean over examples, exact under any replica split.
"""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import tensorflow as tf

from a2d_tf import losses, masking
from a2d_tf.config import ModelConfig
from a2d_tf.data.vocab import WordVectors
from a2d_tf.layers import (
  BiLSTM,
  InputEmbedding,
  IterativeAligner,
  MemoryAnswerPointer,
  RMRAnswerPointer,
)

INPUT_KEYS = (
  "question_ids",
  "passage_ids",
  "question_chars",
  "passage_chars",
  "question_em",
  "passage_em",
  "question_len",
  "passage_len",
)
# Float inputs; every other input is int32.
FLOAT_KEYS = ("question_em", "passage_em")
NUM_EM_FEATURES = 2
POINTERS = ("memory", "rmr")
# `count_params` blocks: name -> the reader's sub-layer path.
PARAM_BLOCKS = (
  ("word_embedding", ("embedding", "word_embedding")),
  ("char_encoder", ("embedding", "char_encoding")),
  ("encoder", ("encoder",)),
  ("aligner", ("aligner",)),
  ("pointer", ("pointer",)),
)


def input_keys(question_em: bool) -> tuple[str, ...]:
  """The `INPUT_KEYS` a reader reads: `question_em` only when it uses it."""
  if question_em:
    return INPUT_KEYS
  return tuple(key for key in INPUT_KEYS if key != "question_em")


def input_shapes(max_word_len: int | None = None) -> dict[str, tuple]:
  """Shapes of the model inputs, batch and lengths unknown."""
  return {
    "question_ids": (None, None),
    "passage_ids": (None, None),
    "question_chars": (None, None, max_word_len),
    "passage_chars": (None, None, max_word_len),
    "question_em": (None, None, NUM_EM_FEATURES),
    "passage_em": (None, None, NUM_EM_FEATURES),
    "question_len": (None,),
    "passage_len": (None,),
  }


def input_specs(max_word_len: int | None = None) -> dict[str, tf.TensorSpec]:
  """`tf.TensorSpec`s of the model inputs, for one trace of every shape."""
  return {
    key: tf.TensorSpec(
      shape, tf.float32 if key in FLOAT_KEYS else tf.int32, name=key
    )
    for key, shape in input_shapes(max_word_len).items()
  }


def model_inputs(batch: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
  """The `INPUT_KEYS` entries of a batch dict (drops labels, ids, ...)."""
  return {key: batch[key] for key in INPUT_KEYS}


@keras.saving.register_keras_serializable(package="a2d")
class RMRReader(keras.Model):
  """Reinforced Mnemonic Reader: span start/end scores and attentions.

  Args:
    word_vocab_size: Word ids (0 = `[PAD]`).
    char_vocab_size: Character ids (0 = `[PAD]`).
    word_dim: Word embedding size.
    char_dim: Character embedding size.
    char_hidden: Character encoder units (per direction for the BiLSTM).
    char_encoder: "bilstm" or "cnn".
    hidden: Units per direction of every BiLSTM.
    aligner_hops: T.
    pointer_hops: L of the "memory" pointer.
    dropout: Dropout rate on the inputs of every LSTM and of the pointer.
    variational_dropout: One dropout mask per sequence instead of per step.
    max_answer_len: Longest span the decoder should return (kept for
      decoding; the model itself does not use it).
    trainable_words: Train the word embedding (False freezes a pretrained
      matrix; see `build_reader`).
    reattention: Use the re-attention terms (False gives the non-reinforced
      Mnemonic Reader aligner).
    use_cudnn: See `a2d_tf.layers.BiLSTM`; pass False to compile the model
      with XLA on a GPU.
    pointer: "memory" (`MemoryAnswerPointer`, `pointer_hops` hops) or
      "rmr" (`RMRAnswerPointer`).
    question_em: Read `question_em` (False gives question tokens zero
      flags).
    num_trainable_words: With `trainable_words=False`, the first this many
      word ids still train (see `InputEmbedding`).
    **kwargs: Base model arguments (`name`, `dtype` policy, ...).

  Call arguments:
    inputs: The batch dict (see module docstring).
    training: Enables dropout.

  Returns:
    A dict with float32 `start_logits`, `end_logits` `[batch, passage_len]`
    (`MASK_VALUE` at padding) and float32 `attention` `[batch, aligner_hops,
    passage_len, question_len]`: per hop and valid passage word, a
    distribution over the valid question words; zero at padding.
  """

  def __init__(
    self,
    word_vocab_size: int,
    char_vocab_size: int,
    word_dim: int = 64,
    char_dim: int = 16,
    char_hidden: int = 16,
    char_encoder: str = "cnn",
    hidden: int = 48,
    aligner_hops: int = 2,
    pointer_hops: int = 2,
    dropout: float = 0.1,
    variational_dropout: bool = True,
    max_answer_len: int = 15,
    trainable_words: bool = True,
    reattention: bool = True,
    use_cudnn: str | bool = "auto",
    pointer: str = "memory",
    question_em: bool = False,
    num_trainable_words: int = 0,
    **kwargs,
  ):
    super().__init__(**kwargs)
    if pointer not in POINTERS:
      raise ValueError(
        f"pointer must be one of {POINTERS}, received: pointer={pointer!r}"
      )
    self.word_vocab_size = word_vocab_size
    self.char_vocab_size = char_vocab_size
    self.word_dim = word_dim
    self.char_dim = char_dim
    self.char_hidden = char_hidden
    self.char_encoder = char_encoder
    self.hidden = hidden
    self.aligner_hops = aligner_hops
    self.pointer_hops = pointer_hops
    self.dropout = dropout
    self.variational_dropout = variational_dropout
    self.max_answer_len = max_answer_len
    self.trainable_words = trainable_words
    self.reattention = reattention
    self.use_cudnn = use_cudnn
    self.pointer_kind = pointer
    self.question_em = bool(question_em)
    self.num_trainable_words = num_trainable_words
    policy = self.dtype_policy
    self.embedding = InputEmbedding(
      word_vocab_size,
      word_dim,
      char_vocab_size,
      char_dim,
      char_hidden,
      char_encoder=char_encoder,
      num_features=NUM_EM_FEATURES,
      trainable_words=trainable_words,
      dropout=dropout,
      variational=variational_dropout,
      use_cudnn=use_cudnn,
      num_trainable_words=num_trainable_words,
      dtype=policy,
      name="embedding",
    )
    self.encoder = BiLSTM(
      hidden,
      dropout=dropout,
      variational=variational_dropout,
      use_cudnn=use_cudnn,
      dtype=policy,
      name="encoder",
    )
    self.aligner = IterativeAligner(
      aligner_hops,
      hidden,
      dropout=dropout,
      variational=variational_dropout,
      reattention=reattention,
      use_cudnn=use_cudnn,
      dtype=policy,
      name="aligner",
    )
    if pointer == "rmr":
      self.pointer = RMRAnswerPointer(
        hidden,
        dropout=dropout,
        variational=variational_dropout,
        dtype=policy,
        name="pointer",
      )
    else:
      self.pointer = MemoryAnswerPointer(
        pointer_hops,
        hidden,
        dropout=dropout,
        variational=variational_dropout,
        dtype=policy,
        name="pointer",
      )
    # The logged span CE (`train_step`), a mean over examples.
    self._loss_metric = keras.metrics.Mean(name="loss")

  @property
  def input_keys(self) -> tuple[str, ...]:
    """The `INPUT_KEYS` this reader reads (`question_em` only if used)."""
    return input_keys(self.question_em)

  def build(self, input_shape=None):
    """Creates every weight; the shapes do not depend on `input_shape`."""
    max_word_len = None
    if isinstance(input_shape, dict) and "passage_chars" in input_shape:
      max_word_len = input_shape["passage_chars"][-1]
    self.embedding.build((None, None), (None, None, max_word_len))
    self.encoder.build((None, None, self.embedding.output_dim))
    encoded = (None, None, 2 * self.hidden)
    self.aligner.build(encoded, encoded)
    self.pointer.build(encoded, encoded)
    self.built = True

  def call(self, inputs, training=False):
    question_ids = inputs["question_ids"]
    passage_ids = inputs["passage_ids"]
    question_mask = masking.sequence_mask(
      inputs["question_len"], tf.shape(question_ids)[1]
    )
    passage_mask = masking.sequence_mask(
      inputs["passage_len"], tf.shape(passage_ids)[1]
    )
    passage_em = inputs["passage_em"]
    if self.question_em:
      question_em = inputs["question_em"]
    else:
      question_em = tf.zeros(
        tf.concat([tf.shape(question_ids), [NUM_EM_FEATURES]], axis=0),
        passage_em.dtype,
      )
    question = self.embedding(
      question_ids,
      inputs["question_chars"],
      question_em,
      question_mask,
      training=training,
    )
    passage = self.embedding(
      passage_ids,
      inputs["passage_chars"],
      passage_em,
      passage_mask,
      training=training,
    )
    question = self.encoder(question, question_mask, training=training)
    passage = self.encoder(passage, passage_mask, training=training)
    memory, attention = self.aligner(
      passage, question, passage_mask, question_mask, training=training
    )
    start_logits, end_logits = self.pointer(
      memory, question, passage_mask, question_mask, training=training
    )
    return {
      "start_logits": tf.cast(start_logits, tf.float32),
      "end_logits": tf.cast(end_logits, tf.float32),
      "attention": tf.cast(attention, tf.float32),
    }

  def compute_loss(
    self, x=None, y=None, y_pred=None, sample_weight=None, training=True
  ):
    """Span CE on the gold `start` / `end` of the input dict.

    `y` and `sample_weight` are unused: the labels travel in `x`, so
    `fit(dataset_of_dicts)` needs no targets. Keras tracks the result as the
    `loss` metric.
    """
    del y, sample_weight, training
    return losses.reduce_loss(self.span_losses(x, y_pred)) + self._penalty()

  def span_losses(self, x, y_pred) -> tf.Tensor:
    """float32 `[batch]` span CE on the gold `start` / `end` of `x`."""
    if "start" not in x or "end" not in x:
      raise KeyError(
        "RMRReader.compute_loss needs gold 'start' and 'end' in the input "
        f"dict; received keys {sorted(x)}."
      )
    start_logits = y_pred["start_logits"]
    passage_mask = masking.sequence_mask(
      x["passage_len"], tf.shape(start_logits)[1]
    )
    return losses.ce_loss(
      start_logits, y_pred["end_logits"], x["start"], x["end"], passage_mask
    )

  def _penalty(self) -> tf.Tensor:
    """The layers' added losses (none in this architecture), float32."""
    if self.losses:
      return tf.add_n([tf.cast(v, tf.float32) for v in self.losses])
    return tf.constant(0.0, tf.float32)

  @property
  def metrics(self) -> list[keras.metrics.Metric]:
    return [self._loss_metric]

  def train_step(self, data):
    """One step on the span CE; logs the exact mean `loss`.

    The gradient is that of `compute_loss` (`losses.reduce_loss`: the sum
    over this replica's examples divided by the global batch). The logged
    `loss` is a mean over examples, not over replicas, so it is the
    single-device value however a batch splits over replicas (an uneven
    or empty replica batch included), where Keras' own loss tracker would
    weight each replica's share by its batch size twice.
    """
    x = _input_dict(data)
    with tf.GradientTape() as tape:
      outputs = self(x, training=True)
      per_example = self.span_losses(x, outputs)
      penalty = self._penalty()
      loss = losses.reduce_loss(per_example) + penalty
      scaled_loss = self.optimizer.scale_loss(loss)
    variables = self.trainable_variables
    gradients = tape.gradient(scaled_loss, variables)
    self.optimizer.apply_gradients(zip(gradients, variables, strict=True))
    return self._track(per_example + penalty)

  def test_step(self, data):
    x = _input_dict(data)
    outputs = self(x, training=False)
    return self._track(self.span_losses(x, outputs) + self._penalty())

  def _track(self, per_example: tf.Tensor) -> dict[str, tf.Tensor]:
    self._loss_metric.update_state(per_example)
    return mean_results({"loss": self._loss_metric})

  def get_config(self):
    return {
      **super().get_config(),
      "word_vocab_size": self.word_vocab_size,
      "char_vocab_size": self.char_vocab_size,
      "word_dim": self.word_dim,
      "char_dim": self.char_dim,
      "char_hidden": self.char_hidden,
      "char_encoder": self.char_encoder,
      "hidden": self.hidden,
      "aligner_hops": self.aligner_hops,
      "pointer_hops": self.pointer_hops,
      "dropout": self.dropout,
      "variational_dropout": self.variational_dropout,
      "max_answer_len": self.max_answer_len,
      "trainable_words": self.trainable_words,
      "reattention": self.reattention,
      "use_cudnn": self.use_cudnn,
      "pointer": self.pointer_kind,
      "question_em": self.question_em,
      "num_trainable_words": self.num_trainable_words,
    }


def mean_results(
  trackers: dict[str, keras.metrics.Mean],
) -> dict[str, tf.Tensor]:
  """Each `Mean`'s value over every replica's examples so far.

  A train step's logs are read in a replica context, where a Keras metric
  gives its replica's own mean (its variables sum only when read across
  replicas), and Keras then averages the replicas' values: wrong once the
  replicas have seen different numbers of examples (an uneven or empty
  replica batch). Here the totals and counts are summed over the replicas
  first (`losses.global_sums`), so every replica logs the single-device
  value.
  """
  sums = losses.global_sums(
    [v for m in trackers.values() for v in (m.total.value, m.count.value)]
  )
  return {
    name: tf.math.divide_no_nan(sums[2 * i], sums[2 * i + 1])
    for i, name in enumerate(trackers)
  }


def _input_dict(data) -> dict[str, tf.Tensor]:
  """The flat batch dict of `fit` / `evaluate` data (`x`, or `(x, y)`)."""
  x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
  if not isinstance(x, dict):
    raise TypeError(f"The reader expects a dict batch, got {type(x).__name__}.")
  if isinstance(y, dict):
    x = {**x, **y}
  return x


def build_reader(
  model_config: ModelConfig,
  word_vocab_size: int,
  char_vocab_size: int,
  embedding_matrix: np.ndarray | WordVectors | None = None,
  use_cudnn: str | bool = "auto",
  dtype: str | keras.DTypePolicy | None = None,
  name: str = "rmr_reader",
) -> RMRReader:
  """Builds an `RMRReader` with every weight created.

  Args:
    model_config: Architecture sizes.
    word_vocab_size: Word ids; must equal `embedding_matrix.shape[0]` when a
      matrix is given.
    char_vocab_size: Character ids.
    embedding_matrix: Optional pretrained `[word_vocab_size, word_dim]` word
      vectors (e.g. GloVe): a `WordVectors` (as `a2d_tf.artifacts.load_vocab`
      returns), whose first `num_trainable` rows keep training in their own
      block while the others are frozen, or a plain array, every row
      frozen. Without it the embedding is randomly initialized and trained.
      The matrix is assigned to the weights, never stored in the config.
    use_cudnn: See `RMRReader`.
    dtype: Optional dtype policy, e.g. "mixed_bfloat16".
    name: Model name.

  Returns:
    A built, uncompiled `RMRReader`.
  """
  matrix, num_trainable = None, 0
  if isinstance(embedding_matrix, WordVectors):
    matrix = embedding_matrix.matrix
    num_trainable = embedding_matrix.num_trainable
  elif embedding_matrix is not None:
    matrix = embedding_matrix
  if matrix is not None:
    expected = (word_vocab_size, model_config.word_dim)
    if tuple(matrix.shape) != expected:
      raise ValueError(
        f"embedding_matrix must have shape {expected} (word_vocab_size, "
        f"word_dim), received: {tuple(matrix.shape)}"
      )
    if not 0 <= num_trainable <= word_vocab_size:
      raise ValueError(
        f"WordVectors.num_trainable must be in [0, {word_vocab_size}], "
        f"received: {num_trainable}"
      )
  # Every row trains when no word has a vector: one plain embedding.
  trainable_words = matrix is None or num_trainable == word_vocab_size
  model = RMRReader(
    word_vocab_size,
    char_vocab_size,
    trainable_words=trainable_words,
    num_trainable_words=0 if trainable_words else num_trainable,
    use_cudnn=use_cudnn,
    dtype=dtype,
    name=name,
    **dataclasses.asdict(model_config),
  )
  model.build(input_shapes())
  if matrix is not None:
    model.embedding.assign_word_vectors(np.asarray(matrix, np.float32))
  return model


def count_params(model: keras.Model) -> dict[str, int]:
  """Parameter counts of a built model.

  Returns:
    `trainable`, `non_trainable` and `total` scalars, plus
    `trainable/<layer>` for each top-level layer (e.g. `trainable/aligner`),
    and for an `RMRReader` the trainable parameters per block of
    `PARAM_BLOCKS` as `block/<name>` (`word_embedding`, `char_encoder`,
    `encoder`, `aligner`, `pointer`), which sum to `trainable`, and
    `block/frozen_words`, the frozen pretrained word rows.
  """
  counts = {
    "trainable": _size(model.trainable_weights),
    "non_trainable": _size(model.non_trainable_weights),
  }
  counts["total"] = counts["trainable"] + counts["non_trainable"]
  for layer in model.layers:
    counts[f"trainable/{layer.name}"] = _size(layer.trainable_weights)
  if isinstance(model, RMRReader):
    for block, path in PARAM_BLOCKS:
      layer = model
      for attr in path:
        layer = getattr(layer, attr)
      counts[f"block/{block}"] = _size(layer.trainable_weights)
    counts["block/frozen_words"] = _size(
      model.embedding.word_embedding.non_trainable_weights
    )
  return counts


def _size(weights) -> int:
  return int(sum(np.prod(w.shape) for w in weights))
