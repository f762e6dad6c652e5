"""Tests of plain reader training: outputs, resume, seeds, learning."""

import dataclasses
import glob
import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from a2d_tf import training
from a2d_tf.config import ConfigError, get_config
from a2d_tf.data import dataset, features, synthetic, vocab
from a2d_tf.models import student as student_lib
from a2d_tf.models.reader import RMRReader

WORDS, CHARS = 30, 12


def _config(run_eagerly=True, runtime=None, **train):
  """A small reader; eager steps unless asked (tracing costs more here)."""
  config = get_config("tiny")
  model = dataclasses.replace(
    config.model, word_dim=6, char_dim=4, char_hidden=3, hidden=4
  )
  return dataclasses.replace(
    config,
    model=model,
    train=dataclasses.replace(config.train, **train),
    runtime=dataclasses.replace(
      config.runtime, run_eagerly=run_eagerly, **(runtime or {})
    ),
  )


def _random_dataset(num=8, batch=4, seed=0):
  rng = np.random.default_rng(seed)
  lq, lp = 4, 6
  p_len = rng.integers(3, lp + 1, num).astype(np.int32)
  x = {
    "question_ids": rng.integers(2, WORDS, (num, lq)).astype(np.int32),
    "passage_ids": rng.integers(2, WORDS, (num, lp)).astype(np.int32),
    "question_chars": rng.integers(1, CHARS, (num, lq, 3)).astype(np.int32),
    "passage_chars": rng.integers(1, CHARS, (num, lp, 3)).astype(np.int32),
    "passage_em": rng.integers(0, 2, (num, lp, 2)).astype(np.float32),
    "question_len": rng.integers(2, lq + 1, num).astype(np.int32),
    "passage_len": p_len,
    "start": np.zeros(num, np.int32),
    "end": (p_len - 1).astype(np.int32),
  }
  return tf.data.Dataset.from_tensor_slices(x).batch(batch)


def _train(out_dir, config=None, objective=training.CE, **kwargs):
  return training.train(
    config or _config(),
    objective,
    WORDS,
    CHARS,
    _random_dataset(),
    str(out_dir),
    **kwargs,
  )


class _EpochRecorder(keras.callbacks.Callback):
  def __init__(self):
    super().__init__()
    self.epochs = []

  def on_epoch_begin(self, epoch, logs=None):
    self.epochs.append(epoch)


class _KillAtEpoch(keras.callbacks.Callback):
  def __init__(self, epoch):
    super().__init__()
    self.epoch = epoch

  def on_epoch_begin(self, epoch, logs=None):
    if epoch == self.epoch:
      raise RuntimeError("simulated preemption")


def _scalar_tags(log_dir):
  tags = set()
  for path in glob.glob(
    os.path.join(log_dir, "**", "events.*"), recursive=True
  ):
    for event in tf.compat.v1.train.summary_iterator(path):
      tags.update(value.tag for value in event.summary.value)
  return tags


def test_train_ce_writes_models_config_and_validation_scalars(tmp_path):
  calls = []

  def validation_eval_fn(model):
    calls.append(model)
    return {"exact_match": 10.0 * len(calls), "f1": 20.0 * len(calls)}

  model = _train(
    tmp_path,
    seed=3,
    epochs=2,
    validation_eval_fn=validation_eval_fn,
    validation_dataset=_random_dataset(4, seed=1),
  )
  assert len(calls) == 2 and calls[0] is model
  assert model.history.history["validation_f1"] == [20.0, 40.0]
  assert "val_loss" in model.history.history
  with open(tmp_path / "config.json") as f:
    written = json.load(f)
  assert written["seed"] == 3
  assert written["config"]["model"]["hidden"] == 4
  with open(tmp_path / "best" / "best.json") as f:
    assert json.load(f)["best_epoch"] == 2
  assert not (tmp_path / "backup").exists()  # deleted after a clean finish
  loaded = keras.models.load_model(tmp_path / "model.keras")
  batch = next(iter(_random_dataset()))
  np.testing.assert_array_equal(
    model(batch)["start_logits"], loaded(batch)["start_logits"]
  )
  tags = _scalar_tags(tmp_path / "tensorboard")
  assert {
    "validation/f1",
    "validation/exact_match",
    "epoch_loss",
    "batch_loss",
  } <= tags


