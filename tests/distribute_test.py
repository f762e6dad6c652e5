"""Tests of scale: strategies, mirrored teacher steps, precision, caching.

The mirrored and multi-worker checks run in a subprocess: the CPU must be
split into two logical devices (or the collective runtime configured)
before TensorFlow runs its first op, which pytest's process has long done.
"""

import json
import os
import socket
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

from a2d_tf import training
from a2d_tf.config import get_config
from a2d_tf.data import dataset as dataset_lib
from a2d_tf.data import features, synthetic
from a2d_tf.data import vocab as vocab_lib
from a2d_tf.models import student as student_lib
from a2d_tf.models.reader import build_reader

TINY = get_config("tiny")
WORD_VOCAB, CHAR_VOCAB, WORD_LEN = 30, 12, 4
POLICIES = ("mixed_bfloat16", "mixed_float16")


def make_batch(size=4, seed=0):
  """A reader batch (features and gold span) with padding in both inputs."""
  rng = np.random.default_rng(seed)
  lp, lq = 7, 4
  passage_len = np.array([7, 5, 6, 3, 7, 4, 2, 6, 5][:size], np.int32)
  question_len = np.array([4, 2, 3, 4, 1, 3, 2, 4, 3][:size], np.int32)
  p_mask = np.arange(lp)[None] < passage_len[:, None]
  q_mask = np.arange(lq)[None] < question_len[:, None]

  def ids(mask, vocab):
    return np.where(mask, rng.integers(2, vocab, mask.shape), 0).astype(
      np.int32
    )

  start = np.minimum([1, 0, 2, 1, 3, 0, 1, 2, 0][:size], passage_len - 1)
  end = np.minimum([2, 1, 4, 2, 5, 3, 1, 5, 2][:size], passage_len - 1)
  return {
    "question_ids": ids(q_mask, WORD_VOCAB),
    "passage_ids": ids(p_mask, WORD_VOCAB),
    "question_chars": ids(np.repeat(q_mask[..., None], WORD_LEN, -1), 12),
    "passage_chars": ids(np.repeat(p_mask[..., None], WORD_LEN, -1), 12),
    "passage_em": np.where(
      p_mask[..., None], rng.integers(0, 2, (size, lp, 2)), 0
    ).astype(np.float32),
    "question_len": question_len,
    "passage_len": passage_len,
    "start": start.astype(np.int32),
    "end": end.astype(np.int32),
  }


class _StepLogs(keras.callbacks.Callback):
  """Records the logged metrics after each step (running means in Keras)."""

  def __init__(self):
    super().__init__()
    self.values = []

  def on_train_batch_end(self, batch, logs=None):
    self.values.append({k: float(v) for k, v in logs.items()})


def make_knowledge(batch, hops, seed=1):
  """Random teacher knowledge of the right supports for `batch`."""
  rng = np.random.default_rng(seed)
  size, lp = batch["passage_ids"].shape
  lq = batch["question_ids"].shape[1]
  p_mask = np.arange(lp)[None] < batch["passage_len"][:, None]
  q_mask = np.arange(lq)[None] < batch["question_len"][:, None]

  def dist(mask):
    x = np.where(mask, rng.random(mask.shape) + 0.1, 0.0)
    total = x.sum(-1, keepdims=True)
    out = np.zeros_like(x)
    return np.divide(x, total, out=out, where=total > 0).astype(np.float32)

  att_mask = p_mask[:, None, :, None] & q_mask[:, None, None, :]
  confusing = np.where(rng.random(size) < 0.5, -1, 0).astype(np.int32)
  return {
    **batch,
    "teacher_start_probs": dist(p_mask),
    "teacher_end_probs": dist(p_mask),
    "teacher_attention": dist(np.broadcast_to(att_mask, (size, hops, lp, lq))),
    "confusing_start": confusing,
    "confusing_end": np.where(confusing < 0, -1, 1).astype(np.int32),
  }


def _make_model(objective, seed):
  keras.utils.set_random_seed(seed)
  if objective == training.CE:
    return build_reader(TINY.model, WORD_VOCAB, CHAR_VOCAB)
  return student_lib.build_student(TINY, WORD_VOCAB, CHAR_VOCAB)


