"""Answer pointers of the Mnemonic Reader and the Reinforced Mnemonic Reader.

`MemoryAnswerPointer` is the earlier Mnemonic Reader's multi-hop pointer (L
hops of start/end scoring with SFU memory updates, scorer input `[r; z; r *
z]`). `RMRAnswerPointer` is the pointer of the IJCAI 2018 Reinforced
Mnemonic Reader (Hu et al., Sec. 3.3): the question summary scores the
start, one SFU update with the start-weighted evidence gives the state that
scores the end, with scorer input `[r; z; r * z; r - z]`.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from a2d_tf import masking
from a2d_tf.layers.fusion import SemanticFusionUnit
from a2d_tf.layers.recurrent import check_rate, check_units, input_dropout


@keras.saving.register_keras_serializable(package="a2d")
class QuestionSummary(keras.layers.Layer):
  """Attention-pooled question vector `s = sum_i softmax(w . v_i) v_i`.

  Padded question words get zero weight (masked softmax), so the summary is
  independent of padding.

  Args:
    **kwargs: Base layer arguments.

  Call arguments:
    question: `[batch, question_len, dim]`.
    question_mask: bool `[batch, question_len]`.

  Returns:
    `[batch, dim]`.
  """

  def build(self, question_shape):
    self.score = keras.layers.Dense(
      1, use_bias=False, dtype=self.dtype_policy, name="score"
    )
    self.score.build(question_shape)
    self.built = True

  def call(self, question, question_mask):
    scores = tf.squeeze(self.score(question), axis=-1)
    weights = masking.masked_softmax(scores, question_mask)
    return tf.einsum("bq,bqd->bd", tf.cast(weights, question.dtype), question)

  def compute_output_shape(self, question_shape):
    return (question_shape[0], question_shape[-1])


@keras.saving.register_keras_serializable(package="a2d")
class BoundaryScorer(keras.layers.Layer):
  """`w . tanh(W [r_j; z; r_j * z])` for every passage word j.

  With `difference=True` the scorer input is `[r_j; z; r_j * z; r_j - z]`
  (the IJCAI RMR pointer's).

  Args:
    hidden: Width of the tanh layer.
    difference: Also feed `r_j - z`.
    **kwargs: Base layer arguments.

  Call arguments:
    memory: `[batch, passage_len, dim]`.
    state: `[batch, dim]`.
    passage_mask: bool `[batch, passage_len]`.

  Returns:
    float32 logits `[batch, passage_len]`, `MASK_VALUE` at padding.
  """

  def __init__(self, hidden: int, difference: bool = False, **kwargs):
    super().__init__(**kwargs)
    check_units("hidden", hidden)
    self.hidden = hidden
    self.difference = bool(difference)
    self.projection = keras.layers.Dense(
      hidden, activation="tanh", dtype=self.dtype_policy, name="projection"
    )
    # No bias: a constant shift of the logits cancels in every softmax.
    self.output_layer = keras.layers.Dense(
      1, use_bias=False, dtype=self.dtype_policy, name="output"
    )

  def build(self, memory_shape, state_shape):
    parts = 4 if self.difference else 3
    self.projection.build((*tuple(memory_shape)[:-1], parts * memory_shape[-1]))
    self.output_layer.build((*tuple(memory_shape)[:-1], self.hidden))
    self.built = True

  def call(self, memory, state, passage_mask):
    state = tf.broadcast_to(
      tf.cast(state, memory.dtype)[:, None, :], tf.shape(memory)
    )
    parts = [memory, state, memory * state]
    if self.difference:
      parts.append(memory - state)
    features = tf.concat(parts, axis=-1)
    logits = tf.squeeze(self.output_layer(self.projection(features)), -1)
    return masking.mask_logits(logits, passage_mask)

  def get_config(self):
    config = {**super().get_config(), "hidden": self.hidden}
    if self.difference:
      # Only when set, so configs saved before the argument existed match.
      config["difference"] = True
    return config


@keras.saving.register_keras_serializable(package="a2d")
class MemoryAnswerPointer(keras.layers.Layer):
  """L hops of start/end pointing with a memory state updated by SFUs.

  `z^s_1` = the question summary. Hop l: `p^s = softmax(FN_s(R, z^s_l))`,
  `z^e_l = SFU(z^s_l, R^T p^s)`, `p^e = softmax(FN_e(R, z^e_l))` (the end is
  conditioned on the start through `z^e_l`), and for l < L
  `z^s_{l+1} = SFU(z^e_l, R^T p^e)`. The last hop's scores are returned.

  Args:
    hops: Number of hops L.
    hidden: Width of the scorers' tanh layers.
    dropout: Dropout rate on the memory.
    variational: Same memory dropout mask at every position.
    **kwargs: Base layer arguments.

  Call arguments:
    memory: `[batch, passage_len, dim]`, the evidence of the aligner.
    question: `[batch, question_len, dim]`, the encoded question.
    passage_mask: bool `[batch, passage_len]`.
    question_mask: bool `[batch, question_len]`.
    training: Enables dropout.

  Returns:
    `(start_logits, end_logits)`, float32 `[batch, passage_len]` each,
    `MASK_VALUE` at padding.
  """

  def __init__(
    self,
    hops: int,
    hidden: int,
    dropout: float = 0.0,
    variational: bool = True,
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
    policy = self.dtype_policy
    self.memory_dropout = input_dropout(dropout, variational, policy)
    self.summary = QuestionSummary(dtype=policy, name="summary")
    self.start_scorers = [
      BoundaryScorer(hidden, dtype=policy, name=f"start_{hop}")
      for hop in range(hops)
    ]
    self.end_scorers = [
      BoundaryScorer(hidden, dtype=policy, name=f"end_{hop}")
      for hop in range(hops)
    ]
    self.start_fusions = [
      SemanticFusionUnit(dtype=policy, name=f"start_fusion_{hop}")
      for hop in range(hops)
    ]
    # The last hop's end evidence updates no state, so it has no SFU.
    self.end_fusions = [
      SemanticFusionUnit(dtype=policy, name=f"end_fusion_{hop}")
      for hop in range(hops - 1)
    ]

  def build(self, memory_shape, question_shape):
    if memory_shape[-1] != question_shape[-1]:
      raise ValueError(
        "MemoryAnswerPointer needs memory and question of one width, "
        f"received: memory_shape={memory_shape}, "
        f"question_shape={question_shape}"
      )
    state_shape = (memory_shape[0], memory_shape[-1])
    self.summary.build(question_shape)
    for layer in self.start_scorers + self.end_scorers:
      layer.build(memory_shape, state_shape)
    for layer in self.start_fusions + self.end_fusions:
      layer.build(state_shape, state_shape)
    self.built = True

  def call(self, memory, question, passage_mask, question_mask, training=None):
    memory = self.memory_dropout(memory, training=training)
    state = self.summary(question, question_mask)
    start_logits = end_logits = None
    for hop in range(self.hops):
      start_logits = self.start_scorers[hop](memory, state, passage_mask)
      evidence = _pool(memory, start_logits, passage_mask)
      state = self.start_fusions[hop](state, evidence)
      end_logits = self.end_scorers[hop](memory, state, passage_mask)
      if hop + 1 < self.hops:
        evidence = _pool(memory, end_logits, passage_mask)
        state = self.end_fusions[hop](state, evidence)
    return start_logits, end_logits

  def get_config(self):
    return {
      **super().get_config(),
      "hops": self.hops,
      "hidden": self.hidden,
      "dropout": self.dropout,
      "variational": self.variational,
    }


def _pool(memory, logits, passage_mask):
  """`R^T softmax(logits)`: the evidence the distribution points at."""
  probs = masking.masked_softmax(logits, passage_mask)
  return tf.einsum("bp,bpd->bd", tf.cast(probs, memory.dtype), memory)


@keras.saving.register_keras_serializable(package="a2d")
class RMRAnswerPointer(keras.layers.Layer):
  """The IJCAI 2018 RMR answer pointer: start, one SFU update, end.

  With `R` the aligner's evidence and `s` the attention-pooled question
  summary (`QuestionSummary`):
  `p^s = softmax(FN_s(R, s))`, `u = R^T p^s` (the start-weighted
  evidence), `s~ = SFU(s, u)`, `p^e = softmax(FN_e(R, s~))`, where
  `FN(R, z)_j = w . tanh(W [r_j; z; r_j * z; r_j - z])`. The end is
  conditioned on the start through `s~`. Unlike `MemoryAnswerPointer` it
  has no hops: one start, one state update, one end.

  Args:
    hidden: Width of the scorers' tanh layers.
    dropout: Dropout rate on the memory.
    variational: Same memory dropout mask at every position.
    **kwargs: Base layer arguments.

  Call arguments:
    memory: `[batch, passage_len, dim]`, the evidence of the aligner.
    question: `[batch, question_len, dim]`, the encoded question.
    passage_mask: bool `[batch, passage_len]`.
    question_mask: bool `[batch, question_len]`.
    training: Enables dropout.

  Returns:
    `(start_logits, end_logits)`, float32 `[batch, passage_len]` each,
    `MASK_VALUE` at padding.
  """

  def __init__(
    self,
    hidden: int,
    dropout: float = 0.0,
    variational: bool = True,
    **kwargs,
  ):
    super().__init__(**kwargs)
    check_units("hidden", hidden)
    check_rate("dropout", dropout)
    self.hidden = hidden
    self.dropout = dropout
    self.variational = variational
    policy = self.dtype_policy
    self.memory_dropout = input_dropout(dropout, variational, policy)
    self.summary = QuestionSummary(dtype=policy, name="summary")
    self.start_scorer = BoundaryScorer(
      hidden, difference=True, dtype=policy, name="start"
    )
    self.fusion = SemanticFusionUnit(dtype=policy, name="fusion")
    self.end_scorer = BoundaryScorer(
      hidden, difference=True, dtype=policy, name="end"
    )

  def build(self, memory_shape, question_shape):
    if memory_shape[-1] != question_shape[-1]:
      raise ValueError(
        "RMRAnswerPointer needs memory and question of one width, "
        f"received: memory_shape={memory_shape}, "
        f"question_shape={question_shape}"
      )
    state_shape = (memory_shape[0], memory_shape[-1])
    self.summary.build(question_shape)
    self.start_scorer.build(memory_shape, state_shape)
    self.fusion.build(state_shape, state_shape)
    self.end_scorer.build(memory_shape, state_shape)
    self.built = True

  def call(self, memory, question, passage_mask, question_mask, training=None):
    memory = self.memory_dropout(memory, training=training)
    summary = self.summary(question, question_mask)
    start_logits = self.start_scorer(memory, summary, passage_mask)
    evidence = _pool(memory, start_logits, passage_mask)
    state = self.fusion(summary, evidence)
    end_logits = self.end_scorer(memory, state, passage_mask)
    return start_logits, end_logits

  def get_config(self):
    return {
      **super().get_config(),
      "hidden": self.hidden,
      "dropout": self.dropout,
      "variational": self.variational,
    }
