"""Training of the RMR reader with Keras `fit`: teachers and the student.

`train` is the one entry point. Its `objective` says what is optimized:
`CE` trains a plain reader on the gold spans (a teacher, or a baseline);
`A2D` trains the student on materialized teacher knowledge
(`models.student`). Both share the set-up (seeds, `config.json`, strategy,
dtype policy), the callbacks (resume, learning-rate decay, per-epoch
validation, best epoch and early stopping, TensorBoard) and the outputs.

Reproducibility: `train` seeds Python, NumPy, TF and Keras with
`keras.utils.set_random_seed(seed)` and, when `runtime.deterministic`
resolves on (auto: without a GPU and without XLA; `resolve_runtime`), turns
on `tf.config.experimental.enable_op_determinism()`, so the same seed, data
order and device type reproduce a teacher bit for bit (tested on CPU).
Determinism is process-wide and cannot be turned off again. On a GPU it
costs speed (deterministic cuDNN / cuBLAS algorithm choices, slower
deterministic gather and scatter gradients) and TF raises
`UnimplementedError` for an op without a deterministic kernel instead of
silently varying; cuDNN LSTMs are not guaranteed bit-reproducible even so.
Keras refuses XLA while op determinism is on (it would warn and train with
`jit_compile=False`), so `config.validate` rejects `deterministic=true` with
`jit_compile=true`; the seeds always apply.

Resume is exact: a run killed at any point (`kill -9`) and started again
with the same arguments ends with the same weights, bit for bit, as a run
that was never killed (tested on CPU with op determinism, for `CE` and
`A2D`). What makes it so:

- `BackupAndRestore` (below) commits after every epoch, by one atomic
  rename, the model and optimizer variables (Adam's moments and step) and
  the layers' `SeedGenerator` states (dropout), after `BestEpoch` has
  written its record and weights; a kill before the commit re-runs that
  epoch from the previous one, and re-running it rewrites the same files.
- The input order of epoch k is a function of (seed, k)
  (`data.dataset.make_dataset(epoch=...)`, with `train_epoch`), never of
  how many epochs this process has run or what it ran before.
- The learning-rate schedule and the student's stage-wise phase are
  functions of the epoch number, which `fit` resumes at.
- The backup is removed only after `model.keras` is written.

Execution (`config.runtime`, outside every cache key): `runtime.distribution`
selects the `tf.distribute` strategy (`make_strategy`; `train.batch_size` is
the global batch, see `per_replica_batch_size`). `runtime.mixed_precision`
sets the Keras dtype policy of the reader (and student): weights stay
float32, layers compute in bfloat16 or float16, the reader casts its logits
and attentions to float32 and every loss is computed in float32; under
`mixed_float16` Keras `compile` wraps the optimizer in a dynamic
`LossScaleOptimizer`. `runtime.jit_compile` compiles the train step with XLA
(XLA compiles once per distinct batch shape, so the input pads batches to a
bounded set of shapes under `runtime.pad_to_bucket`, `data.dataset`); the
LSTMs then run as XLA while loops, as cuDNN kernels do not compile
(`runtime.use_cudnn`). `runtime.steps_per_execution` runs several steps per
compiled call; `runtime.log_every_steps` sets the TensorBoard step-scalar
cadence (`StepScalars`); `runtime.run_eagerly` runs steps untraced.
`bench/device_check.py` measures these choices on a device.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import sys
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from a2d_tf import config as config_lib
from a2d_tf.config import ExperimentConfig, RuntimeConfig, TrainConfig
from a2d_tf.models import student as student_lib
from a2d_tf.models.reader import RMRReader, build_reader

DevEvalFn = Callable[[keras.Model], Mapping[str, float]]

CONFIG_FILE = "config.json"
FINAL_MODEL = "model.keras"
BEST_DIR = "best"
BACKUP_DIR = "backup"
TENSORBOARD_DIR = "tensorboard"

# What `train` optimizes: span cross entropy (teachers, baselines), or the
# A2D objective on materialized knowledge (the student).
CE = "ce"
A2D = "a2d"
OBJECTIVES = (CE, A2D)


def make_strategy(distribution: str) -> tf.distribute.Strategy:
  """The `tf.distribute` strategy named by `RuntimeConfig.distribution`.

  - `default`: the default strategy (one device, no replicas).
  - `mirrored`: `MirroredStrategy` over every local GPU (the CPU when there
    is none), synchronous all-reduce.
  - `multi_worker`: `MultiWorkerMirroredStrategy`; the cluster and this
    task's role come from the `TF_CONFIG` environment variable, which must
    be set (an unset one would silently train alone).
  - `tpu`: `TPUStrategy` on the TPU named by `TPU_NAME` (a grpc address or
    a Cloud TPU name; `local` on a TPU VM, the default when TF sees TPU
    chips on this host).

  Batch sizes: `train.batch_size` is the GLOBAL batch, the number of
  examples the input pipeline puts in one batch. Keras splits each batch
  over the `num_replicas_in_sync` replicas (`per_replica_batch_size`), and
  `losses.reduce_loss` divides by the real global count, so the update is
  the single-device one whatever the replica count. Each length bucket
  ends in a partial batch (no `drop_remainder`, so no example is dropped);
  split over the replicas it can leave a replica fewer examples than the
  others, or none: the update and every logged term (means over examples,
  summed over the replicas before they are logged; `reader.mean_results`)
  are still the single-device ones, tested on two logical CPUs with a
  replica batch of 0 for the reader and the student. Keras 3.15's `fit`
  fails when its FIRST batch splits unevenly (it averages that batch over
  the replicas to build the model, keras-team/keras#19246); bucketed input
  emits full batches first and partial ones at the end, so only a training
  split smaller than one batch per bucket meets it. Scaling out at a fixed
  per-replica batch means raising `train.batch_size` (and usually the
  learning rate) by hand.

  Args:
    distribution: One of `config.DISTRIBUTIONS`.

  Returns:
    The strategy; build and compile models inside its `scope()`.

  Raises:
    ValueError: On an unknown name, or `multi_worker` without `TF_CONFIG`.
    RuntimeError: For `tpu` when no TPU can be reached.
  """
  if distribution == "default":
    return tf.distribute.get_strategy()
  if distribution == "mirrored":
    strategy = tf.distribute.MirroredStrategy()
  elif distribution == "multi_worker":
    if not os.environ.get("TF_CONFIG"):
      raise ValueError(
        "distribution='multi_worker' reads the cluster from the TF_CONFIG "
        "environment variable, which is not set; set it on every worker "
        "(or use 'mirrored' for one machine)."
      )
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
  elif distribution == "tpu":
    strategy = _tpu_strategy()
  else:
    raise ValueError(
      f"distribution must be one of {config_lib.DISTRIBUTIONS}, received: "
      f"distribution={distribution!r}"
    )
  logging.info(
    "%s strategy with %d replicas in sync.",
    distribution,
    strategy.num_replicas_in_sync,
  )
  return strategy


def _tpu_strategy() -> tf.distribute.TPUStrategy:
  tpu = os.environ.get("TPU_NAME") or None
  if tpu is None and tf.config.list_physical_devices("TPU"):
    tpu = "local"
  try:
    resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu)
    tf.config.experimental_connect_to_cluster(resolver)
    tf.tpu.experimental.initialize_tpu_system(resolver)
  except (ValueError, RuntimeError, tf.errors.OpError) as e:
    raise RuntimeError(
      "distribution='tpu' but no TPU could be reached (TPU_NAME="
      f"{os.environ.get('TPU_NAME')!r}, local TPU chips: "
      f"{len(tf.config.list_physical_devices('TPU'))}): {e}. Run on a TPU "
      "VM or set TPU_NAME; use 'default' or 'mirrored' elsewhere."
    ) from e
  return tf.distribute.TPUStrategy(resolver)


def per_replica_batch_size(
  global_batch_size: int, strategy: tf.distribute.Strategy
) -> int:
  """Examples per replica in one step of a `global_batch_size` batch.

  Raises:
    ValueError: If the global batch does not split evenly over the replicas
      (every full batch would then be split unevenly; TPUs need equal
      per-replica shapes).
  """
  replicas = strategy.num_replicas_in_sync
  if global_batch_size < 1 or global_batch_size % replicas:
    raise ValueError(
      "train.batch_size is the global batch and must be a positive multiple "
      f"of the {replicas} replicas in sync, received: "
      f"batch_size={global_batch_size}"
    )
  return global_batch_size // replicas


# Train steps per compiled call under `steps_per_execution=auto` on a GPU or
# TPU: enough to hide the host round trip of each call (Keras converts the
# logs to Python after every call), few enough for live progress.
ACCELERATOR_STEPS_PER_EXECUTION = 10


def has_accelerator(kind: str = "GPU") -> bool:
  """Whether TF sees a physical device of `kind` ("GPU" or "TPU")."""
  return bool(tf.config.list_physical_devices(kind))


def resolve_runtime(runtime: RuntimeConfig) -> RuntimeConfig:
  """`runtime` with every auto (None) field decided for this machine.

  - `use_cudnn`: on a GPU unless XLA compiles the steps.
  - `deterministic`: on without a GPU and without XLA.
  - `pad_to_bucket`: on with XLA.
  - `steps_per_execution`: 1 eagerly or without a GPU / TPU, else
    `ACCELERATOR_STEPS_PER_EXECUTION`.

  XLA counts as on when `jit_compile` is and `run_eagerly` is not.
  """
  xla = runtime.jit_compile and not runtime.run_eagerly
  gpu = has_accelerator("GPU")
  accelerator = gpu or has_accelerator("TPU")

  def pick(value, auto):
    return auto if value is None else value

  return dataclasses.replace(
    runtime,
    use_cudnn=pick(runtime.use_cudnn, gpu and not xla),
    deterministic=pick(runtime.deterministic, not gpu and not xla),
    pad_to_bucket=pick(runtime.pad_to_bucket, xla),
    steps_per_execution=pick(
      runtime.steps_per_execution,
      ACCELERATOR_STEPS_PER_EXECUTION
      if accelerator and not runtime.run_eagerly
      else 1,
    ),
  )


def reader_use_cudnn(runtime: RuntimeConfig) -> str | bool:
  """The readers' `use_cudnn` for `runtime.use_cudnn`.

  Auto gives "auto" (cuDNN wherever the model later runs on a GPU) without
  XLA and False with it; true and false are passed on.
  """
  if runtime.use_cudnn is None:
    return False if runtime.jit_compile else "auto"
  return runtime.use_cudnn


def make_optimizer(train: TrainConfig) -> keras.optimizers.Optimizer:
  """Adam with global gradient-norm clipping at `train.clipnorm`.

  Named: an unnamed optimizer gets "adam_1", "adam_2", ... from the
  optimizers the process built before, and the saved model's config would
  differ between a step run fresh and one run after others.
  """
  return keras.optimizers.Adam(
    name="adam",
    learning_rate=train.learning_rate,
    global_clipnorm=train.clipnorm if train.clipnorm > 0 else None,
  )


def compile_model(model: keras.Model, config: ExperimentConfig) -> keras.Model:
  """Compiles `model` with the optimizer of `config.train` and the runtime.

  The loss is the model's own (the `train_step` of the reader and of the
  student). `runtime.run_eagerly` wins over `runtime.jit_compile`; an auto
  `steps_per_execution` is decided by `resolve_runtime`.
  """
  runtime = config.runtime
  model.compile(
    optimizer=make_optimizer(config.train),
    jit_compile=runtime.jit_compile and not runtime.run_eagerly,
    steps_per_execution=resolve_runtime(runtime).steps_per_execution,
    run_eagerly=runtime.run_eagerly,
  )
  return model


def build_model(
  objective: str,
  config: ExperimentConfig,
  word_vocab_size: int,
  char_vocab_size: int,
  embedding_matrix: np.ndarray | None = None,
  name: str | None = None,
) -> keras.Model:
  """The compiled model `objective` trains, in the current strategy scope.

  Args:
    objective: `CE` (an `RMRReader`) or `A2D` (an `A2DStudent` wrapping one).
    config: The experiment config (`model`, `train`, `distill`, `runtime`).
    word_vocab_size: Word ids.
    char_vocab_size: Character ids.
    embedding_matrix: Optional frozen pretrained word vectors.
    name: Reader name (`CE` only; default "rmr_reader").

  Returns:
    The compiled model, in `runtime.mixed_precision`'s dtype policy, with
    the cuDNN choice of `reader_use_cudnn` (none under XLA, where cuDNN
    kernels do not compile).
  """
  _check_objective(objective)
  reader_kwargs = {
    "use_cudnn": reader_use_cudnn(config.runtime),
    "dtype": config.runtime.mixed_precision or None,
  }
  if objective == CE:
    model = build_reader(
      config.model,
      word_vocab_size,
      char_vocab_size,
      embedding_matrix=embedding_matrix,
      name=name or "rmr_reader",
      **reader_kwargs,
    )
  else:
    model = student_lib.build_student(
      config,
      word_vocab_size,
      char_vocab_size,
      embedding_matrix,
      **reader_kwargs,
    )
  return compile_model(model, config)


def _check_objective(objective: str) -> None:
  if objective not in OBJECTIVES:
    raise ValueError(
      f"objective must be one of {OBJECTIVES}, received: objective="
      f"{objective!r}"
    )


class EpochEvaluation(keras.callbacks.Callback):
  """Runs an evaluation after every epoch and logs its scalars.

  Each value `v` under name `k` returned by `eval_fn(model)` is added to the
  epoch logs as `<prefix>_<k>` (so History, `BestEpoch` and the Keras
  TensorBoard callback listed after this one see it) and written as the
  TensorBoard scalar `<prefix>/<k>` at step = epoch under `log_dir`.

  Args:
    eval_fn: `model -> {"exact_match": ..., "f1": ...}` (any float scalars).
    log_dir: Optional TensorBoard directory for the scalars.
    prefix: Name of the evaluated split, e.g. "validation".
  """

  def __init__(
    self,
    eval_fn: DevEvalFn,
    log_dir: str | None = None,
    prefix: str = "validation",
  ):
    super().__init__()
    self.eval_fn = eval_fn
    self.log_dir = log_dir
    self.prefix = prefix
    self._writer = None

  def on_epoch_end(self, epoch, logs=None):
    metrics = {k: float(v) for k, v in self.eval_fn(self.model).items()}
    for name, value in sorted(metrics.items()):
      logging.info("epoch %d %s %s = %.4f", epoch + 1, self.prefix, name, value)
      if logs is not None:
        logs[f"{self.prefix}_{name}"] = value
    if self.log_dir:
      if self._writer is None:
        self._writer = tf.summary.create_file_writer(
          os.path.join(self.log_dir, self.prefix)
        )
      with self._writer.as_default():
        for name, value in metrics.items():
          tf.summary.scalar(f"{self.prefix}/{name}", value, step=epoch)
      self._writer.flush()

  def on_train_end(self, logs=None):
    if self._writer is not None:
      self._writer.close()
      self._writer = None


class StepScalars(keras.callbacks.Callback):
  """Writes the step logs as TensorBoard scalars every `every_steps` steps.

  Keras' `TensorBoard(update_freq=N)` counts callback calls, which under
  `steps_per_execution=k` come once per k steps, so its step axis would be
  in calls; this callback labels each scalar with the optimizer step after
  the batch end that reports it. Scalars are written at the first batch
  end of a run and then at the first one at or after each multiple of
  `every_steps` (under `steps_per_execution=k` Keras reports a batch end
  only every k steps). Scalars are named
  `batch_<log key>` (`batch_loss`, ...) in the `train` run of `log_dir`,
  as Keras' own would be; the step continues across a resumed run.

  Args:
    log_dir: TensorBoard directory (the run's `tensorboard/`).
    every_steps: Optimizer steps between two scalars, >= 1.
  """

  def __init__(self, log_dir: str, every_steps: int):
    super().__init__()
    if every_steps < 1:
      raise ValueError(
        f"every_steps must be >= 1, received: every_steps={every_steps}"
      )
    self.log_dir = log_dir
    self.every_steps = every_steps
    self._writer = None
    self._epoch_start = 0
    self._last_written = -1

  def on_epoch_begin(self, epoch, logs=None):
    # One read per epoch; within it the step is counted from batch indices.
    self._epoch_start = int(self.model.optimizer.iterations)

  def on_train_batch_end(self, batch, logs=None):
    step = self._epoch_start + batch + 1
    if step // self.every_steps <= self._last_written // self.every_steps:
      return
    self._last_written = step
    if self._writer is None:
      self._writer = tf.summary.create_file_writer(
        os.path.join(self.log_dir, "train")
      )
    with self._writer.as_default():
      for name, value in (logs or {}).items():
        tf.summary.scalar(f"batch_{name}", value, step=step)

  def on_train_end(self, logs=None):
    if self._writer is not None:
      self._writer.close()
      self._writer = None


class BestEpoch(keras.callbacks.Callback):
  """Keeps the weights of the best epoch; optionally stops early.

  After every epoch the monitored value (e.g. `validation_f1`, higher is
  better) is compared with the best so far; a better epoch's weights are
  written to `<directory>/best.weights.h5` and its record (epoch, value,
  epochs run) to `<directory>/best.json`, each by a temporary file and a
  rename. At the end of training the best weights are loaded back, so the
  model `train` saves is the best epoch's, not the last one's.

  The record is read back at the start of training, so a run killed and
  resumed by `BackupAndRestore` compares its later epochs with the best of
  the epochs before the kill, and patience counts from that best epoch.

  Args:
    directory: Where the best weights and record live (created).
    monitor: The epoch-log key to maximize.
    patience: Stop when this many epochs in a row did not improve on the
      best (0: never stop early).

  Attributes:
    best_epoch: 1-based epoch of the best weights, None before any.
    best_value: The monitored value of that epoch.
    epochs_run: Epochs finished so far (resumed ones included).
  """

  WEIGHTS = "best.weights.h5"
  RECORD = "best.json"

  def __init__(self, directory: str, monitor: str, patience: int = 0):
    super().__init__()
    if patience < 0:
      raise ValueError(f"patience must be >= 0, received: {patience}")
    self.directory = directory
    self.monitor = monitor
    self.patience = int(patience)
    self.best_epoch: int | None = None
    self.best_value: float | None = None
    self.epochs_run = 0

  @property
  def weights_path(self) -> str:
    return os.path.join(self.directory, self.WEIGHTS)

  @property
  def record_path(self) -> str:
    return os.path.join(self.directory, self.RECORD)

  def on_train_begin(self, logs=None):
    if os.path.exists(self.record_path) and os.path.exists(self.weights_path):
      with open(self.record_path, encoding="utf-8") as f:
        record = json.load(f)
      self.best_epoch = record["best_epoch"]
      self.best_value = record["best_value"]
      self.epochs_run = record["epochs_run"]

  def on_epoch_end(self, epoch, logs=None):
    logs = logs or {}
    if self.monitor not in logs:
      raise KeyError(
        f"BestEpoch monitors {self.monitor!r}, which the epoch logs lack "
        f"(they have {sorted(logs)})"
      )
    value = float(logs[self.monitor])
    self.epochs_run = epoch + 1
    if self.best_value is None or value > self.best_value:
      self.best_epoch, self.best_value = epoch + 1, value
      os.makedirs(self.directory, exist_ok=True)
      partial = os.path.join(self.directory, "partial." + self.WEIGHTS)
      self.model.save_weights(partial, overwrite=True)
      os.replace(partial, self.weights_path)
    self._write_record()
    if self.patience and self.epochs_run - self.best_epoch >= self.patience:
      logging.info(
        "%s has not improved for %d epochs (best %.4f at epoch %d): stopping.",
        self.monitor,
        self.patience,
        self.best_value,
        self.best_epoch,
      )
      self.model.stop_training = True

  def _write_record(self) -> None:
    partial = self.record_path + ".partial"
    with open(partial, "w", encoding="utf-8") as f:
      json.dump(
        {
          "monitor": self.monitor,
          "best_epoch": self.best_epoch,
          "best_value": self.best_value,
          "epochs_run": self.epochs_run,
        },
        f,
      )
    os.replace(partial, self.record_path)

  def on_train_end(self, logs=None):
    if self.best_epoch is not None and os.path.exists(self.weights_path):
      self.model.load_weights(self.weights_path)
      logging.info(
        "kept the weights of epoch %d of %d (%s %.4f)",
        self.best_epoch,
        self.epochs_run,
        self.monitor,
        self.best_value,
      )

  def summary(self) -> dict[str, Any]:
    """`best_epoch`, `best_value` and `epochs_run`, for the artifact."""
    return {
      "best_epoch": self.best_epoch,
      "best_value": self.best_value,
      "epochs_run": self.epochs_run,
    }


class BackupAndRestore(keras.callbacks.Callback):
  """Backs up the whole training state after every epoch; resumes exactly.

  What Keras' `BackupAndRestore` does, with what exact resume also needs.
  Keras writes the weights and then the epoch record as two files, so a
  kill between them leaves weights one epoch ahead of the record (the
  re-run trains that epoch twice), and a kill inside the record's write
  leaves a file no re-run can read; and `save_weights` leaves out the
  layers' `SeedGenerator` states (dropout), so a resumed run would draw
  epoch 0's dropout masks again. Here each backup is new files, committed
  by one atomic rename:

  1. `state-<epoch>.weights.h5`: the model and optimizer variables
     (`save_weights`; Adam's moments and step count included), and
     `state-<epoch>.rng.npz`: every variable of `model.variables` that is
     not a weight (the `SeedGenerator` states), in model order.
  2. `training_metadata.json` (written beside and renamed over the old
     one): the epoch to resume at, the two files' names and whether
     training was stopped early (then a re-run trains no more). This rename
     is the commit: a kill anywhere before it leaves the previous backup
     in force, a kill after it the new one.
  3. The files of older backups are removed.

  At the start of training the committed backup, if any, is restored and
  `fit` continues at its epoch; files of an uncommitted backup are removed.
  The backup is not removed at the end of training: `train` removes it once
  the final model is saved, so a kill while that file is written resumes
  with nothing left to train.

  Put this callback after every callback that writes state at an epoch's
  end (`BestEpoch`): the commit then covers that epoch completely, and a
  kill before the commit re-runs an epoch whose effects are idempotent.

  Args:
    backup_dir: Directory of the backup state; `train` uses
      `<out_dir>/backup`.
  """

  RECORD = "training_metadata.json"

  def __init__(self, backup_dir: str):
    super().__init__()
    if not backup_dir:
      raise ValueError("BackupAndRestore needs a backup_dir.")
    self.backup_dir = backup_dir

  @property
  def record_path(self) -> str:
    return os.path.join(self.backup_dir, self.RECORD)

  def _random_state(self) -> list[keras.Variable]:
    weights = {id(w) for w in self.model.weights}
    return [v for v in self.model.variables if id(v) not in weights]

  def read_record(self) -> dict[str, Any] | None:
    """The committed backup's record, or None when there is none."""
    if not os.path.exists(self.record_path):
      return None
    with open(self.record_path, encoding="utf-8") as f:
      return json.load(f)

  def on_train_begin(self, logs=None):
    record = self.read_record()
    self._remove_uncommitted(record)
    if record is None:
      return
    if self.model.optimizer is not None and not self.model.optimizer.built:
      # Optimizer variables must exist before they are loaded.
      self.model.optimizer.build(self.model.trainable_variables)
    self.model.load_weights(os.path.join(self.backup_dir, record["weights"]))
    with np.load(os.path.join(self.backup_dir, record["random_state"])) as z:
      values = [z[f"v{i}"] for i in range(len(z.files))]
    state = self._random_state()
    if len(values) != len(state):
      raise ValueError(
        f"The backup in {self.backup_dir} holds {len(values)} random-state "
        f"variables, the model has {len(state)}: it was written by another "
        "model; delete the directory to start over."
      )
    for variable, value in zip(state, values, strict=True):
      variable.assign(value)
    epoch = record["epoch"]
    if record.get("stopped"):
      # Stopped early (`BestEpoch`'s patience): nothing is left to train.
      epoch = max(epoch, self.params.get("epochs", epoch))
    self.model._initial_epoch = epoch  # as Keras' callback does
    logging.info(
      "Resuming from the backup of epoch %d in %s.",
      record["epoch"],
      self.backup_dir,
    )

  def on_epoch_end(self, epoch, logs=None):
    os.makedirs(self.backup_dir, exist_ok=True)
    stem = f"state-{epoch + 1}"
    weights, rng = f"{stem}.weights.h5", f"{stem}.rng.npz"
    self.model.save_weights(
      os.path.join(self.backup_dir, weights), overwrite=True
    )
    with open(os.path.join(self.backup_dir, rng), "wb") as f:
      np.savez(
        f,
        **{
          f"v{i}": keras.ops.convert_to_numpy(v)
          for i, v in enumerate(self._random_state())
        },
      )
    record = {
      "epoch": epoch + 1,
      "weights": weights,
      "random_state": rng,
      "stopped": bool(self.model.stop_training),
    }
    partial = self.record_path + ".partial"
    with open(partial, "w", encoding="utf-8") as f:
      json.dump(record, f)
    os.replace(partial, self.record_path)
    self._remove_uncommitted(record)

  def _remove_uncommitted(self, record: dict[str, Any] | None) -> None:
    if not os.path.isdir(self.backup_dir):
      return
    keep = {self.RECORD}
    if record is not None:
      keep.update((record["weights"], record["random_state"]))
    for name in os.listdir(self.backup_dir):
      if name not in keep:
        path = os.path.join(self.backup_dir, name)
        if os.path.isdir(path):
          shutil.rmtree(path)
        else:
          os.remove(path)


class EpochOrder(keras.callbacks.Callback):
  """Sets the input's epoch variable when each epoch starts.

  With `data.dataset.make_dataset(epoch=variable)` each epoch's input order
  is a function of the seed and this epoch number, so a run resumed at
  epoch k reads epoch k's order, as the uninterrupted run did.

  Args:
    variable: The `data.dataset.epoch_variable()` the input reads.
  """

  def __init__(self, variable: tf.Variable):
    super().__init__()
    self.variable = variable

  def on_epoch_begin(self, epoch, logs=None):
    self.variable.assign(epoch)


def _prepare(
  config: ExperimentConfig,
  out_dir: str,
  seed: int,
  deterministic: bool | None,
  config_record: Mapping[str, Any] | None,
) -> None:
  """Seeds everything, turns on op determinism, writes `config.json`.

  `config.json` holds the seed, the config as given (auto fields as null)
  and `resolved_runtime`, the runtime as decided on this machine.
  """
  resolved = resolve_runtime(config.runtime)
  if deterministic is not None:
    resolved = dataclasses.replace(resolved, deterministic=deterministic)
  keras.utils.set_random_seed(seed)
  if resolved.deterministic:
    tf.config.experimental.enable_op_determinism()
  logging.info(
    "runtime: cuDNN %s, op determinism %s, XLA %s, %d steps per execution",
    "on" if resolved.use_cudnn else "off",
    "on" if resolved.deterministic else "off",
    "on" if resolved.jit_compile and not resolved.run_eagerly else "off",
    resolved.steps_per_execution,
  )
  os.makedirs(out_dir, exist_ok=True)
  record = config.to_dict() if config_record is None else dict(config_record)
  with open(os.path.join(out_dir, CONFIG_FILE), "w") as f:
    json.dump(
      {
        "seed": seed,
        "config": record,
        "resolved_runtime": dataclasses.asdict(resolved),
      },
      f,
      indent=2,
    )


def progress_verbosity(stream: Any = None) -> int:
  """Keras `verbose` for `fit`: progress bars at a terminal, else epochs.

  A terminal gets Keras' live progress bar (1); a log file or CI gets one
  line per epoch (2) instead of thousands of carriage-return updates.
  """
  stream = sys.stdout if stream is None else stream
  isatty = getattr(stream, "isatty", None)
  return 1 if callable(isatty) and isatty() else 2


def _callbacks(
  out_dir: str,
  config: ExperimentConfig,
  objective: str,
  validation_eval_fn: DevEvalFn | None,
  tensorboard_dir: str,
  callbacks: Sequence[keras.callbacks.Callback],
  train_epoch: tf.Variable | None,
) -> list[keras.callbacks.Callback]:
  """Input order, learning-rate decay, validation, best epoch, TensorBoard,
  the student's phase, resume, then the caller's.

  With `validation_eval_fn`, `EpochEvaluation` scores the validation split
  after every epoch and `BestEpoch` (after it, so it reads its scalars)
  keeps the best epoch's weights by validation F1 and stops early after
  `train.early_stopping_patience` epochs without a gain. The backup comes
  after them: its commit at an epoch's end covers what they wrote.

  TensorBoard: Keras' callback writes the epoch scalars, `StepScalars` the
  step scalars every `runtime.log_every_steps` steps.
  """
  chosen: list[keras.callbacks.Callback] = []
  if train_epoch is not None:
    chosen.append(EpochOrder(train_epoch))
  if config.train.lr_decay != 1.0:
    rate, decay = config.train.learning_rate, config.train.lr_decay
    chosen.append(
      keras.callbacks.LearningRateScheduler(lambda e: rate * decay**e)
    )
  if validation_eval_fn is not None:
    chosen.append(EpochEvaluation(validation_eval_fn, tensorboard_dir))
    chosen.append(
      BestEpoch(
        os.path.join(out_dir, BEST_DIR),
        monitor="validation_f1",
        patience=config.train.early_stopping_patience,
      )
    )
  chosen.append(keras.callbacks.TensorBoard(tensorboard_dir))
  chosen.append(StepScalars(tensorboard_dir, config.runtime.log_every_steps))
  if objective == A2D:
    chosen.extend(student_lib.student_callbacks(config.distill))
  chosen.append(BackupAndRestore(os.path.join(out_dir, BACKUP_DIR)))
  chosen.extend(callbacks)
  return chosen


def train(
  config: ExperimentConfig,
  objective: str,
  word_vocab_size: int,
  char_vocab_size: int,
  train_dataset: tf.data.Dataset,
  out_dir: str,
  *,
  validation_dataset: tf.data.Dataset | None = None,
  validation_eval_fn: DevEvalFn | None = None,
  seed: int | None = None,
  epochs: int | None = None,
  embedding_matrix: np.ndarray | None = None,
  tensorboard_dir: str | None = None,
  callbacks: Sequence[keras.callbacks.Callback] = (),
  name: str | None = None,
  deterministic: bool | None = None,
  train_epoch: tf.Variable | None = None,
  config_record: Mapping[str, Any] | None = None,
) -> RMRReader:
  """Trains a reader (`CE`) or the A2D student (`A2D`); saves the reader.

  Writes under `out_dir`: `config.json` (the seed and the resolved config,
  or `config_record`), `backup/` (`BackupAndRestore` state while the run is
  unfinished: rerunning the same call after a kill resumes from the last
  finished epoch and ends with the same weights, bit for bit, as a run
  that was never killed; see the module docstring),
  `tensorboard/` (train loss per step, epoch scalars, `validation/*`
  scalars), `best/` (with `validation_eval_fn`: the best epoch's weights
  and `best.json`, its epoch and validation F1, see `BestEpoch`) and
  `model.keras` (the reader: the student's reader under `A2D`, the
  deployable model; the best epoch's weights when there is a validation
  split, else the last epoch's).

  Model selection uses the validation split only (held out from training,
  `data.splits`): the dev and evaluation sets are never looked at here.

  Under `A2D` the epoch logs (and TensorBoard) carry every loss term (`ce`,
  `kd`, `ans`, `att`, `loss`, and `val_*` on `validation_dataset`); the
  student trains `distill.epochs` epochs when that is set; with
  `distill.stagewise` the first `distill.warmup_epochs` epochs match
  attention only and `epochs` answer epochs follow, so the answer phase
  trains as long as joint training does.

  Args:
    config: The experiment config; checked with `config.check` before
      anything is written.
    objective: `CE` or `A2D`.
    word_vocab_size: Word ids.
    char_vocab_size: Character ids.
    train_dataset: Batched dicts: the model inputs and `start` / `end`,
      plus the knowledge keys under `A2D`
      (`data.knowledge.make_knowledge_dataset`).
    out_dir: Output directory (created).
    validation_dataset: Optional batched validation dicts (same keys as
      `train_dataset`) for the `val_*` loss terms.
    validation_eval_fn: Optional `model -> {"exact_match", "f1", ...}` on
      the validation split, run after every epoch; the best epoch by its F1
      is kept.
    seed: Random seed; default `config.train.seed`.
    epochs: Epochs of (joint or answer-phase) training; default
      `config.train.epochs` (`distill.epochs` under `A2D` when set).
    embedding_matrix: Optional frozen pretrained word vectors.
    tensorboard_dir: TensorBoard directory; default `out_dir/tensorboard`.
    callbacks: Extra Keras callbacks, run after the built-in ones.
    name: Reader name under `CE` (default "rmr_reader").
    deterministic: Enable TF op determinism, overriding
      `runtime.deterministic` (see `resolve_runtime` and the module
      docstring); None follows the runtime.
    train_epoch: The `data.dataset.epoch_variable()` that `train_dataset`
      was made with (`make_dataset(epoch=...)`): set at every epoch's
      start, so a resumed run reads each epoch's own order. Without it a
      shuffled input's passes count themselves, and a resumed run reads
      epoch 0's order again.
    config_record: What `config.json` records as the config (default:
      all of `config`); the train steps record the sections they received.

  Returns:
    The trained reader (the best epoch's weights with a validation split,
    else the last epoch's).

  Raises:
    ConfigError: When `config` cannot run (nothing is written).
  """
  config_lib.check(config)
  _check_objective(objective)
  seed = config.train.seed if seed is None else seed
  if epochs is None:
    epochs = config.train.epochs
    if objective == A2D and config.distill.epochs:
      epochs = config.distill.epochs
  if objective == A2D and config.distill.stagewise:
    epochs += config.distill.warmup_epochs
  tensorboard_dir = tensorboard_dir or os.path.join(out_dir, TENSORBOARD_DIR)
  _prepare(config, out_dir, seed, deterministic, config_record)
  strategy = make_strategy(config.runtime.distribution)
  logging.info(
    "global batch %d, %d per replica",
    config.train.batch_size,
    per_replica_batch_size(config.train.batch_size, strategy),
  )
  with strategy.scope():
    model = build_model(
      objective,
      config,
      word_vocab_size,
      char_vocab_size,
      embedding_matrix=embedding_matrix,
      name=name,
    )
  logging.info("training %s for %d epochs into %s", model.name, epochs, out_dir)
  with warnings.catch_warnings():
    # The input is finite and of unknown length (bucketing): Keras learns
    # the epoch's end when it runs out, which is meant, not a problem.
    warnings.filterwarnings(
      "ignore", message="Your input ran out of data", category=UserWarning
    )
    model.fit(
      train_dataset,
      validation_data=validation_dataset,
      epochs=epochs,
      callbacks=_callbacks(
        out_dir,
        config,
        objective,
        validation_eval_fn,
        tensorboard_dir,
        callbacks,
        train_epoch,
      ),
      shuffle=False,  # the input pipeline shuffles
      verbose=progress_verbosity(),
    )
  reader = model.reader if objective == A2D else model
  reader.save(os.path.join(out_dir, FINAL_MODEL))
  # Only now: a kill while the model was written resumes from the backup
  # with nothing left to train.
  shutil.rmtree(os.path.join(out_dir, BACKUP_DIR), ignore_errors=True)
  return reader
