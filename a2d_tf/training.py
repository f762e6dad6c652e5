"""Plain (baseline / teacher) training of the RMR reader with Keras `fit`.

Reproducibility: `train_reader` seeds Python, NumPy, TF and Keras with
`keras.utils.set_random_seed(seed)` and, by default, turns on
`tf.config.experimental.enable_op_determinism()`, so the same seed, data
order and device type reproduce a teacher bit for bit (tested on CPU).
Determinism is process-wide and cannot be turned off again. On a GPU, TF
raises `UnimplementedError` for an op without a deterministic kernel instead
of silently varying. Keras refuses XLA while op determinism is on (it warns
and trains with `jit_compile=False`), so `train.jit_compile=True` trains
without op determinism by default; the seeds still apply. A run resumed by
`BackupAndRestore` continues from the last finished epoch; its data order
after the resume depends on the input pipeline's own seeding.

Scale: `train.distribution` selects the `tf.distribute` strategy
(`make_strategy`; `train.batch_size` is the global batch, see
`per_replica_batch_size`). `train.mixed_precision` sets the Keras dtype
policy of the reader (and student): weights stay float32, layers compute in
bfloat16 or float16, the reader casts its logits and attentions to float32
and every loss is computed in float32; under `mixed_float16` Keras `compile`
wraps the optimizer in a dynamic `LossScaleOptimizer`. `train.jit_compile`
compiles the train step with XLA (`bench/train_step.py --jit_compile`
measures it; XLA compiles once per distinct batch shape).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from a2d_tf.config import ExperimentConfig, TrainConfig
from a2d_tf.models.reader import RMRReader, build_reader

DevEvalFn = Callable[[keras.Model], Mapping[str, float]]

CONFIG_FILE = "config.json"
FINAL_MODEL = "model.keras"
BEST_MODEL = "best.keras"
BACKUP_DIR = "backup"
TENSORBOARD_DIR = "tensorboard"


def make_strategy(distribution: str) -> tf.distribute.Strategy:
  """The `tf.distribute` strategy named by `TrainConfig.distribution`.

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
  the single-device one whatever the replica count (an uneven last batch
  included). Scaling out at a fixed per-replica batch therefore means
  raising `train.batch_size` (and usually the learning rate) by hand. One
  caveat: on an unevenly split batch the `loss` that Keras logs for a plain
  reader is off (its tracker assumes equal replica batches) while the
  update is exact; the student's per-term metrics are exact.

  Args:
    distribution: "default", "mirrored", "multi_worker" or "tpu".

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
      "distribution must be one of 'default', 'mirrored', 'multi_worker', "
      f"'tpu', received: distribution={distribution!r}"
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


def make_optimizer(train: TrainConfig) -> keras.optimizers.Optimizer:
  """Adam with global gradient-norm clipping at `train.clipnorm`."""
  return keras.optimizers.Adam(
    learning_rate=train.learning_rate,
    global_clipnorm=train.clipnorm if train.clipnorm > 0 else None,
  )


def compile_reader(
  model: RMRReader, train: TrainConfig, run_eagerly: bool = False
) -> RMRReader:
  """Compiles `model` for plain CE training (the loss is `compute_loss`)."""
  model.compile(
    optimizer=make_optimizer(train),
    jit_compile=False if run_eagerly else train.jit_compile,
    steps_per_execution=train.steps_per_execution,
    run_eagerly=run_eagerly,
  )
  return model


class DevEvaluation(keras.callbacks.Callback):
  """Runs a dev evaluation after every epoch and logs its scalars.

  Each value `v` under name `k` returned by `eval_fn(model)` is added to the
  epoch logs as `dev_<k>` (so History, ModelCheckpoint and the Keras
  TensorBoard callback listed after this one see it) and written as the
  TensorBoard scalar `dev/<k>` at step = epoch under `log_dir`.

  Args:
    eval_fn: `model -> {"exact_match": ..., "f1": ...}` (any float scalars).
    log_dir: Optional TensorBoard directory for the scalars.
  """

  def __init__(self, eval_fn: DevEvalFn, log_dir: str | None = None):
    super().__init__()
    self.eval_fn = eval_fn
    self.log_dir = log_dir
    self._writer = None

  def on_epoch_end(self, epoch, logs=None):
    metrics = {k: float(v) for k, v in self.eval_fn(self.model).items()}
    for name, value in sorted(metrics.items()):
      logging.info("epoch %d dev %s = %.4f", epoch + 1, name, value)
      if logs is not None:
        logs[f"dev_{name}"] = value
    if self.log_dir:
      if self._writer is None:
        self._writer = tf.summary.create_file_writer(
          os.path.join(self.log_dir, "dev")
        )
      with self._writer.as_default():
        for name, value in metrics.items():
          tf.summary.scalar(f"dev/{name}", value, step=epoch)
      self._writer.flush()

  def on_train_end(self, logs=None):
    if self._writer is not None:
      self._writer.close()
      self._writer = None


