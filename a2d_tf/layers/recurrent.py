"""Masked bidirectional LSTM with (variational) input dropout."""

from __future__ import annotations

import keras
import tensorflow as tf

_CUDNN_CHOICES = ("auto", True, False)


def check_rate(name: str, value: float) -> None:
  """Raises ValueError unless `0 <= value < 1`."""
  if not 0.0 <= value < 1.0:
    raise ValueError(f"{name} must be in [0, 1), received: {name}={value}")


def check_units(name: str, value: int) -> None:
  """Raises ValueError unless `value` is a positive int."""
  if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
    raise ValueError(
      f"{name} must be a positive integer, received: {name}={value!r}"
    )


def input_dropout(
  rate: float, variational: bool, dtype=None
) -> keras.layers.Dropout:
  """Dropout on `[batch, time, features]`; variational = one mask per row.

  With `variational`, the same features are dropped at every time step
  (Gal & Ghahramani), as the RMR paper does on every LSTM input.
  """
  noise_shape = (None, 1, None) if variational else None
  return keras.layers.Dropout(rate, noise_shape=noise_shape, dtype=dtype)


@keras.saving.register_keras_serializable(package="a2d")
class BiLSTM(keras.layers.Layer):
  """Bidirectional LSTM over a right-padded sequence with an explicit mask.

  Padded steps never reach the state of either direction; they are zero in
  the returned sequence. A row without any valid step returns zeros.

  Args:
    units: Hidden units per direction.
    dropout: Dropout rate on the inputs.
    variational: Use the same input dropout mask at every time step.
    return_sequences: Return every step (`[batch, time, 2 * units]`) or the
      concatenated final states of both directions (`[batch, 2 * units]`).
    use_cudnn: Passed to `keras.layers.LSTM`: "auto" uses cuDNN on a GPU
      (not XLA-compilable; Keras then compiles the step without XLA), False
      forces the `while_loop` kernel that XLA compiles.
    **kwargs: Base layer arguments.

  Call arguments:
    inputs: `[batch, time, features]`.
    sequence_mask: bool `[batch, time]`, true at valid steps; must be
      right-padded.
    training: Python bool or scalar tensor; enables dropout.

  Returns:
    `[batch, time, 2 * units]` (zero at padded steps) or `[batch, 2 * units]`
    (zero for rows without valid steps).
  """

  def __init__(
    self,
    units: int,
    dropout: float = 0.0,
    variational: bool = True,
    return_sequences: bool = True,
    use_cudnn: str | bool = "auto",
    **kwargs,
  ):
    super().__init__(**kwargs)
    check_units("units", units)
    check_rate("dropout", dropout)
    if use_cudnn not in _CUDNN_CHOICES:
      raise ValueError(
        f"use_cudnn must be one of {_CUDNN_CHOICES}, received: "
        f"use_cudnn={use_cudnn!r}"
      )
    self.units = units
    self.dropout = dropout
    self.variational = variational
    self.return_sequences = return_sequences
    self.use_cudnn = use_cudnn
    self.input_dropout = input_dropout(
      dropout, variational, dtype=self.dtype_policy
    )
    # Two LSTMs rather than `keras.layers.Bidirectional`: Bidirectional
    # serializes its template layer twice while it is built, and inside
    # `keras.saving.load_model`'s object-sharing scope the second copy can
    # come back as the first (go_backwards=False for both), which made
    # loading a saved reader fail in long-running processes.
    self.forward_lstm = self._lstm(go_backwards=False)
    self.backward_lstm = self._lstm(go_backwards=True)

  def _lstm(self, go_backwards: bool) -> keras.layers.LSTM:
    return keras.layers.LSTM(
      self.units,
      return_sequences=self.return_sequences,
      go_backwards=go_backwards,
      zero_output_for_mask=self.return_sequences,
      use_cudnn=self.use_cudnn,
      dtype=self.dtype_policy,
      name="backward_lstm" if go_backwards else "forward_lstm",
    )

  def build(self, input_shape):
    self.forward_lstm.build(tuple(input_shape))
    self.backward_lstm.build(tuple(input_shape))
    self.built = True

  def call(self, inputs, sequence_mask, training=None):
    mask = tf.cast(sequence_mask, tf.bool)
    x = self.input_dropout(inputs, training=training)
    # cuDNN rejects fully masked rows (e.g. length-0 filler rows of an uneven
    # batch), so step 0 always runs; what it produces is zeroed below.
    first_step = tf.equal(tf.range(tf.shape(mask)[1]), 0)[None, :]
    rnn_mask = tf.logical_or(mask, first_step)
    forward = self.forward_lstm(x, mask=rnn_mask, training=training)
    backward = self.backward_lstm(x, mask=rnn_mask, training=training)
    if self.return_sequences:
      # The backward LSTM emits its steps last-to-first.
      backward = tf.reverse(backward, axis=[1])
    outputs = tf.concat([forward, backward], axis=-1)
    if self.return_sequences:
      return outputs * tf.cast(mask, outputs.dtype)[..., None]
    has_steps = tf.reduce_any(mask, axis=1, keepdims=True)
    return tf.where(has_steps, outputs, tf.zeros_like(outputs))

  def compute_output_shape(self, input_shape):
    if self.return_sequences:
      return (*tuple(input_shape)[:-1], 2 * self.units)
    return (input_shape[0], 2 * self.units)

  def get_config(self):
    return {
      **super().get_config(),
      "units": self.units,
      "dropout": self.dropout,
      "variational": self.variational,
      "return_sequences": self.return_sequences,
      "use_cudnn": self.use_cudnn,
    }
