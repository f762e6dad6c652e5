"""Tests of the A2D student's train/test steps, phases and distribution."""

import hashlib
import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

from a2d_tf import losses
from a2d_tf.config import DistillConfig, get_config
from a2d_tf.models import student as student_lib
from a2d_tf.models.reader import build_reader

TINY = get_config("tiny")
WORD_VOCAB, CHAR_VOCAB, WORD_LEN = 30, 12, 4
HOPS = TINY.model.aligner_hops


def make_reader(seed=0):
  keras.utils.set_random_seed(seed)
  return build_reader(TINY.model, WORD_VOCAB, CHAR_VOCAB)


def make_student(seed=0, **distill):
  config = DistillConfig(temperature=2.0, **distill)
  return student_lib.A2DStudent(make_reader(seed), config)


def make_batch(size=4, seed=0):
  """A hand-made knowledge batch with padding in both sequences."""
  rng = np.random.default_rng(seed)
  lp, lq = 7, 4
  passage_len = np.array([7, 5, 6, 3, 7, 4, 2, 6, 5][:size], np.int32)
  question_len = np.array([4, 2, 3, 4, 1, 3, 2, 4, 3][:size], np.int32)
  p_mask = np.arange(lp)[None] < passage_len[:, None]
  q_mask = np.arange(lq)[None] < question_len[:, None]

  def ids(mask, vocab):
    return np.where(mask, rng.integers(2, vocab, mask.shape), 0)

  start = np.minimum([1, 0, 2, 1, 3, 0, 1, 2, 0][:size], passage_len - 1)
  end = np.minimum([2, 1, 4, 2, 5, 3, 1, 5, 2][:size], passage_len - 1)

  def dist(mask, shape, peak=None):
    scores = rng.normal(size=shape)
    if peak is not None:  # Teachers mostly agree with the gold answer.
      scores += 3.0 * (np.arange(shape[-1])[None] == peak[:, None])
    x = np.where(mask, np.exp(scores), 0.0)
    total = x.sum(-1, keepdims=True)
    x = np.divide(x, total, out=np.zeros_like(x), where=total > 0)
    return x.astype(np.float32)

  att_mask = p_mask[:, None, :, None] & q_mask[:, None, None, :]
  teacher_att = dist(
    np.broadcast_to(att_mask, (size, HOPS, lp, lq)), (size, HOPS, lp, lq)
  )
  return {
    "question_ids": ids(q_mask, WORD_VOCAB).astype(np.int32),
    "passage_ids": ids(p_mask, WORD_VOCAB).astype(np.int32),
    "question_chars": ids(
      np.repeat(q_mask[..., None], WORD_LEN, -1), CHAR_VOCAB
    ).astype(np.int32),
    "passage_chars": ids(
      np.repeat(p_mask[..., None], WORD_LEN, -1), CHAR_VOCAB
    ).astype(np.int32),
    "passage_em": np.where(
      p_mask[..., None], rng.integers(0, 2, (size, lp, 2)), 0
    ).astype(np.float32),
    "question_len": question_len,
    "passage_len": passage_len,
    "start": start.astype(np.int32),
    "end": end.astype(np.int32),
    "teacher_start_probs": dist(p_mask, (size, lp), start),
    "teacher_end_probs": dist(p_mask, (size, lp), end),
    "teacher_attention": teacher_att,
    "confusing_start": np.array(
      [3, -1, 0, 2, 1, -1, 0, 3, -1][:size], np.int32
    ),
    "confusing_end": np.array([4, -1, 1, 2, 6, -1, 1, 4, -1][:size], np.int32),
  }


def _dataset(batch):
  size = len(batch["start"])
  return tf.data.Dataset.from_tensor_slices(batch).batch(size)


def _entropy(probs):
  logs = np.log(np.where(probs > 0, probs, 1.0))
  return -np.sum(probs * logs, axis=-1)


def _weights_equal(arrays, variables):
  return all(
    np.array_equal(a, v.numpy()) for a, v in zip(arrays, variables, strict=True)
  )