class AtomicBackupAndRestore(keras.callbacks.BackupAndRestore):
  """`BackupAndRestore` whose files are replaced whole, never half-written.

  Keras writes `latest.weights.h5` in place, so a run killed during that
  write (seconds for a large model) leaves a file that cannot be opened
  and the next run fails instead of resuming. Here the weights and the
  epoch record are written to temporary names and renamed over the old
  ones, weights first: a kill at any moment leaves the previous complete
  backup (or none), and the re-run resumes from it.

  Uses the Keras 3.15 attribute names of the paths and counters.
  """

  def _save_model(self):
    tf.io.gfile.makedirs(self.backup_dir)
    partial = os.path.join(self.backup_dir, "partial.weights.h5")
    self.model.save_weights(filepath=partial, overwrite=True)
    tf.io.gfile.rename(partial, self._weights_path, overwrite=True)
    record = self._training_metadata_path + ".partial"
    with tf.io.gfile.GFile(record, "w") as f:
      f.write(
        json.dumps(
          {"epoch": self._current_epoch, "batch": self._last_batch_seen}
        )
      )
    tf.io.gfile.rename(record, self._training_metadata_path, overwrite=True)


def _dtype_policy(mixed_precision: str) -> str | None:
  if mixed_precision in ("", None):
    return None
  if mixed_precision not in ("mixed_bfloat16", "mixed_float16"):
    raise ValueError(
      "mixed_precision must be '', 'mixed_bfloat16' or 'mixed_float16', "
      f"received: mixed_precision={mixed_precision!r}"
    )
  return mixed_precision


def _prepare(
  config: ExperimentConfig,
  out_dir: str,
  seed: int,
  deterministic: bool | None,
) -> None:
  """Seeds everything, turns on op determinism, writes `config.json`."""
  if deterministic is None:
    deterministic = not config.train.jit_compile
  keras.utils.set_random_seed(seed)
  if deterministic:
    tf.config.experimental.enable_op_determinism()
  os.makedirs(out_dir, exist_ok=True)
  with open(os.path.join(out_dir, CONFIG_FILE), "w") as f:
    json.dump({"seed": seed, "config": config.to_dict()}, f, indent=2)


def progress_verbosity(stream: Any = None) -> int:
  """Keras `verbose` for `fit`: progress bars at a terminal, else epochs.

  A terminal gets Keras' live progress bar (1); a log file or CI gets one
  line per epoch (2) instead of thousands of carriage-return updates.
  """
  stream = sys.stdout if stream is None else stream
  isatty = getattr(stream, "isatty", None)
  return 1 if callable(isatty) and isatty() else 2


def _build_in_scope(
  config: ExperimentConfig,
  out_dir: str,
  seed: int,
  deterministic: bool | None,
  build: Callable[[Any, bool | str], keras.Model],
) -> keras.Model:
  """Seeds, writes `config.json`, and builds a compiled model in scope.

  The dtype policy is checked before anything is written; `build(policy,
  use_cudnn)` runs inside the configured strategy's scope (cuDNN kernels
  are off under XLA, where they do not compile).
  """
  train = config.train
  policy = _dtype_policy(train.mixed_precision)
  _prepare(config, out_dir, seed, deterministic)
  strategy = make_strategy(train.distribution)
  logging.info(
    "global batch %d, %d per replica",
    train.batch_size,
    per_replica_batch_size(train.batch_size, strategy),
  )
  with strategy.scope():
    return build(policy, False if train.jit_compile else "auto")