def test_train_ce_resumes_from_backup_after_a_kill(tmp_path):
  with pytest.raises(RuntimeError, match="preemption"):
    _train(tmp_path, epochs=3, callbacks=[_KillAtEpoch(2)])
  assert (tmp_path / "backup").exists()
  assert not (tmp_path / "model.keras").exists()
  recorder = _EpochRecorder()
  model = _train(tmp_path, epochs=3, callbacks=[recorder])
  assert recorder.epochs == [2]
  assert int(model.optimizer.iterations) == 3 * 2  # 2 steps per epoch
  assert (tmp_path / "model.keras").exists()


def test_train_ce_same_seed_reproduces_weights(tmp_path):
  # Compiled steps (as in real runs); one hop each keeps tracing short.
  config = _config()
  config = dataclasses.replace(
    config,
    model=dataclasses.replace(config.model, aligner_hops=1, pointer_hops=1),
  )
  config = dataclasses.replace(
    config, runtime=dataclasses.replace(config.runtime, run_eagerly=False)
  )
  runs = {
    name: _train(tmp_path / name, config, seed=seed, epochs=1)
    for name, seed in (("first", 5), ("second", 5), ("other", 6))
  }
  first, second, other = runs["first"], runs["second"], runs["other"]
  for a, b in zip(first.get_weights(), second.get_weights(), strict=True):
    np.testing.assert_array_equal(a, b)
  assert any(
    not np.array_equal(a, c)
    for a, c in zip(first.get_weights(), other.get_weights(), strict=True)
  )


def test_train_ce_learns_synthetic_corpus_through_data_pipeline(
  tmp_path,
):
  # One hop each: graph mode, where tracing costs more than the steps.
  config = get_config("tiny", ["model.aligner_hops=1", "model.pointer_hops=1"])
  records = synthetic.generate_corpus(8, 0, seed=1)["train"]
  words = vocab.build_vocabulary(
    records, min_word_count=1, min_char_count=1, lowercase=True
  )
  features.write_split(
    records, words, config.data, str(tmp_path / "data"), "train", True
  )
  train_data = dataset.make_dataset(
    features.file_pattern(str(tmp_path / "data"), "train"),
    config.data,
    batch_size=8,
    training=True,
    seed=1,
  )
  model = training.train(
    config,
    training.CE,
    words.num_words,
    words.num_chars,
    train_data,
    str(tmp_path / "run"),
    epochs=8,
  )
  losses = model.history.history["loss"]
  assert losses[-1] < 0.8 * losses[0], losses


def test_make_strategy_and_precision_reject_unknown_names(tmp_path):
  assert training.make_strategy("default") is tf.distribute.get_strategy()
  with pytest.raises(ValueError, match="distribution="):
    training.make_strategy("horovod")
  with pytest.raises(ConfigError, match="runtime.mixed_precision='float8'"):
    _train(tmp_path, config=_config(runtime={"mixed_precision": "float8"}))
  with pytest.raises(ValueError, match="objective="):
    _train(tmp_path, objective="kd")
  assert not os.listdir(tmp_path)  # rejected before writing anything


def test_make_optimizer_clips_global_norm():
  optimizer = training.make_optimizer(_config(clipnorm=2.5).train)
  assert optimizer.global_clipnorm == 2.5
  assert optimizer.clipnorm is None
  assert (
    training.make_optimizer(_config(clipnorm=0.0).train).global_clipnorm is None
  )


class _Stream:
  def __init__(self, tty):
    self._tty = tty

  def isatty(self):
    return self._tty


def test_progress_verbosity_bars_only_at_a_terminal():
  assert training.progress_verbosity(_Stream(True)) == 1
  assert training.progress_verbosity(_Stream(False)) == 2
  assert training.progress_verbosity(object()) == 2  # no isatty at all


class _CompileRecorder:
  def compile(self, **kwargs):
    self.kwargs = kwargs