def test_student_train_step_decreases_loss():
  student = make_student()
  student.compile(optimizer=keras.optimizers.Adam(0.03), run_eagerly=True)
  batch = make_batch()
  # KD is a soft cross-entropy: its minimum is the teachers' entropy.
  floor = student.distill_config.temperature**2 * np.mean(
    _entropy(batch["teacher_start_probs"])
    + _entropy(batch["teacher_end_probs"])
  )
  before = student.test_on_batch(batch, return_dict=True)["loss"]
  for _ in range(12):
    student.train_on_batch(batch)
  after = student.test_on_batch(batch, return_dict=True)["loss"]
  assert np.isfinite(after)
  assert after - floor < 0.8 * (before - floor)


def test_student_fit_logs_one_metric_per_term():
  student = make_student()
  student.compile(optimizer=keras.optimizers.Adam(0.01), run_eagerly=True)
  batch = make_batch()
  history = student.fit(
    _dataset(batch),
    validation_data=_dataset(make_batch(seed=1)),
    epochs=1,
    verbose=0,
  )
  logs = {k: v[0] for k, v in history.history.items()}
  names = ["loss", "ce", "kd", "ans", "att"]
  assert set(names + ["val_" + n for n in names]) <= set(logs)
  for name in names:
    assert logs[name] > 0.0, name
  config = student.distill_config
  # One step: the logged terms are those of the weights before the update.
  np.testing.assert_allclose(
    logs["loss"],
    logs["ce"]
    + config.temperature**2 * logs["kd"]
    + config.ans_weight * logs["ans"]
    + config.att_weight * logs["att"],
    rtol=1e-5,
  )


def test_student_test_step_reports_same_terms_as_losses():
  student = make_student()
  student.compile(optimizer="adam", run_eagerly=True)
  batch = make_batch()
  got = student.test_on_batch(batch, return_dict=True)
  outputs = student(batch)
  want = losses.a2d_loss(outputs, batch, student.distill_config)
  for name in ("ce", "kd", "ans", "att"):
    np.testing.assert_allclose(got[name], np.mean(want[name]), rtol=1e-5)
  np.testing.assert_allclose(got["loss"], np.mean(want["total"]), rtol=1e-5)


@pytest.mark.parametrize(
  "switch, term, keys",
  [
    ("use_kd", "kd", ("teacher_start_probs", "teacher_end_probs")),
    ("use_ans", "ans", ("confusing_start", "confusing_end")),
    ("use_att", "att", ("teacher_attention",)),
  ],
)
def test_student_ablation_switch_zeroes_term(switch, term, keys):
  student = make_student(**{switch: False})
  student.compile(optimizer=keras.optimizers.Adam(0.01), run_eagerly=True)
  batch = {k: v for k, v in make_batch().items() if k not in keys}
  logs = student.train_on_batch(batch, return_dict=True)
  assert logs[term] == 0.0
  assert all(logs[t] > 0.0 for t in student_lib.TERMS if t != term)


def test_student_attention_phase_trains_attention_only():
  student = make_student(stagewise=True)
  assert student.phase == "attention"
  student.compile(optimizer=keras.optimizers.SGD(0.1), run_eagerly=True)
  batch = make_batch()
  student(batch)
  pointer = [v.numpy().copy() for v in student.reader.pointer.weights]
  aligner = [v.numpy().copy() for v in student.reader.aligner.weights]
  logs = student.train_on_batch(batch, return_dict=True)
  np.testing.assert_allclose(
    logs["loss"], student.distill_config.att_weight * logs["att"], rtol=1e-5
  )
  assert logs["ce"] > 0.0  # Reported, but not trained on.
  assert _weights_equal(pointer, student.reader.pointer.weights)
  assert not _weights_equal(aligner, student.reader.aligner.weights)


