"""Exact resume of `training.train`: killed and re-run = never killed.

Each test trains once uninterrupted and once killed at an epoch (a callback
or a patched write raising, as a preemption would) and re-run in the same
directory, and compares the final weights bit for bit. The input is real
feature TFRecords, shuffled by the dataset module; dropout, a decaying
learning rate and best-epoch selection on a weight-dependent score are on,
so the input order, the dropout RNG, the optimizer and the schedule all
have to resume exactly. Every run builds its input anew after scrambling
TF's global seed, as a fresh process would.
"""

import dataclasses
import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from a2d_tf import training
from a2d_tf.config import get_config
from a2d_tf.data import dataset, features, synthetic, vocab

EPOCHS = 3


@pytest.fixture(name="data", scope="module")
def fixture_data(tmp_path_factory):
  config = get_config(
    "tiny",
    [
      "data.num_shards=2",
      "data.shuffle_buffer=8",
      # Eager LSTM steps cost per token and per batch: 48-token passages
      # keep 5 of the 13 questions (the answers past the cut are skipped),
      # two uneven batches an epoch, so the input order still matters.
      "data.max_passage_len=48",
      "data.bucket_boundaries=16,32",
      "model.dropout=0.2",
      "model.aligner_hops=1",
      "model.pointer_hops=1",
      "train.lr_decay=0.8",
      "train.batch_size=4",
    ],
  )
  config = dataclasses.replace(
    config,
    model=dataclasses.replace(
      config.model, word_dim=6, char_dim=4, char_hidden=3, hidden=4
    ),
    runtime=dataclasses.replace(config.runtime, run_eagerly=True),
  )
  records = synthetic.generate_corpus(3, 0, seed=2)["train"]
  words = vocab.build_vocabulary(records, 1, 1, lowercase=True)
  out = str(tmp_path_factory.mktemp("features"))
  stats = features.write_split(records, words, config.data, out, "train", True)
  assert stats["num_examples"] == 5, stats
  return config, words, features.file_pattern(out, "train")


def _with_knowledge(batch):
  """Deterministic stand-in knowledge: uniform answers and attention."""
  shape = tf.shape(batch["passage_ids"])
  size, lp = shape[0], shape[1]
  lq = tf.shape(batch["question_ids"])[1]
  p_mask = tf.sequence_mask(batch["passage_len"], lp, tf.float32)
  q_mask = tf.sequence_mask(batch["question_len"], lq, tf.float32)
  probs = p_mask / tf.reduce_sum(p_mask, -1, keepdims=True)
  rows = q_mask / tf.reduce_sum(q_mask, -1, keepdims=True)
  attention = (p_mask[:, :, None] * rows[:, None, :])[:, None]
  return {
    **batch,
    "teacher_start_probs": probs,
    "teacher_end_probs": probs,
    "teacher_attention": attention,
    "confusing_start": tf.fill([size], 1),
    "confusing_end": tf.fill([size], 1),
  }


class _KillAtEpoch(keras.callbacks.Callback):
  def __init__(self, epoch):
    super().__init__()
    self.epoch = epoch

  def on_epoch_begin(self, epoch, logs=None):
    if epoch == self.epoch:
      raise RuntimeError("killed")


class _Epochs(keras.callbacks.Callback):
  def __init__(self):
    super().__init__()
    self.seen = []

  def on_epoch_begin(self, epoch, logs=None):
    self.seen.append(epoch)


def _train(data, out_dir, objective, callbacks=(), scores=None, **overrides):
  config, words, pattern = data
  if overrides:
    config = dataclasses.replace(
      config, train=dataclasses.replace(config.train, **overrides)
    )
  if objective == training.A2D:
    config = dataclasses.replace(
      config,
      distill=dataclasses.replace(
        config.distill, stagewise=True, warmup_epochs=1
      ),
    )
  # What this process ran before must not matter.
  keras.utils.set_random_seed(int(np.random.default_rng().integers(1 << 30)))
  epoch = dataset.epoch_variable()
  train_data = dataset.make_dataset(
    pattern,
    config.data,
    config.train.batch_size,
    training=True,
    seed=7,
    epoch=epoch,
  )
  if objective == training.A2D:
    train_data = train_data.map(_with_knowledge)
  probe = next(
    iter(
      dataset.make_dataset(pattern, config.data, 6, training=False).map(
        _with_knowledge
      )
    )
  )

  calls = []

  def validation_eval_fn(model):
    calls.append(1)
    if scores is not None:
      return {"exact_match": 0.0, "f1": scores[len(calls) - 1]}
    # A score that depends on the weights: the best epoch is a real choice.
    reader = model.reader if objective == training.A2D else model
    logits = reader(probe)["start_logits"].numpy()
    return {"exact_match": 0.0, "f1": float(np.sin(1e3 * logits.sum()))}

  return training.train(
    config,
    objective,
    words.num_words,
    words.num_chars,
    train_data,
    str(out_dir),
    validation_eval_fn=validation_eval_fn,
    seed=5,
    epochs=EPOCHS,
    train_epoch=epoch,
    callbacks=list(callbacks),
  )


def _assert_same(reader, expected, out_dir, expected_dir):
  for got, want in zip(
    reader.get_weights(), expected.get_weights(), strict=True
  ):
    np.testing.assert_array_equal(got, want)
  with (
    open(out_dir / "best" / "best.json") as f,
    open(expected_dir / "best" / "best.json") as g,
  ):
    assert json.load(f) == json.load(g)