def test_runtime_section_compiles_the_model():
  # Keras itself turns XLA off while op determinism is on (other tests in
  # this process turn it on), so what compile is asked for is checked.
  compiled = training.compile_model(
    _CompileRecorder(),
    _config(
      run_eagerly=False,
      runtime={"jit_compile": True, "steps_per_execution": 3},
      learning_rate=0.5,
    ),
  )
  assert compiled.kwargs["jit_compile"] is True
  assert compiled.kwargs["run_eagerly"] is False
  assert compiled.kwargs["steps_per_execution"] == 3
  assert float(compiled.kwargs["optimizer"].learning_rate) == 0.5
  # Eager wins over XLA, which cannot run untraced.
  both = training.compile_model(
    _CompileRecorder(), _config(runtime={"jit_compile": True})
  )
  assert both.kwargs["run_eagerly"] is True
  assert both.kwargs["jit_compile"] is False
  reader = training.build_model(training.CE, _config(), WORDS, CHARS)
  assert isinstance(reader, RMRReader) and reader.run_eagerly
  student = training.build_model(training.A2D, _config(), WORDS, CHARS)
  assert isinstance(student, student_lib.A2DStudent) and student.run_eagerly


def test_train_run_eagerly_comes_from_the_runtime_section(tmp_path):
  eager = _train(tmp_path / "eager", _config(run_eagerly=True), epochs=1)
  assert eager.run_eagerly


def _kill_on_backup_write(monkeypatch, write):
  """Makes backup write number `write` die half-way, as a SIGKILL would."""
  save_weights = keras.Model.save_weights
  calls = []

  def killed(self, filepath, *args, **kwargs):
    calls.append(filepath)
    if len(calls) == write:
      with open(filepath, "wb") as f:
        f.write(b"\x89HDF\r\n\x1a\n truncated")
      raise RuntimeError("killed while writing")
    return save_weights(self, filepath, *args, **kwargs)

  monkeypatch.setattr(keras.Model, "save_weights", killed)
  return lambda: monkeypatch.setattr(keras.Model, "save_weights", save_weights)


def test_kill_while_writing_the_backup_resumes_from_the_previous_one(
  tmp_path, monkeypatch
):
  restore = _kill_on_backup_write(monkeypatch, write=2)
  with pytest.raises(RuntimeError, match="killed while writing"):
    _train(tmp_path, epochs=3)
  restore()
  recorder = _EpochRecorder()
  model = _train(tmp_path, epochs=3, callbacks=[recorder])
  # The first epoch's backup is intact: epochs 2 and 3 run again.
  assert recorder.epochs == [1, 2]
  assert int(model.optimizer.iterations) == 3 * 2


def test_kill_while_writing_the_first_backup_starts_over(tmp_path, monkeypatch):
  restore = _kill_on_backup_write(monkeypatch, write=1)
  with pytest.raises(RuntimeError, match="killed while writing"):
    _train(tmp_path, epochs=2)
  restore()
  assert (tmp_path / "backup").exists()
  recorder = _EpochRecorder()
  model = _train(tmp_path, epochs=2, callbacks=[recorder])
  # No complete backup to resume from: both epochs run.
  assert recorder.epochs == [0, 1]
  assert int(model.optimizer.iterations) == 2 * 2


def test_train_a2d_saves_the_students_reader(tmp_path):
  knowledge = _random_dataset().map(_with_random_knowledge)
  config = _config()
  config = dataclasses.replace(
    config,
    distill=dataclasses.replace(config.distill, stagewise=True),
  )
  recorder = _EpochRecorder()
  reader = training.train(
    config,
    training.A2D,
    WORDS,
    CHARS,
    knowledge,
    str(tmp_path),
    epochs=1,
    callbacks=[recorder],
  )
  # Stage-wise: one attention warm-up epoch before the answer epoch.
  assert recorder.epochs == [0, 1]
  assert isinstance(reader, RMRReader)
  loaded = keras.models.load_model(tmp_path / "model.keras")
  assert isinstance(loaded, RMRReader)
  batch = next(iter(_random_dataset()))
  np.testing.assert_array_equal(
    reader(batch)["start_logits"], loaded(batch)["start_logits"]
  )


