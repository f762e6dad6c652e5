"""The A2D student: one reader trained on materialized teacher knowledge.

By default the student has exactly the architecture (and parameter count)
of one teacher; `student_model` in the config makes it another reader
(`config.resolve_student_model`): its ATT term then matches its aligner hops
with the teachers' by `distill.attention_hops_map` when their counts differ.
Its `train_step` never runs a teacher: the teachers' softened span
distributions, alignment distributions and confusing spans are read from the
batch dict written by the knowledge step. The loss math lives in
`a2d_tf.losses`; this module gathers inputs, calls it, applies gradients and
keeps one metric per term.

Metrics (standard Keras logs, so they show in the progress bar, `History` and
`keras.callbacks.TensorBoard`, with a `val_` prefix on validation data):
`loss`, the weighted objective actually optimized in the current phase, and
the unweighted per-example means `ce`, `kd`, `ans`, `att` (a term switched off
in `DistillConfig` reads 0); under `tf.distribute` they are means over the
examples of all replicas (`reader.mean_results`), exact for uneven splits.

Stage-wise training: the phase is a non-trainable variable read inside the
compiled step, so `StagewiseCallback` switches it between epochs without
recompiling. Phases: `"joint"` (all enabled terms), `"attention"` (ATT only)
and `"answer"` (CE, KD and ANS, no ATT).

Saving: the deployable model is `student.reader` (save it as `.keras`); the
student itself also serializes, wrapping the reader.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from a2d_tf import losses
from a2d_tf.config import (
  DistillConfig,
  ExperimentConfig,
  resolve_student_model,
)
from a2d_tf.data.vocab import WordVectors
from a2d_tf.models.reader import build_reader, mean_results

PHASES = ("joint", "attention", "answer")
TERMS = ("ce", "kd", "ans", "att")


@keras.saving.register_keras_serializable(package="a2d")
class A2DStudent(keras.Model):
  """Trains a reader with `CE + tau^2 KD + gamma ANS + delta ATT`.

  Args:
    reader: A reader model (e.g. `RMRReader`): `call(inputs: dict,
      training) -> dict` with `start_logits`, `end_logits` `[batch,
      passage_len]` and `attention` `[batch, hops, passage_len,
      question_len]`.
    distill_config: `DistillConfig` (or its dict) with the loss weights,
      ablation switches and whether training is stage-wise.
    teacher_hops: The teachers' aligner hops, the hops of the knowledge's
      `teacher_attention`; when the reader has another number, ATT matches
      them by `distill_config.attention_hops_map`. None: the reader's.
    **kwargs: Passed to `keras.Model`.

  Call arguments:
    inputs: The batch dict (model input; extra knowledge keys are ignored by
      the reader).
    training: Python bool.

  Returns:
    The reader's output dict.

  Batch keys read by `train_step` / `test_step`: `start`, `end`,
  `passage_len`, `question_len` `[batch]`, and as the switches need them
  `teacher_start_probs`, `teacher_end_probs` `[batch, passage_len]`,
  `teacher_attention` `[batch, hops, passage_len, question_len]`,
  `confusing_start`, `confusing_end` `[batch]` (-1 when none).
  """

  def __init__(
    self,
    reader: keras.Model,
    distill_config: DistillConfig | dict[str, Any],
    teacher_hops: int | None = None,
    **kwargs,
  ):
    super().__init__(**kwargs)
    if isinstance(distill_config, dict):
      distill_config = DistillConfig(**distill_config)
    if not isinstance(distill_config, DistillConfig):
      raise TypeError(
        "distill_config must be a DistillConfig or dict, got "
        f"{type(distill_config).__name__}."
      )
    if distill_config.temperature <= 0:
      raise ValueError(
        f"distill.temperature must be > 0, got {distill_config.temperature}."
      )
    if teacher_hops is not None and (
      isinstance(teacher_hops, bool)
      or not isinstance(teacher_hops, int)
      or teacher_hops < 1
    ):
      raise ValueError(
        "teacher_hops must be a positive integer or None, received: "
        f"teacher_hops={teacher_hops!r}"
      )
    self.reader = reader
    self.distill_config = distill_config
    self.teacher_hops = teacher_hops
    initial = "attention" if distill_config.stagewise else "joint"
    self._phase = self.add_weight(
      shape=(),
      initializer=keras.initializers.Constant(PHASES.index(initial)),
      dtype="float32",
      trainable=False,
      name="phase",
    )
    self._trackers = {
      name: keras.metrics.Mean(name=name) for name in ("loss", *TERMS)
    }

  @property
  def metrics(self) -> list[keras.metrics.Metric]:
    return list(self._trackers.values())

  @property
  def phase(self) -> str:
    """The current phase, one of `PHASES`."""
    return PHASES[int(round(float(np.asarray(self._phase.numpy()))))]

  def set_phase(self, phase: str) -> None:
    """Switches the loss terms used from the next step on (no recompile)."""
    if phase not in PHASES:
      raise ValueError(f"phase must be one of {PHASES}, got {phase!r}.")
    self._phase.assign(float(PHASES.index(phase)))

  def build(self, input_shape=None):
    """Builds the wrapped reader (BackupAndRestore needs a built model).

    The student's only own weight, the phase, is made in `__init__`.
    """
    if not self.reader.built:
      self.reader.build(input_shape)
    self.built = True

  def call(self, inputs, training=False):
    return self.reader(inputs, training=training)

  def _loss_terms(self, batch, outputs) -> dict[str, tf.Tensor]:
    phase = tf.convert_to_tensor(self._phase)
    answer_weight = tf.cast(
      tf.not_equal(phase, PHASES.index("attention")), tf.float32
    )
    attention_weight = tf.cast(
      tf.not_equal(phase, PHASES.index("answer")), tf.float32
    )
    return losses.a2d_loss(
      outputs,
      batch,
      self.distill_config,
      answer_weight,
      attention_weight,
      teacher_hops=self.teacher_hops,
    )

  def _update_metrics(self, terms) -> dict[str, tf.Tensor]:
    self._trackers["loss"].update_state(terms["total"])
    for name in TERMS:
      self._trackers[name].update_state(terms[name])
    return mean_results(self._trackers)

  def train_step(self, data):
    batch = _unpack(data)
    with tf.GradientTape() as tape:
      outputs = self(batch, training=True)
      terms = self._loss_terms(batch, outputs)
      loss = losses.reduce_loss(terms["total"])
      scaled_loss = self.optimizer.scale_loss(loss)
    variables = self.trainable_variables
    gradients = tape.gradient(scaled_loss, variables)
    self.optimizer.apply_gradients(zip(gradients, variables, strict=True))
    return self._update_metrics(terms)

  def test_step(self, data):
    batch = _unpack(data)
    outputs = self(batch, training=False)
    return self._update_metrics(self._loss_terms(batch, outputs))

  def predict_step(self, data):
    return self(_unpack(data), training=False)

  def get_config(self):
    return {
      **super().get_config(),
      "reader": keras.saving.serialize_keras_object(self.reader),
      "distill_config": dataclasses.asdict(self.distill_config),
      "teacher_hops": self.teacher_hops,
    }

  @classmethod
  def from_config(cls, config):
    config = dict(config)
    config["reader"] = keras.saving.deserialize_keras_object(config["reader"])
    return cls(**config)


def _unpack(data) -> dict[str, tf.Tensor]:
  """The flat batch dict from `x` or `(x, y)` with a dict `y` merged in."""
  x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
  if not isinstance(x, dict):
    raise TypeError(
      f"The student expects a dict batch, got {type(x).__name__}."
    )
  if isinstance(y, dict):
    x = {**x, **y}
  return x


class StagewiseCallback(keras.callbacks.Callback):
  """Attention warm-up for `warmup_epochs` epochs, then the answer phase.

  Sets `model.set_phase("attention")` at the start of epochs `0 ..
  warmup_epochs - 1` and `"answer"` afterwards. Epoch numbers are absolute,
  so a run resumed by `BackupAndRestore` lands in the right phase.

  Args:
    warmup_epochs: Number of attention-only epochs, >= 0.
  """

  def __init__(self, warmup_epochs: int):
    super().__init__()
    if int(warmup_epochs) != warmup_epochs or warmup_epochs < 0:
      raise ValueError(
        f"warmup_epochs must be an integer >= 0, got {warmup_epochs!r}."
      )
    self.warmup_epochs = int(warmup_epochs)

  def on_epoch_begin(self, epoch, logs=None):
    phase = "attention" if epoch < self.warmup_epochs else "answer"
    if self.model.phase != phase:
      logging.info("Epoch %d: student phase %s.", epoch, phase)
      self.model.set_phase(phase)


def build_student(
  config: ExperimentConfig,
  word_vocab_size: int,
  char_vocab_size: int,
  embedding_matrix: np.ndarray | WordVectors | None = None,
  **reader_kwargs,
) -> A2DStudent:
  """A student whose reader is `build_reader(resolve_student_model(config))`.

  The reader is the teachers' architecture (`config.model`) with the
  changes of `config.student_model`; the student matches its attention with
  the teachers' `config.model.aligner_hops` hops. Call it inside
  `strategy.scope()` under `tf.distribute`.

  Args:
    config: The experiment config (its `model`, `student_model` and
      `distill` sections).
    word_vocab_size: Word ids.
    char_vocab_size: Character ids.
    embedding_matrix: Optional pretrained word vectors, as for the teachers
      (see `build_reader`); they have the teachers' `word_dim`, so a
      student of another `word_dim` cannot take them.
    **reader_kwargs: Passed to `build_reader` (e.g. `dtype`, `use_cudnn`).

  Returns:
    An uncompiled `A2DStudent` with a built reader.

  Raises:
    ValueError: Pretrained vectors for a student of another `word_dim`.
  """
  model_config = resolve_student_model(config)
  if embedding_matrix is not None and (
    model_config.word_dim != config.model.word_dim
  ):
    raise ValueError(
      f"student_model.word_dim={model_config.word_dim}: the pretrained "
      f"word vectors (--glove_file) are {config.model.word_dim}-dimensional, "
      "the teachers' model.word_dim; a student of another word_dim learns "
      "its own vectors, so run without --glove_file or keep the teachers' "
      "word_dim."
    )
  reader = build_reader(
    model_config,
    word_vocab_size,
    char_vocab_size,
    embedding_matrix,
    **reader_kwargs,
  )
  # The student's own policy decides whether `compile` adds loss scaling.
  student = A2DStudent(
    reader,
    config.distill,
    teacher_hops=config.model.aligner_hops,
    dtype=reader_kwargs.get("dtype"),
    name="a2d_student",
  )
  student.build()
  return student


def student_callbacks(config: DistillConfig) -> list[keras.callbacks.Callback]:
  """The callbacks `config` asks for: `StagewiseCallback` when stage-wise."""
  if config.stagewise:
    return [StagewiseCallback(config.warmup_epochs)]
  return []
