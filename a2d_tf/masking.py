"""Masking helpers shared by the reader, the losses and the knowledge step.

Padded positions are masked before every softmax with `MASK_VALUE`, a large
finite negative in float32: it stays finite after dividing by a temperature,
so masked softmaxes never produce NaN, and a fully padded row gives a uniform
(not NaN) distribution that callers then zero with the mask.
"""

from __future__ import annotations

import tensorflow as tf

MASK_VALUE = -1e9


def mask_logits(logits: tf.Tensor, mask: tf.Tensor) -> tf.Tensor:
  """Sets positions where `mask` is false to `MASK_VALUE` (float32)."""
  logits = tf.cast(logits, tf.float32)
  mask = tf.cast(mask, tf.bool)
  return tf.where(mask, logits, tf.constant(MASK_VALUE, tf.float32))


def masked_softmax(
  logits: tf.Tensor,
  mask: tf.Tensor,
  axis: int = -1,
  temperature: float = 1.0,
) -> tf.Tensor:
  """Softmax of `logits / temperature` over valid positions only.

  Args:
    logits: Scores, any float dtype; computed in float32.
    mask: Boolean (or 0/1) tensor broadcastable to `logits`; true is valid.
    axis: Axis of the distribution.
    temperature: Softening temperature tau.

  Returns:
    float32 probabilities; exactly zero at masked positions, and all zero on a
    row without any valid position.
  """
  mask = tf.cast(mask, tf.bool)
  scaled = mask_logits(logits, mask) / temperature
  probs = tf.nn.softmax(scaled, axis=axis)
  probs = tf.where(mask, probs, tf.zeros_like(probs))
  return probs


def sequence_mask(lengths: tf.Tensor, maxlen: tf.Tensor | int) -> tf.Tensor:
  """Boolean `[batch, maxlen]` mask of the first `lengths` positions."""
  return tf.sequence_mask(lengths, maxlen=maxlen)