def _with_random_knowledge(batch):
  shape = tf.shape(batch["passage_ids"])
  size, lp = shape[0], shape[1]
  lq = tf.shape(batch["question_ids"])[1]
  hops = _config().model.aligner_hops
  p_mask = tf.sequence_mask(batch["passage_len"], lp, tf.float32)
  q_mask = tf.sequence_mask(batch["question_len"], lq, tf.float32)
  probs = p_mask / tf.reduce_sum(p_mask, -1, keepdims=True)
  rows = q_mask / tf.reduce_sum(q_mask, -1, keepdims=True)
  attention = tf.tile(
    (p_mask[:, :, None] * rows[:, None, :])[:, None], [1, hops, 1, 1]
  )
  return {
    **batch,
    "teacher_start_probs": probs,
    "teacher_end_probs": probs,
    "teacher_attention": attention,
    "confusing_start": tf.fill([size], -1),
    "confusing_end": tf.fill([size], -1),
  }


def test_resolve_runtime_decides_auto_fields_for_the_machine(monkeypatch):
  runtime = _config(run_eagerly=False).runtime
  assert runtime.deterministic is None and runtime.use_cudnn is None
  cpu = training.resolve_runtime(runtime)
  assert (cpu.deterministic, cpu.use_cudnn, cpu.pad_to_bucket) == (
    True,
    False,
    False,
  )
  assert cpu.steps_per_execution == 1
  xla = training.resolve_runtime(dataclasses.replace(runtime, jit_compile=True))
  assert (xla.deterministic, xla.pad_to_bucket) == (False, True)
  monkeypatch.setattr(training, "has_accelerator", lambda kind: kind == "GPU")
  gpu = training.resolve_runtime(runtime)
  assert (gpu.deterministic, gpu.use_cudnn, gpu.pad_to_bucket) == (
    False,
    True,
    False,
  )
  assert gpu.steps_per_execution == training.ACCELERATOR_STEPS_PER_EXECUTION
  gpu_xla = training.resolve_runtime(
    dataclasses.replace(runtime, jit_compile=True)
  )
  assert gpu_xla.use_cudnn is False and gpu_xla.deterministic is False
  eager = training.resolve_runtime(
    dataclasses.replace(runtime, run_eagerly=True)
  )
  assert eager.steps_per_execution == 1
  chosen = dataclasses.replace(
    runtime, deterministic=True, use_cudnn=False, steps_per_execution=3
  )
  kept = training.resolve_runtime(chosen)
  assert (kept.deterministic, kept.use_cudnn, kept.steps_per_execution) == (
    True,
    False,
    3,
  )
  # The readers get "auto" (cuDNN where they run on a GPU) unless XLA.
  assert training.reader_use_cudnn(runtime) == "auto"
  assert training.reader_use_cudnn(xla) is False
  assert training.reader_use_cudnn(chosen) is False


def test_auto_steps_per_execution_compiles_one_step_per_call_on_cpu():
  compiled = training.compile_model(
    _CompileRecorder(), _config(run_eagerly=False)
  )
  assert compiled.kwargs["steps_per_execution"] == 1


class _Iterations:
  def __init__(self):
    self.optimizer = type("Optimizer", (), {"iterations": 0})()


def _step_scalars(log_dir, tag):
  steps = []
  for path in glob.glob(os.path.join(log_dir, "train", "events.*")):
    for event in tf.compat.v1.train.summary_iterator(path):
      steps.extend(event.step for v in event.summary.value if v.tag == tag)
  return sorted(steps)


@pytest.mark.parametrize(
  "steps_per_execution, written",
  [(1, [1, 4, 8, 12]), (3, [3, 6, 9, 12])],
)
def test_step_scalars_every_n_steps_labelled_by_optimizer_step(
  tmp_path, steps_per_execution, written
):
  # Two epochs of 6 steps; Keras reports every `steps_per_execution`-th.
  callback = training.StepScalars(str(tmp_path), every_steps=4)
  model = _Iterations()
  callback.set_model(model)
  for epoch in range(2):
    callback.on_epoch_begin(epoch)
    for batch in range(6):
      model.optimizer.iterations += 1
      if (batch + 1) % steps_per_execution == 0:
        callback.on_train_batch_end(batch, {"loss": float(batch)})
  callback.on_train_end()
  assert _step_scalars(str(tmp_path), "batch_loss") == written
  with pytest.raises(ValueError, match="every_steps=0"):
    training.StepScalars(str(tmp_path), 0)


