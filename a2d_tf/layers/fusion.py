"""Semantic Fusion Unit (SFU) of the Reinforced Mnemonic Reader."""

from __future__ import annotations

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="a2d")
class SemanticFusionUnit(keras.layers.Layer):
  """Gated fusion of an input with a fusion vector of the same width.

  With `f = [x; y; x * y; x - y]`:
  `r = tanh(W_r f + b_r)`, `g = sigmoid(W_g f + b_g)`,
  `o = g * r + (1 - g) * x`.

  Args:
    **kwargs: Base layer arguments.

  Call arguments:
    x: `[..., dim]`, the main input (kept where the gate is closed).
    y: `[..., dim]`, the fusion input (e.g. the attended vector).

  Returns:
    `[..., dim]`.
  """

  def build(self, x_shape, y_shape):
    dim = x_shape[-1]
    if dim is None or y_shape[-1] != dim:
      raise ValueError(
        "SemanticFusionUnit needs inputs of one known width, received: "
        f"x_shape={x_shape}, y_shape={y_shape}"
      )
    self.composition = keras.layers.Dense(
      dim, activation="tanh", dtype=self.dtype_policy, name="composition"
    )
    self.gate = keras.layers.Dense(
      dim, activation="sigmoid", dtype=self.dtype_policy, name="gate"
    )
    fused_shape = (*tuple(x_shape)[:-1], 4 * dim)
    self.composition.build(fused_shape)
    self.gate.build(fused_shape)
    self.built = True

  def call(self, x, y):
    y = tf.cast(y, x.dtype)
    fused = tf.concat([x, y, x * y, x - y], axis=-1)
    gate = self.gate(fused)
    return gate * self.composition(fused) + (1.0 - gate) * x

  def compute_output_shape(self, x_shape, y_shape):
    return tuple(x_shape)