def _fit(
  model: keras.Model,
  train: TrainConfig,
  train_dataset: tf.data.Dataset,
  dev_dataset: tf.data.Dataset | None,
  out_dir: str,
  epochs: int,
  dev_eval_fn: DevEvalFn | None,
  tensorboard_dir: str | None,
  callbacks: Sequence[keras.callbacks.Callback],
) -> None:
  """`model.fit` with resume, dev evaluation, best checkpoint, TensorBoard."""
  tensorboard_dir = tensorboard_dir or os.path.join(out_dir, TENSORBOARD_DIR)
  all_callbacks = [AtomicBackupAndRestore(os.path.join(out_dir, BACKUP_DIR))]
  monitor = None
  if dev_eval_fn is not None:
    all_callbacks.append(DevEvaluation(dev_eval_fn, tensorboard_dir))
    monitor, mode = "dev_f1", "max"
  elif dev_dataset is not None:
    monitor, mode = "val_loss", "min"
  if monitor is not None:
    all_callbacks.append(
      keras.callbacks.ModelCheckpoint(
        os.path.join(out_dir, BEST_MODEL),
        monitor=monitor,
        mode=mode,
        save_best_only=True,
      )
    )
  all_callbacks.append(
    keras.callbacks.TensorBoard(
      tensorboard_dir, update_freq=max(1, train.steps_per_execution)
    )
  )
  all_callbacks.extend(callbacks)
  logging.info("training %s for %d epochs into %s", model.name, epochs, out_dir)
  with warnings.catch_warnings():
    # The input is finite and of unknown length (bucketing): Keras learns
    # the epoch's end when it runs out, which is meant, not a problem.
    warnings.filterwarnings(
      "ignore", message="Your input ran out of data", category=UserWarning
    )
    model.fit(
      train_dataset,
      validation_data=dev_dataset,
      epochs=epochs,
      callbacks=all_callbacks,
      shuffle=False,  # the input pipeline shuffles
      verbose=progress_verbosity(),
    )


def train_reader(
  config: ExperimentConfig,
  word_vocab_size: int,
  char_vocab_size: int,
  train_dataset: tf.data.Dataset,
  dev_dataset: tf.data.Dataset | None,
  out_dir: str,
  seed: int | None = None,
  embedding_matrix: np.ndarray | None = None,
  dev_eval_fn: DevEvalFn | None = None,
  epochs: int | None = None,
  tensorboard_dir: str | None = None,
  callbacks: Sequence[keras.callbacks.Callback] = (),
  name: str = "rmr_reader",
  run_eagerly: bool | None = None,
  deterministic: bool | None = None,
) -> RMRReader:
  """Trains one RMR reader with span CE and saves it as `.keras`.

  Writes under `out_dir`: `config.json` (the resolved config and seed),
  `backup/` (BackupAndRestore state while the run is unfinished: rerunning
  the same call after a kill resumes from the last finished epoch),
  `tensorboard/` (train loss per step, epoch scalars, `dev/*` scalars),
  `best.keras` (best epoch by dev F1 when `dev_eval_fn` is given, else by
  `val_loss` when `dev_dataset` is given) and `model.keras` (final model).

  Args:
    config: The experiment config (`model` and `train` sections are used).
    word_vocab_size: Word ids.
    char_vocab_size: Character ids.
    train_dataset: Batched dicts with the model inputs and `start` / `end`.
    dev_dataset: Optional batched dev dicts (same keys) for `val_loss`.
    out_dir: Output directory (created).
    seed: Random seed; default `config.train.seed`.
    embedding_matrix: Optional frozen pretrained word vectors.
    dev_eval_fn: Optional `model -> {"exact_match", "f1", ...}` run after
      every epoch (e.g. decoding + official SQuAD metrics on dev).
    epochs: Epochs; default `config.train.epochs`.
    tensorboard_dir: TensorBoard directory; default `out_dir/tensorboard`.
    callbacks: Extra Keras callbacks, run after the built-in ones.
    name: Model name.
    run_eagerly: Run train steps eagerly (debugging, and tests of tiny
      models, where tracing the step costs far more than running it);
      default `train.run_eagerly`.
    deterministic: Enable TF op determinism; default `not
      train.jit_compile` (see the module docstring).

  Returns:
    The trained model (weights of the last epoch).
  """
  train = config.train
  seed = train.seed if seed is None else seed
  epochs = train.epochs if epochs is None else epochs
  run_eagerly = train.run_eagerly if run_eagerly is None else run_eagerly

  def build(policy, use_cudnn):
    model = build_reader(
      config.model,
      word_vocab_size,
      char_vocab_size,
      embedding_matrix=embedding_matrix,
      use_cudnn=use_cudnn,
      dtype=policy,
      name=name,
    )
    compile_reader(model, train, run_eagerly=run_eagerly)
    return model

  model = _build_in_scope(config, out_dir, seed, deterministic, build)
  _fit(
    model,
    train,
    train_dataset,
    dev_dataset,
    out_dir,
    epochs,
    dev_eval_fn,
    tensorboard_dir,
    callbacks,
  )
  model.save(os.path.join(out_dir, FINAL_MODEL))
  return model