def test_stagewise_callback_switches_phase_without_recompile():
  student = make_student(stagewise=True)
  student.compile(optimizer=keras.optimizers.SGD(0.0))  # Terms stay fixed.
  batch = make_batch()
  phases = []
  recorder = keras.callbacks.LambdaCallback(
    on_epoch_begin=lambda epoch, logs: phases.append(student.phase)
  )
  callbacks = student_lib.student_callbacks(student.distill_config)
  assert [type(c) for c in callbacks] == [student_lib.StagewiseCallback]
  history = student.fit(
    _dataset(batch), epochs=3, verbose=0, callbacks=[*callbacks, recorder]
  )
  assert phases == ["attention", "answer", "answer"]
  h = history.history
  config = student.distill_config
  np.testing.assert_allclose(
    h["loss"][0], config.att_weight * h["att"][0], rtol=1e-5
  )
  np.testing.assert_allclose(
    h["loss"][1],
    h["ce"][1]
    + config.temperature**2 * h["kd"][1]
    + config.ans_weight * h["ans"][1],
    rtol=1e-5,
  )
  assert h["att"][1] > 0.0


def test_set_phase_rejects_unknown_phase():
  student = make_student()
  assert student.phase == "joint"
  with pytest.raises(ValueError, match="got 'warmup'"):
    student.set_phase("warmup")
  with pytest.raises(ValueError, match="got -1"):
    student_lib.StagewiseCallback(-1)


def test_student_param_count_equals_one_teacher():
  teacher = make_reader(seed=5)
  keras.utils.set_random_seed(0)
  student = student_lib.build_student(TINY, WORD_VOCAB, CHAR_VOCAB)
  assert student.reader.count_params() == teacher.count_params()
  assert [v.shape for v in student.trainable_variables] == [
    v.shape for v in teacher.trainable_variables
  ]
  assert student.phase == "joint"


def test_student_mixed_float16_step_uses_loss_scaling():
  keras.utils.set_random_seed(0)
  student = student_lib.build_student(
    TINY, WORD_VOCAB, CHAR_VOCAB, dtype="mixed_float16"
  )
  student.compile(optimizer=keras.optimizers.Adam(0.01), run_eagerly=True)
  assert isinstance(student.optimizer, keras.optimizers.LossScaleOptimizer)
  batch = make_batch()
  before = [v.numpy().copy() for v in student.trainable_variables]
  logs = student.train_on_batch(batch, return_dict=True)
  assert all(np.isfinite(v) for v in logs.values())
  assert not _weights_equal(before, student.trainable_variables)
  assert all(v.dtype == "float32" for v in student.trainable_variables)


def test_student_and_reader_save_as_keras_files(tmp_path):
  student = make_student(stagewise=True)
  student.compile(optimizer=keras.optimizers.Adam(0.01), run_eagerly=True)
  batch = make_batch()
  student.train_on_batch(batch)
  student.set_phase("answer")
  want = student.reader(batch)

  reader_path = str(tmp_path / "student_reader.keras")
  student.reader.save(reader_path)
  reader = keras.saving.load_model(reader_path)
  student_path = str(tmp_path / "student.keras")
  student.save(student_path)
  restored = keras.saving.load_model(student_path)

  assert restored.distill_config == student.distill_config
  assert restored.phase == "answer"
  for got in (reader(batch), restored(batch)):
    for key in ("start_logits", "end_logits", "attention"):
      np.testing.assert_allclose(got[key], want[key], rtol=1e-6)


def test_student_step_never_touches_teacher_files(tmp_path, monkeypatch):
  batch = make_batch()
  teacher_dir = tmp_path / "teachers" / "teacher_0"
  teacher_dir.mkdir(parents=True)
  teacher = make_reader(seed=3)
  teacher(batch)
  teacher_path = teacher_dir / "reader.keras"
  teacher.save(str(teacher_path))
  digest = hashlib.sha256(teacher_path.read_bytes()).hexdigest()
  mtime = os.stat(teacher_path).st_mtime_ns

  def forbidden(*args, **kwargs):
    raise AssertionError(f"a model was loaded during a student step: {args}")

  monkeypatch.setattr(keras.saving, "load_model", forbidden)
  monkeypatch.setattr(keras.models, "load_model", forbidden)
  monkeypatch.setattr(tf.saved_model, "load", forbidden)
  opened, watching = [], [True]
  root = str(tmp_path / "teachers")

  def audit(event, args):
    if watching[0] and event == "open" and args and args[0] is not None:
      path = os.fsdecode(args[0]) if not isinstance(args[0], int) else ""
      if os.path.abspath(path).startswith(root):
        opened.append(path)

  sys.addaudithook(audit)
  try:
    student = make_student()
    student.compile(optimizer=keras.optimizers.Adam(0.01), run_eagerly=True)
    student.fit(_dataset(batch), epochs=2, verbose=0)
    student.evaluate(_dataset(batch), verbose=0)
  finally:
    watching[0] = False
  assert opened == []
  assert hashlib.sha256(teacher_path.read_bytes()).hexdigest() == digest
  assert os.stat(teacher_path).st_mtime_ns == mtime
  assert sorted(os.listdir(teacher_dir)) == ["reader.keras"]