def compare_mirrored_with_single_device(objective, batch_sizes) -> dict:
  """Train steps on one device (eager) vs MirroredStrategy on two CPUs.

  One SGD step per global batch in `batch_sizes` (a batch of 1 leaves the
  second replica empty), from the same initial weights and on the same
  examples, for a reader (`training.CE`) or the student (`training.A2D`).
  Must run in a process whose CPU was split into two logical devices
  before any TF op (see `_run_script`).
  """
  batch = make_batch(size=sum(batch_sizes))
  if objective == training.A2D:
    batch = make_knowledge(batch, TINY.model.aligner_hops)
  bounds = np.cumsum([0, *batch_sizes])
  batches = [
    {k: v[a:b] for k, v in batch.items()}
    for a, b in zip(bounds[:-1], bounds[1:], strict=True)
  ]
  signature = {
    k: tf.TensorSpec((None, *v.shape[1:]), v.dtype) for k, v in batch.items()
  }

  def dataset():
    return tf.data.Dataset.from_generator(
      lambda: iter(batches), output_signature=signature
    )

  single = _make_model(objective, seed=0)
  initial = single.get_weights()
  single.compile(optimizer=keras.optimizers.SGD(0.5), run_eagerly=True)
  single_logs = _StepLogs()
  single.fit(dataset(), epochs=1, verbose=0, callbacks=[single_logs])

  strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
  with strategy.scope():
    mirrored = _make_model(objective, seed=1)
    mirrored.set_weights(initial)
    mirrored.compile(optimizer=keras.optimizers.SGD(0.5))
  mirrored_logs = _StepLogs()
  mirrored.fit(dataset(), epochs=1, verbose=0, callbacks=[mirrored_logs])
  weights = mirrored.get_weights()
  diffs = [
    float(np.max(np.abs(s - m)))
    for s, m in zip(single.get_weights(), weights, strict=True)
  ]
  moves = [
    float(np.max(np.abs(s - i)))
    for s, i in zip(single.get_weights(), initial, strict=True)
  ]
  return {
    "replicas": strategy.num_replicas_in_sync,
    "single_logs": single_logs.values,
    "mirrored_logs": mirrored_logs.values,
    "max_weight_diff": max(diffs),
    "max_weight_move": max(moves),
    "finite": bool(all(np.all(np.isfinite(w)) for w in weights)),
  }


def multi_worker_strategy() -> dict:
  """What `make_strategy("multi_worker")` built from TF_CONFIG."""
  strategy = training.make_strategy("multi_worker")
  resolver = strategy.cluster_resolver
  return {
    "multi_worker": isinstance(
      strategy, tf.distribute.MultiWorkerMirroredStrategy
    ),
    "task": [resolver.task_type, resolver.task_id],
    "workers": len(resolver.cluster_spec().as_dict()["worker"]),
    "replicas": strategy.num_replicas_in_sync,
  }


_SCRIPT = textwrap.dedent(
  """
    import importlib.util, json, sys
    import tensorflow as tf
    if sys.argv[2] == "mirrored":
      cpu = tf.config.list_physical_devices("CPU")[0]
      tf.config.set_logical_device_configuration(
          cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    spec = importlib.util.spec_from_file_location("module", sys.argv[1])
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if sys.argv[2] == "mirrored":
      result = [
          module.compare_mirrored_with_single_device(objective, sizes)
          for objective, sizes in json.loads(sys.argv[3])]
    else:
      result = module.multi_worker_strategy()
    print("RESULT " + json.dumps(result))
    """
)


def _run_script(*args, **env_vars) -> dict:
  env = dict(
    os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="", **env_vars
  )
  repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  env["PYTHONPATH"] = os.pathsep.join(
    p for p in (repo, env.get("PYTHONPATH")) if p
  )
  proc = subprocess.run(
    [sys.executable, "-c", _SCRIPT, __file__, *args],
    capture_output=True,
    text=True,
    env=env,
    timeout=300,
    check=False,
  )
  lines = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
  assert proc.returncode == 0 and lines, proc.stderr[-3000:]
  return json.loads(lines[-1][len("RESULT ") :])