def train_student(
  config: ExperimentConfig,
  word_vocab_size: int,
  char_vocab_size: int,
  train_dataset: tf.data.Dataset,
  dev_dataset: tf.data.Dataset | None,
  out_dir: str,
  seed: int | None = None,
  embedding_matrix: np.ndarray | None = None,
  dev_eval_fn: DevEvalFn | None = None,
  epochs: int | None = None,
  tensorboard_dir: str | None = None,
  callbacks: Sequence[keras.callbacks.Callback] = (),
  run_eagerly: bool | None = None,
  deterministic: bool | None = None,
) -> RMRReader:
  """Trains the A2D student on materialized knowledge; saves its reader.

  Same outputs, resume and logging as `train_reader`; the epoch logs (and
  TensorBoard) carry every loss term (`ce`, `kd`, `ans`, `att`, `loss`, and
  `val_*` on `dev_dataset`). With `distill.stagewise`, the first
  `distill.warmup_epochs` epochs match attention only and `epochs` answer
  epochs follow, so the answer phase trains as long as joint training does.

  Args:
    config: The experiment config (`model`, `train`, `distill`).
    word_vocab_size: Word ids.
    char_vocab_size: Character ids.
    train_dataset: Knowledge batches (`knowledge.make_knowledge_dataset`).
    dev_dataset: Optional dev knowledge batches for the `val_*` terms.
    out_dir: Output directory (created); `model.keras` is the student's
      reader, the deployable model.
    seed: Random seed; default `config.train.seed`.
    embedding_matrix: Optional frozen pretrained word vectors.
    dev_eval_fn: Optional `model -> {"exact_match", "f1"}` per epoch.
    epochs: Epochs of (joint or answer-phase) training; default
      `config.train.epochs`.
    tensorboard_dir: TensorBoard directory; default `out_dir/tensorboard`.
    callbacks: Extra Keras callbacks.
    run_eagerly: Run train steps eagerly; default `train.run_eagerly`.
    deterministic: Enable TF op determinism (default as `train_reader`).

  Returns:
    The student's trained reader.
  """
  from a2d_tf.models import student as student_lib

  train = config.train
  seed = train.seed if seed is None else seed
  epochs = train.epochs if epochs is None else epochs
  run_eagerly = train.run_eagerly if run_eagerly is None else run_eagerly
  if config.distill.stagewise:
    epochs += config.distill.warmup_epochs

  def build(policy, use_cudnn):
    student = student_lib.build_student(
      config,
      word_vocab_size,
      char_vocab_size,
      embedding_matrix,
      use_cudnn=use_cudnn,
      dtype=policy,
    )
    student.compile(
      optimizer=make_optimizer(train),
      jit_compile=False if run_eagerly else train.jit_compile,
      steps_per_execution=train.steps_per_execution,
      run_eagerly=run_eagerly,
    )
    return student

  student = _build_in_scope(config, out_dir, seed, deterministic, build)
  _fit(
    student,
    train,
    train_dataset,
    dev_dataset,
    out_dir,
    epochs,
    dev_eval_fn,
    tensorboard_dir,
    [*student_lib.student_callbacks(config.distill), *callbacks],
  )
  student.reader.save(os.path.join(out_dir, FINAL_MODEL))
  return student.reader