@pytest.fixture(name="uninterrupted", scope="module")
def fixture_uninterrupted(data, tmp_path_factory):
  runs = {}
  for objective in (training.CE, training.A2D):
    out = tmp_path_factory.mktemp(f"clean_{objective}")
    runs[objective] = (_train(data, out, objective), out)
  return runs


@pytest.mark.parametrize("objective", [training.CE, training.A2D])
def test_killed_at_an_epoch_start_resumes_to_the_same_weights(
  data, uninterrupted, objective, tmp_path
):
  expected, expected_dir = uninterrupted[objective]
  with pytest.raises(RuntimeError, match="killed"):
    _train(data, tmp_path, objective, [_KillAtEpoch(2)])
  epochs = _Epochs()
  reader = _train(data, tmp_path, objective, [epochs])
  assert epochs.seen == list(range(2, EPOCHS + (objective == training.A2D)))
  _assert_same(reader, expected, tmp_path, expected_dir)
  assert not (tmp_path / "backup").exists()


@pytest.mark.parametrize("objective", [training.CE, training.A2D])
def test_killed_before_the_backup_commit_reruns_that_epoch_exactly(
  data, uninterrupted, objective, tmp_path, monkeypatch
):
  # The second epoch's end: validation scored and the best epoch written,
  # the backup not yet committed.
  expected, expected_dir = uninterrupted[objective]
  commit = training.BackupAndRestore.on_epoch_end

  def killed(self, epoch, logs=None):
    if epoch == 1:
      raise RuntimeError("killed")
    return commit(self, epoch, logs)

  monkeypatch.setattr(training.BackupAndRestore, "on_epoch_end", killed)
  with pytest.raises(RuntimeError, match="killed"):
    _train(data, tmp_path, objective)
  monkeypatch.setattr(training.BackupAndRestore, "on_epoch_end", commit)
  epochs = _Epochs()
  reader = _train(data, tmp_path, objective, [epochs])
  assert epochs.seen[0] == 1
  _assert_same(reader, expected, tmp_path, expected_dir)


def test_killed_while_the_backup_record_is_renamed_resumes_before_it(
  data, uninterrupted, tmp_path, monkeypatch
):
  # The epoch's state files are written, the record not yet in place.
  expected, expected_dir = uninterrupted[training.CE]
  replace = training.os.replace
  calls = []

  def killed(source, destination):
    if destination.endswith(training.BackupAndRestore.RECORD):
      calls.append(destination)
      if len(calls) == 2:
        raise RuntimeError("killed")
    return replace(source, destination)

  monkeypatch.setattr(training.os, "replace", killed)
  with pytest.raises(RuntimeError, match="killed"):
    _train(data, tmp_path, training.CE)
  monkeypatch.setattr(training.os, "replace", replace)
  epochs = _Epochs()
  reader = _train(data, tmp_path, training.CE, [epochs])
  assert epochs.seen == [1, 2]
  _assert_same(reader, expected, tmp_path, expected_dir)
  assert sorted(p.name for p in (tmp_path / "best").iterdir()) == [
    "best.json",
    "best.weights.h5",
  ]


def test_killed_while_the_final_model_is_written_trains_no_more(
  data, uninterrupted, tmp_path, monkeypatch
):
  expected, expected_dir = uninterrupted[training.CE]
  save = keras.Model.save

  def killed(self, filepath, *args, **kwargs):
    with open(filepath, "wb") as f:
      f.write(b"PK truncated")
    raise RuntimeError("killed")

  monkeypatch.setattr(keras.Model, "save", killed)
  with pytest.raises(RuntimeError, match="killed"):
    _train(data, tmp_path, training.CE)
  monkeypatch.setattr(keras.Model, "save", save)
  assert (tmp_path / "backup" / training.BackupAndRestore.RECORD).exists()
  epochs = _Epochs()
  reader = _train(data, tmp_path, training.CE, [epochs])
  assert epochs.seen == []
  _assert_same(reader, expected, tmp_path, expected_dir)
  loaded = keras.saving.load_model(tmp_path / training.FINAL_MODEL)
  for got, want in zip(
    loaded.get_weights(), expected.get_weights(), strict=True
  ):
    np.testing.assert_array_equal(got, want)


def test_a_run_stopped_early_and_killed_after_its_last_backup_trains_no_more(
  data, tmp_path, monkeypatch
):
  scores = [10.0, 5.0, 20.0]  # no gain in epoch 2: stopped there
  stopped = _Epochs()
  kwargs = dict(scores=scores, early_stopping_patience=1)
  clean = _train(data, tmp_path / "clean", training.CE, [stopped], **kwargs)
  assert stopped.seen == [0, 1]

  def killed(*args, **kw):
    raise OSError("killed")

  monkeypatch.setattr(keras.Model, "save", killed)
  with pytest.raises(OSError, match="killed"):
    _train(data, tmp_path / "run", training.CE, **kwargs)
  monkeypatch.undo()
  epochs = _Epochs()
  reader = _train(data, tmp_path / "run", training.CE, [epochs], **kwargs)
  # Without the stop in the backup the re-run would train epoch 3.
  assert epochs.seen == []
  for got, want in zip(reader.get_weights(), clean.get_weights(), strict=True):
    np.testing.assert_array_equal(got, want)
