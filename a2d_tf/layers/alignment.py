"""Iterative aligner with re-attention (Hu et al., IJCAI 2018, Sec. 3.1-3.2).

Score layouts follow the paper. For the question `V = [v_1..v_n]` and the
passage `C = [c_1..c_m]` of a hop:
- interactive scores `E[i, j] = f(v_i, c_j)`: `[batch, question_len,
  passage_len]`; column `j` softmaxed over `i` is passage word j's
  attention over the question.
- self scores `B[k, j] = f(c_k, c_j)` for `k != j`: `[batch, passage_len
  (attended k), passage_len (attending j)]`; column `j` softmaxed over `k`
  is passage word j's attention over the other passage words. The diagonal
  is excluded by masking (score = MASK_VALUE), never by zeroing a score.
- `f(a, b) = relu(W_a a) . relu(W_b b)`, the paper's dot-product
  similarity on ReLU projections.

Re-attention from hop 2 on (`gamma` one trainable scalar):
- `E^t[i, j] += gamma * softmax(E^{t-1}[i, :]) . softmax(B^{t-1}[:, j])`
- `B^t[k, j] += gamma * softmax(B^{t-1}[k, :]) . softmax(B^{t-1}[:, j])`
where every softmax runs over valid positions only.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from a2d_tf import masking
from a2d_tf.layers.fusion import SemanticFusionUnit
from a2d_tf.layers.recurrent import BiLSTM, check_rate, check_units


def interaction_mask(question_mask, passage_mask) -> tf.Tensor:
  """bool `[batch, question_len, passage_len]`: both words valid."""
  question_mask = tf.cast(question_mask, tf.bool)
  passage_mask = tf.cast(passage_mask, tf.bool)
  return tf.logical_and(question_mask[:, :, None], passage_mask[:, None, :])


def self_mask(passage_mask) -> tf.Tensor:
  """bool `[batch, passage_len, passage_len]`: both valid, off-diagonal."""
  passage_mask = tf.cast(passage_mask, tf.bool)
  both = tf.logical_and(passage_mask[:, :, None], passage_mask[:, None, :])
  length = tf.shape(passage_mask)[1]
  off_diagonal = tf.logical_not(tf.eye(length, dtype=tf.bool))
  return tf.logical_and(both, off_diagonal[None])


def reattention(row_scores, row_mask, column_scores, column_mask):
  """`softmax(row_scores[i, :]) . softmax(column_scores[:, j])` for all i, j.

  Args:
    row_scores: float `[batch, rows, inner]`, softmaxed over `inner`.
    row_mask: bool, broadcastable to `row_scores`.
    column_scores: float `[batch, inner, columns]`, softmaxed over `inner`.
    column_mask: bool, broadcastable to `column_scores`.

  Returns:
    float32 `[batch, rows, columns]` in [0, 1].
  """
  rows = masking.masked_softmax(row_scores, row_mask, axis=2)
  columns = masking.masked_softmax(column_scores, column_mask, axis=1)
  return tf.matmul(rows, columns)


def _attend(probs, values):
  """`probs^T values`: `[b, k, j]` x `[b, k, d]` -> `[b, j, d]`."""
  return tf.matmul(tf.cast(probs, values.dtype), values, transpose_a=True)


def _projection(units, dtype):
  """The ReLU projection of the similarity function."""
  return keras.layers.Dense(units, activation="relu", dtype=dtype)


@keras.saving.register_keras_serializable(package="a2d")
class InteractiveAlignment(keras.layers.Layer):
  """Question-aware passage: attend the question per passage word, fuse.

  Args:
    projection_units: Width of the ReLU projections of the similarity.
    **kwargs: Base layer arguments.

  Call arguments:
    passage: `[batch, passage_len, dim]`.
    question: `[batch, question_len, dim]`.
    passage_mask: bool `[batch, passage_len]`.
    question_mask: bool `[batch, question_len]`.
    prior: Optional float32 `[batch, question_len, passage_len]` added to the
      scores (the scaled re-attention term).

  Returns:
    `(fused, scores, attention)`: the SFU output `[batch, passage_len, dim]`;
    the float32 scores `E` `[batch, question_len, passage_len]` (unmasked,
    prior included); float32 `attention` `[batch, passage_len,
    question_len]`, each valid passage row a distribution over the valid
    question words, zero elsewhere.
  """

  def __init__(self, projection_units: int, **kwargs):
    super().__init__(**kwargs)
    check_units("projection_units", projection_units)
    self.projection_units = projection_units
    policy = self.dtype_policy
    self.passage_projection = _projection(projection_units, policy)
    self.question_projection = _projection(projection_units, policy)
    self.fusion = SemanticFusionUnit(dtype=policy)

  def build(self, passage_shape, question_shape):
    if passage_shape[-1] != question_shape[-1]:
      raise ValueError(
        "InteractiveAlignment needs passage and question of one width, "
        f"received: passage_shape={passage_shape}, "
        f"question_shape={question_shape}"
      )
    self.passage_projection.build(passage_shape)
    self.question_projection.build(question_shape)
    self.fusion.build(passage_shape, passage_shape)
    self.built = True

  def call(self, passage, question, passage_mask, question_mask, prior=None):
    keys = self.question_projection(question)
    queries = self.passage_projection(passage)
    scores = tf.cast(tf.matmul(keys, queries, transpose_b=True), tf.float32)
    if prior is not None:
      scores = scores + tf.cast(prior, tf.float32)
    mask = interaction_mask(question_mask, passage_mask)
    probs = masking.masked_softmax(scores, mask, axis=1)
    fused = self.fusion(passage, _attend(probs, question))
    return fused, scores, tf.transpose(probs, [0, 2, 1])

  def get_config(self):
    return {
      **super().get_config(),
      "projection_units": self.projection_units,
    }


@keras.saving.register_keras_serializable(package="a2d")
class SelfAlignment(keras.layers.Layer):
  """Self-aware passage: attend the other passage words per word, fuse.

  Args:
    projection_units: Width of the ReLU projections of the similarity.
    **kwargs: Base layer arguments.

  Call arguments:
    passage: `[batch, passage_len, dim]`.
    passage_mask: bool `[batch, passage_len]`.
    prior: Optional float32 `[batch, passage_len, passage_len]` added to the
      scores.

  Returns:
    `(fused, scores)`: `[batch, passage_len, dim]` and the float32 scores `B`
    `[batch, passage_len (attended), passage_len (attending)]`.
  """

  def __init__(self, projection_units: int, **kwargs):
    super().__init__(**kwargs)
    check_units("projection_units", projection_units)
    self.projection_units = projection_units
    policy = self.dtype_policy
    self.key_projection = _projection(projection_units, policy)
    self.query_projection = _projection(projection_units, policy)
    self.fusion = SemanticFusionUnit(dtype=policy)

  def build(self, passage_shape):
    self.key_projection.build(passage_shape)
    self.query_projection.build(passage_shape)
    self.fusion.build(passage_shape, passage_shape)
    self.built = True

  def call(self, passage, passage_mask, prior=None):
    keys = self.key_projection(passage)
    queries = self.query_projection(passage)
    scores = tf.cast(tf.matmul(keys, queries, transpose_b=True), tf.float32)
    if prior is not None:
      scores = scores + tf.cast(prior, tf.float32)
    probs = masking.masked_softmax(scores, self_mask(passage_mask), axis=1)
    fused = self.fusion(passage, _attend(probs, passage))
    return fused, scores

  def get_config(self):
    return {
      **super().get_config(),
      "projection_units": self.projection_units,
    }


@keras.saving.register_keras_serializable(package="a2d")
class IterativeAligner(keras.layers.Layer):
  """T hops of interactive alignment, self alignment and evidence collection.

  Hop t aligns the question with the previous hop's evidence `R^{t-1}`
  (`R^0` = the encoded passage), fuses with SFUs, and collects evidence with
  a BiLSTM: `R^t = BiLSTM(SFU(self-aligned(SFU(interactive))))`. From hop 2
  on the scores get the re-attention terms (module docstring).

  Args:
    hops: Number of hops T.
    hidden: BiLSTM units per direction; inputs must be `2 * hidden` wide.
    dropout: Input dropout rate of the evidence BiLSTMs.
    variational: Variational input dropout.
    reattention: Add the re-attention terms from hop 2 on.
    gamma_init: Initial value of the trainable re-attention weight.
    use_cudnn: See `BiLSTM`.
    **kwargs: Base layer arguments.

  Call arguments:
    passage: `[batch, passage_len, 2 * hidden]`.
    question: `[batch, question_len, 2 * hidden]`.
    passage_mask: bool `[batch, passage_len]`.
    question_mask: bool `[batch, question_len]`.
    training: Enables dropout.

  Returns:
    `(memory, attention)`: `[batch, passage_len, 2 * hidden]` (zero at
    padding) and float32 `[batch, hops, passage_len, question_len]`, the
    interactive attention of every hop.
  """

  def __init__(
    self,
    hops: int,
    hidden: int,
    dropout: float = 0.0,
    variational: bool = True,
    reattention: bool = True,
    gamma_init: float = 3.0,
    use_cudnn: str | bool = "auto",
    **kwargs,
  ):
    super().__init__(**kwargs)
    check_units("hops", hops)
    check_units("hidden", hidden)
    check_rate("dropout", dropout)
    self.hops = hops
    self.hidden = hidden
    self.dropout = dropout
    self.variational = variational
    self.reattention = reattention
    self.gamma_init = gamma_init
    self.use_cudnn = use_cudnn
    policy = self.dtype_policy
    self.interactive = [
      InteractiveAlignment(hidden, dtype=policy, name=f"interactive_{t}")
      for t in range(hops)
    ]
    self.self_alignment = [
      SelfAlignment(hidden, dtype=policy, name=f"self_{t}") for t in range(hops)
    ]
    self.evidence = [
      BiLSTM(
        hidden,
        dropout=dropout,
        variational=variational,
        use_cudnn=use_cudnn,
        dtype=policy,
        name=f"evidence_{t}",
      )
      for t in range(hops)
    ]

  def build(self, passage_shape, question_shape):
    width = 2 * self.hidden
    if passage_shape[-1] != width or question_shape[-1] != width:
      raise ValueError(
        f"IterativeAligner(hidden={self.hidden}) needs inputs of width "
        f"{width}, received: passage_shape={passage_shape}, "
        f"question_shape={question_shape}"
      )
    for t in range(self.hops):
      self.interactive[t].build(passage_shape, question_shape)
      self.self_alignment[t].build(passage_shape)
      self.evidence[t].build(passage_shape)
    if self.reattention and self.hops > 1:
      self.gamma = self.add_weight(
        name="gamma",
        shape=(),
        initializer=keras.initializers.Constant(self.gamma_init),
        dtype="float32",
        autocast=False,
      )
    self.built = True

  def call(self, passage, question, passage_mask, question_mask, training=None):
    e_mask = interaction_mask(question_mask, passage_mask)
    b_mask = self_mask(passage_mask)
    memory = passage
    attentions = []
    scores_e = scores_b = None
    for t in range(self.hops):
      prior_e = prior_b = None
      if self.reattention and t > 0:
        prior_e = self.gamma * reattention(scores_e, e_mask, scores_b, b_mask)
        prior_b = self.gamma * reattention(scores_b, b_mask, scores_b, b_mask)
      fused, scores_e, attention = self.interactive[t](
        memory, question, passage_mask, question_mask, prior=prior_e
      )
      fused, scores_b = self.self_alignment[t](
        fused, passage_mask, prior=prior_b
      )
      memory = self.evidence[t](fused, passage_mask, training=training)
      attentions.append(attention)
    return memory, tf.stack(attentions, axis=1)

  def get_config(self):
    return {
      **super().get_config(),
      "hops": self.hops,
      "hidden": self.hidden,
      "dropout": self.dropout,
      "variational": self.variational,
      "reattention": self.reattention,
      "gamma_init": self.gamma_init,
      "use_cudnn": self.use_cudnn,
    }