# (objective, global batch sizes), one SGD step per batch.
_MIRRORED_CASES = (
  # Global batches of 4 (split 2 + 2) and 3 (split 2 + 1): the gradient
  # reduction must give the single-device mean even for the uneven split.
  (training.CE, [4, 3]),
  # A batch of 1 on two replicas: the second replica's batch is empty. It
  # is not the first: Keras 3.15's fit averages its first batch over the
  # replicas to build the model, which fails on an uneven split
  # (keras-team/keras#19246); the input puts full batches first.
  (training.CE, [2, 1]),
  (training.A2D, [4, 1]),
)


@pytest.mark.parametrize("case", range(len(_MIRRORED_CASES)))
def test_mirrored_step_matches_single_device_with_uneven_and_empty_replicas(
  case,
):
  # One process per case: a second MirroredStrategy in a process that ran
  # one fails in its collectives on these logical CPUs.
  (result,) = _run_script("mirrored", json.dumps([_MIRRORED_CASES[case]]))
  batch_sizes = _MIRRORED_CASES[case][1]
  assert result["replicas"] == 2
  # Every step's logged terms (running means), not just the first: they
  # are means over examples, exact however a batch splits.
  single, mirrored = result["single_logs"], result["mirrored_logs"]
  assert len(single) == len(mirrored) == len(batch_sizes)
  for want, got in zip(single, mirrored, strict=True):
    assert set(got) == set(want)
    for name, value in want.items():
      assert np.isfinite(got[name]), name
      assert got[name] == pytest.approx(value, rel=1e-5, abs=1e-6), name
  # SGD, unlike Adam, would expose a wrongly scaled gradient in the weights.
  assert result["finite"]
  assert result["max_weight_move"] > 1e-2
  assert result["max_weight_diff"] < 1e-5


def test_multi_worker_strategy_reads_tf_config():
  with socket.socket() as s:
    s.bind(("localhost", 0))
    port = s.getsockname()[1]
  tf_config = {
    "cluster": {"worker": [f"localhost:{port}"]},
    "task": {"type": "worker", "index": 0},
  }
  result = _run_script("multi_worker", TF_CONFIG=json.dumps(tf_config))
  assert result == {
    "multi_worker": True,
    "task": ["worker", 0],
    "workers": 1,
    "replicas": 1,
  }


def test_make_strategy_explains_missing_cluster_or_tpu(monkeypatch):
  monkeypatch.delenv("TF_CONFIG", raising=False)
  with pytest.raises(ValueError, match="TF_CONFIG"):
    training.make_strategy("multi_worker")
  if tf.config.list_physical_devices("TPU"):
    pytest.skip("this host has a TPU")
  monkeypatch.delenv("TPU_NAME", raising=False)
  with pytest.raises(RuntimeError, match="no TPU could be reached"):
    training.make_strategy("tpu")


def test_per_replica_batch_size_divides_global_batch():
  default = training.make_strategy("default")
  assert training.per_replica_batch_size(32, default) == 32

  class TwoReplicas:
    num_replicas_in_sync = 2

  assert training.per_replica_batch_size(32, TwoReplicas()) == 16
  with pytest.raises(ValueError, match="batch_size=33"):
    training.per_replica_batch_size(33, TwoReplicas())


def _dataset(batch):
  return tf.data.Dataset.from_tensors(batch)


@pytest.mark.parametrize("policy", POLICIES)
def test_train_ce_mixed_precision_flag_keeps_float32_outputs(tmp_path, policy):
  config = get_config(
    "tiny", [f"runtime.mixed_precision={policy}", "runtime.run_eagerly=true"]
  )
  batch = make_batch()
  keras.utils.set_random_seed(0)
  model = training.train(
    config,
    training.CE,
    WORD_VOCAB,
    CHAR_VOCAB,
    _dataset(batch),
    str(tmp_path),
    epochs=1,
    deterministic=False,
  )
  compute = policy.removeprefix("mixed_")
  assert model.encoder.compute_dtype == compute
  assert all(v.dtype == "float32" for v in model.trainable_variables)
  assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer) == (
    policy == "mixed_float16"
  )
  assert np.isfinite(model.history.history["loss"][0])
  outputs = model(batch, training=True)
  for value in outputs.values():
    assert value.dtype == tf.float32
  loss = model.compute_loss(x=batch, y_pred=outputs)
  assert loss.dtype == tf.float32 and np.isfinite(loss.numpy())