def compare_mirrored_with_single_device(batch_size: int) -> dict:
  """Two SGD steps on one device (eager) vs. MirroredStrategy over two CPUs.

  The second global batch is one example smaller, so with an even
  `batch_size` the second batch is split unevenly between the replicas
  (Keras peeks at the first batch to build the model and cannot take an
  uneven one there). Must run in a process whose CPU was split into two
  logical devices before any TF op (see
  `test_mirrored_step_matches_single_device`).
  """
  batch = make_batch(size=2 * batch_size - 1)
  dataset = tf.data.Dataset.from_tensor_slices(batch).batch(batch_size)
  single = make_student()
  single(batch)
  initial = single.get_weights()
  initial_trainable = [v.numpy().copy() for v in single.trainable_variables]
  single.compile(optimizer=keras.optimizers.SGD(0.5), run_eagerly=True)
  single_logs = single.fit(dataset, epochs=1, verbose=0).history

  strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
  with strategy.scope():
    mirrored = make_student(seed=1)
    mirrored(batch)
    mirrored.set_weights(initial)
    mirrored.compile(optimizer=keras.optimizers.SGD(0.5))
  mirrored_logs = mirrored.fit(dataset, epochs=1, verbose=0).history
  diffs = [
    float(np.max(np.abs(s.numpy() - m.numpy())))
    for s, m in zip(
      single.trainable_variables, mirrored.trainable_variables, strict=True
    )
  ]
  moves = [
    float(np.max(np.abs(s.numpy() - i)))
    for s, i in zip(single.trainable_variables, initial_trainable, strict=True)
  ]
  return {
    "replicas": strategy.num_replicas_in_sync,
    "single": {k: float(v[0]) for k, v in single_logs.items()},
    "mirrored": {k: float(v[0]) for k, v in mirrored_logs.items()},
    "max_weight_diff": max(diffs),
    "max_weight_move": max(moves),
  }


_MIRRORED_SCRIPT = textwrap.dedent(
  """
    import importlib.util, json, sys
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    spec = importlib.util.spec_from_file_location("student_test", sys.argv[1])
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    result = module.compare_mirrored_with_single_device(int(sys.argv[2]))
    print("RESULT " + json.dumps(result))
    """
)


@pytest.mark.parametrize("batch_size", [4])
def test_mirrored_step_matches_single_device(batch_size):
  # Global batches of 4 and 3 (split 2 + 2 and 2 + 1): the reduction must
  # give the single-device mean even for the uneven split. SGD, unlike Adam,
  # would expose a wrongly scaled gradient in the weights.
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
  repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  env["PYTHONPATH"] = os.pathsep.join(
    p for p in (repo, env.get("PYTHONPATH")) if p
  )
  proc = subprocess.run(
    [sys.executable, "-c", _MIRRORED_SCRIPT, __file__, str(batch_size)],
    capture_output=True,
    text=True,
    env=env,
    timeout=300,
    check=False,
  )
  lines = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
  assert proc.returncode == 0 and lines, proc.stderr[-3000:]
  result = json.loads(lines[-1][len("RESULT ") :])
  assert result["replicas"] == 2
  for name in ("loss", "ce", "kd", "ans", "att"):
    assert result["mirrored"][name] == pytest.approx(
      result["single"][name], rel=1e-5
    ), name
  assert result["max_weight_move"] > 1e-2
  assert result["max_weight_diff"] < 1e-5
