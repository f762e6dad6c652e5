"""Masked bidirectional LSTM with (variational) input dropout.

On a GPU the LSTMs run cuDNN's fused kernel (`cudnn_lstm`), called here
rather than through `keras.layers.LSTM`: Keras' cuDNN path checks every
mask with `tf.Assert` (right-padded, no empty row), an op that runs on the
host, so each LSTM call of a step copied a flag from the GPU and made the
host wait for it. `BiLSTM` builds its masks right-padded with at least one
step per row by construction, so it passes cuDNN the sequence lengths
without that check. Elsewhere (CPU, `use_cudnn=False`, XLA) the Keras LSTM
layers run their `while_loop` kernel; both kernels share the same weights.
"""

from __future__ import annotations

import keras
import tensorflow as tf

_CUDNN_CHOICES = ("auto", True, False)


def gpu_available() -> bool:
  """Whether TF has a logical GPU (where cuDNN kernels can run)."""
  return bool(tf.config.list_logical_devices("GPU"))


def cudnn_lstm(
  lstm: keras.layers.LSTM,
  inputs: tf.Tensor,
  sequence_lengths: tf.Tensor,
) -> tf.Tensor:
  """`lstm` over right-padded `inputs` with cuDNN's kernel (GPU only).

  The computation of `keras.layers.LSTM(use_cudnn=True)` with a mask of
  `sequence_lengths` (Keras' `backend.tensorflow.rnn._cudnn_lstm`: the same
  weight layout, zero initial state, `go_backwards` handling and zero
  outputs past each length), without its mask assertion. Call it inside a
  layer's `call`, so the weights are read in the layer's compute dtype.

  Args:
    lstm: A built `keras.layers.LSTM` with the default activations and no
      dropout; its weights are used, its `call` is not.
    inputs: `[batch, time, features]`, right-padded.
    sequence_lengths: int32 `[batch]`, each in `[1, time]` (cuDNN rejects
      empty rows); not checked.

  Returns:
    `[batch, time, units]` (zero past each length; under `go_backwards` in
    processing order, last valid step first, as Keras returns it) when
    `lstm.return_sequences`, else the final state `[batch, units]`.
  """
  cell = lstm.cell
  kernel = cell.kernel.value
  recurrent_kernel = cell.recurrent_kernel.value
  bias = cell.bias.value
  sequence_lengths = tf.cast(sequence_lengths, tf.int32)
  zeros = tf.zeros(tf.stack([tf.shape(inputs)[0], lstm.units]), inputs.dtype)
  # Batch-major cuDNN wants the layer axis after the batch axis.
  initial = tf.expand_dims(zeros, axis=1)
  weights = tf.split(kernel, 4, axis=1) + tf.split(recurrent_kernel, 4, axis=1)
  # cuDNN adds an input bias and a recurrent bias; the first is zero.
  biases = tf.split(tf.concat([tf.zeros_like(bias), bias], 0), 8)
  if tf.sysconfig.get_build_info().get("is_rocm_build"):
    # MIOpen orders the gates i, f, o, c; cuDNN and Keras i, f, c, o.
    order = (0, 1, 3, 2, 4, 5, 7, 6)
    weights = [weights[i] for i in order]
    biases = [biases[i] for i in order]
  params = tf.concat(
    [tf.reshape(tf.transpose(w), [-1]) for w in weights]
    + [tf.reshape(b, [-1]) for b in biases],
    axis=0,
  )
  if lstm.go_backwards:
    inputs = tf.reverse_sequence(
      inputs, sequence_lengths, seq_axis=1, batch_axis=0
    )
  outputs, h, _, _, _ = tf.raw_ops.CudnnRNNV3(
    input=inputs,
    input_h=initial,
    input_c=initial,
    params=params,
    is_training=True,
    rnn_mode="lstm",
    sequence_lengths=sequence_lengths,
    time_major=False,
  )
  if not lstm.return_sequences:
    return tf.squeeze(h, axis=1)
  if lstm.go_backwards:
    outputs = tf.reverse_sequence(
      outputs, sequence_lengths, seq_axis=1, batch_axis=0
    )
    outputs = tf.reverse(outputs, axis=[1])
  return outputs


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
    use_cudnn: "auto" runs cuDNN's kernel (`cudnn_lstm`) when TF has a GPU,
      True requires it (an error without a GPU), False always runs the
      `while_loop` kernel. cuDNN kernels do not compile with XLA: build
      with False for a step compiled by XLA.
    **kwargs: Base layer arguments.

  Call arguments:
    inputs: `[batch, time, features]`.
    sequence_mask: bool `[batch, time]`, true at valid steps; must be
      right-padded (not checked: cuDNN would read a mask with gaps as its
      length in true steps).
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

  def uses_cudnn(self) -> bool:
    """Whether `call` runs cuDNN's kernel here (see `use_cudnn`)."""
    if self.use_cudnn is False:
      return False
    available = keras.backend.backend() == "tensorflow" and gpu_available()
    if self.use_cudnn is True and not available:
      raise ValueError(
        f"{self.name}: use_cudnn=True needs a GPU visible to TensorFlow, "
        "and none is; pass use_cudnn='auto' or False."
      )
    return available

  def call(self, inputs, sequence_mask, training=None):
    mask = tf.cast(sequence_mask, tf.bool)
    x = self.input_dropout(inputs, training=training)
    # cuDNN rejects fully masked rows (e.g. length-0 filler rows of an uneven
    # batch), so step 0 always runs; what it produces is zeroed below.
    if self.uses_cudnn():
      lengths = tf.maximum(tf.reduce_sum(tf.cast(mask, tf.int32), axis=1), 1)
      forward = cudnn_lstm(self.forward_lstm, x, lengths)
      backward = cudnn_lstm(self.backward_lstm, x, lengths)
    else:
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