@pytest.mark.parametrize("policy", POLICIES)
def test_train_a2d_mixed_precision_flag_keeps_float32_losses(tmp_path, policy):
  from a2d_tf import losses

  config = get_config(
    "tiny", [f"runtime.mixed_precision={policy}", "runtime.run_eagerly=true"]
  )
  batch = make_batch()
  rng = np.random.default_rng(1)
  size, lp, lq = batch["passage_ids"].shape[0], 7, 4
  hops = config.model.aligner_hops
  p_mask = np.arange(lp)[None] < batch["passage_len"][:, None]
  q_mask = np.arange(lq)[None] < batch["question_len"][:, None]

  def dist(mask):
    x = np.where(mask, rng.random(mask.shape) + 0.1, 0.0)
    total = x.sum(-1, keepdims=True)
    out = np.zeros_like(x)
    return np.divide(x, total, out=out, where=total > 0).astype(np.float32)

  att_mask = p_mask[:, None, :, None] & q_mask[:, None, None, :]
  knowledge = {
    **batch,
    "teacher_start_probs": dist(p_mask),
    "teacher_end_probs": dist(p_mask),
    "teacher_attention": dist(np.broadcast_to(att_mask, (size, hops, lp, lq))),
    "confusing_start": np.array([3, -1, 0, 2], np.int32),
    "confusing_end": np.array([4, -1, 1, 2], np.int32),
  }
  keras.utils.set_random_seed(0)
  reader = training.train(
    config,
    training.A2D,
    WORD_VOCAB,
    CHAR_VOCAB,
    _dataset(knowledge),
    str(tmp_path),
    epochs=1,
    deterministic=False,
  )
  assert reader.encoder.compute_dtype == policy.removeprefix("mixed_")
  outputs = reader(knowledge, training=True)
  for value in outputs.values():
    assert value.dtype == tf.float32
  terms = losses.a2d_loss(outputs, knowledge, config.distill)
  for name, value in terms.items():
    assert value.dtype == tf.float32, name
    assert np.all(np.isfinite(value.numpy())), name
  assert terms["att"].numpy().max() > 0.0


@pytest.fixture(name="pattern", scope="module")
def fixture_pattern(tmp_path_factory):
  out_dir = str(tmp_path_factory.mktemp("features"))
  data = get_config(
    "tiny", ["data.num_shards=2", "data.shuffle_buffer=1000"]
  ).data
  records = synthetic.generate_corpus(6, 0, seed=3)["train"]
  vocab = vocab_lib.build_vocabulary(records, 1, 1, lowercase=True)
  features.write_split(records, vocab, data, out_dir, "train", True)
  return features.file_pattern(out_dir, "train"), data


def _ids(dataset):
  return [i.decode() for b in dataset for i in b["id"].numpy()]


def test_cached_eval_input_keeps_file_order_every_pass(pattern):
  file_pattern, data = pattern
  plain = dataset_lib.make_dataset(
    file_pattern, data, 5, training=False, with_metadata=True
  )
  cached = dataset_lib.make_dataset(
    file_pattern, data, 5, training=False, with_metadata=True, cache=True
  )
  want = _ids(plain)
  assert len(want) > 10
  assert _ids(cached) == want
  assert _ids(cached) == want  # second pass: served from the cache
  first = next(iter(plain))
  again = next(iter(cached))
  for key, value in first.items():
    np.testing.assert_array_equal(value.numpy(), again[key].numpy())


def test_cached_training_input_is_seeded_and_reshuffled(pattern):
  file_pattern, data = pattern

  def make(seed):
    return dataset_lib.make_dataset(
      file_pattern,
      data,
      4,
      training=True,
      seed=seed,
      with_metadata=True,
      cache=True,
    )

  cached = make(5)
  epoch_1, epoch_2 = _ids(cached), _ids(cached)
  assert epoch_1 == _ids(make(5))
  assert sorted(epoch_1) == sorted(epoch_2)
  assert epoch_1 != epoch_2
  assert epoch_1 != _ids(make(6))
  boundary = data.bucket_boundaries[0]
  for batch in cached:
    short = batch["passage_len"].numpy() < boundary
    assert short.all() or not short.any()