def test_config_json_records_the_resolved_runtime(tmp_path):
  _train(tmp_path, epochs=1)
  with open(tmp_path / "config.json") as f:
    written = json.load(f)
  assert written["config"]["runtime"]["deterministic"] is None
  assert written["resolved_runtime"]["deterministic"] is True  # no GPU
  assert written["resolved_runtime"]["steps_per_execution"] == 1


class _WeightsAtEpochEnd(keras.callbacks.Callback):
  def __init__(self):
    super().__init__()
    self.weights = []

  def on_epoch_end(self, epoch, logs=None):
    self.weights.append([w.numpy().copy() for w in self.model.weights])


def _scripted_f1(values):
  calls = []

  def validation_eval_fn(model):
    calls.append(model)
    return {"exact_match": 0.0, "f1": values[len(calls) - 1]}

  return validation_eval_fn


def _assert_weights_equal(model, expected):
  for got, want in zip(model.weights, expected, strict=True):
    np.testing.assert_array_equal(got.numpy(), want)


def test_best_epoch_weights_are_kept_when_a_later_epoch_is_worse(tmp_path):
  seen = _WeightsAtEpochEnd()
  model = _train(
    tmp_path,
    epochs=3,
    validation_eval_fn=_scripted_f1([10.0, 50.0, 20.0]),
    callbacks=[seen],
  )
  # Each epoch trained, so the weights differ; the second one is kept.
  assert not np.array_equal(seen.weights[1][0], seen.weights[2][0])
  _assert_weights_equal(model, seen.weights[1])
  loaded = keras.models.load_model(tmp_path / "model.keras")
  _assert_weights_equal(loaded, seen.weights[1])
  with open(tmp_path / "best" / "best.json") as f:
    record = json.load(f)
  assert (record["best_epoch"], record["epochs_run"]) == (2, 3)
  assert record["best_value"] == 50.0


class _ReaderOutputAtEpochEnd(keras.callbacks.Callback):
  def __init__(self, batch):
    super().__init__()
    self.batch = batch
    self.logits = []

  def on_epoch_end(self, epoch, logs=None):
    self.logits.append(self.model.reader(self.batch)["start_logits"].numpy())


def test_best_epoch_is_kept_for_the_student_too(tmp_path):
  batch = next(iter(_random_dataset()))
  seen = _ReaderOutputAtEpochEnd(batch)
  reader = training.train(
    _config(),
    training.A2D,
    WORDS,
    CHARS,
    _random_dataset().map(_with_random_knowledge),
    str(tmp_path),
    epochs=3,
    validation_eval_fn=_scripted_f1([30.0, 10.0, 20.0]),
    callbacks=[seen],
  )
  assert not np.array_equal(seen.logits[0], seen.logits[2])
  np.testing.assert_array_equal(reader(batch)["start_logits"], seen.logits[0])
  loaded = keras.models.load_model(tmp_path / "model.keras")
  np.testing.assert_array_equal(loaded(batch)["start_logits"], seen.logits[0])


def test_early_stopping_stops_after_patience_epochs_without_a_gain(tmp_path):
  epochs = _EpochRecorder()
  config = _config(early_stopping_patience=2)
  _train(
    tmp_path,
    config,
    epochs=6,
    validation_eval_fn=_scripted_f1([10.0, 40.0, 30.0, 35.0, 90.0, 90.0]),
    callbacks=[epochs],
  )
  assert epochs.epochs == [0, 1, 2, 3]
  with open(tmp_path / "best" / "best.json") as f:
    assert json.load(f)["best_epoch"] == 2


def test_best_epoch_survives_a_kill_and_resume(tmp_path):
  scores = [10.0, 60.0, 20.0, 30.0]
  seen = _WeightsAtEpochEnd()
  with pytest.raises(RuntimeError, match="preemption"):
    _train(
      tmp_path,
      epochs=4,
      validation_eval_fn=_scripted_f1(scores),
      callbacks=[seen, _KillAtEpoch(2)],
    )
  # The resumed run scores epochs 3 and 4 only; both are worse than the
  # second epoch the killed run kept.
  model = _train(
    tmp_path, epochs=4, validation_eval_fn=_scripted_f1(scores[2:])
  )
  _assert_weights_equal(model, seen.weights[1])
  with open(tmp_path / "best" / "best.json") as f:
    record = json.load(f)
  assert (record["best_epoch"], record["epochs_run"]) == (2, 4)
