"""Tests of `kit.digest`: content digests that read past run-to-run noise."""

import gzip
import json
import os
import shutil
import time

import keras
import numpy as np
import tensorflow as tf

from a2d_tf.kit import digest


def _model(seed):
  keras.utils.set_random_seed(seed)
  # Named: two runs are two processes, where Keras' automatic names agree.
  model = keras.Sequential(
    [keras.Input((3,), name="x"), keras.layers.Dense(2, name="dense")],
    name="model",
  )
  model(np.zeros((1, 3)))
  return model


def _write_run(root, seed, timing, records=(b"a", b"bc")):
  os.makedirs(root / "artifacts" / "model", exist_ok=True)
  _model(seed).save(root / "artifacts" / "model" / "model.keras")
  with open(root / "report.json", "w") as f:
    json.dump(
      {
        "f1": 50.0,
        "inference": {"k": 2, "student_s": timing, "speedup": 1 / timing},
        "uri": str(root / "artifacts" / "model"),
      },
      f,
    )
  (root / "report.md").write_text(f"time {timing:.3f} s\n")
  (root / "events.out.tfevents.1.host").write_bytes(os.urandom(8))
  options = tf.io.TFRecordOptions(compression_type="GZIP")
  with tf.io.TFRecordWriter(str(root / "data.tfrecord.gz"), options) as w:
    for record in records:
      w.write(record)


def test_same_content_gives_the_same_digests_across_runs(tmp_path):
  _write_run(tmp_path / "a", seed=1, timing=0.5)
  time.sleep(1.1)  # another second in the zip and GZIP headers
  _write_run(tmp_path / "b", seed=1, timing=0.9)
  first = digest.tree_digests(str(tmp_path / "a"))
  assert first == digest.tree_digests(str(tmp_path / "b"))
  assert set(first) == {
    "artifacts/model/model.keras",
    "report.json",
    "data.tfrecord.gz",
  }


def test_other_weights_records_or_values_change_the_digest(tmp_path):
  _write_run(tmp_path / "a", seed=1, timing=0.5)
  first = digest.tree_digests(str(tmp_path / "a"))
  _write_run(tmp_path / "b", seed=2, timing=0.5, records=(b"a", b"bd"))
  second = digest.tree_digests(str(tmp_path / "b"))
  for name in ("artifacts/model/model.keras", "data.tfrecord.gz"):
    assert first[name] != second[name], name
  assert first["report.json"] == second["report.json"]
  with open(tmp_path / "b" / "report.json") as f:
    report = json.load(f)
  report["f1"] = 50.1
  with open(tmp_path / "b" / "report.json", "w") as f:
    json.dump(report, f)
  assert (
    digest.tree_digests(str(tmp_path / "b"))["report.json"]
    != (first["report.json"])
  )


def test_record_order_matters_and_gzip_headers_do_not(tmp_path):
  path = str(tmp_path / "x.tfrecord.gz")
  options = tf.io.TFRecordOptions(compression_type="GZIP")
  with tf.io.TFRecordWriter(path, options) as w:
    w.write(b"one")
    w.write(b"two")
  want = digest.file_digest(path)
  raw = gzip.decompress(open(path, "rb").read())
  with gzip.GzipFile(path, "wb", mtime=12345) as f:
    f.write(raw)
  assert digest.file_digest(path) == want
  with tf.io.TFRecordWriter(path, options) as w:
    w.write(b"two")
    w.write(b"one")
  assert digest.file_digest(path) != want


def _example_bytes(entries):
  """A serialized tf.train.Example whose feature map is in `entries` order."""
  features = b"".join(
    tf.train.Features(
      feature={key: tf.train.Feature(int64_list=tf.train.Int64List(value=v))}
    ).SerializeToString()
    for key, v in entries
  )
  size, length = b"", len(features)
  while True:  # the varint of the Features message's length
    byte, length = length & 0x7F, length >> 7
    size += bytes([byte | (0x80 if length else 0)])
    if not length:
      break
  return b"\x0a" + size + features


def test_examples_are_compared_by_content_not_map_order(tmp_path):
  # Two processes writing the same features may order the map entries
  # differently: same digest. Another value: another digest.
  paths = {}
  for name, entries in (
    ("ab", [("a", [1, 2]), ("b", [3])]),
    ("ba", [("b", [3]), ("a", [1, 2])]),
    ("other", [("a", [1, 2]), ("b", [4])]),
  ):
    record = _example_bytes(entries)
    assert tf.train.Example.FromString(record).features.feature["b"]
    paths[name] = str(tmp_path / f"{name}.tfrecord")
    with tf.io.TFRecordWriter(paths[name]) as w:
      w.write(record)
  assert _example_bytes([("a", [1]), ("b", [3])]) != _example_bytes(
    [("b", [3]), ("a", [1])]
  )
  assert digest.file_digest(paths["ab"]) == digest.file_digest(paths["ba"])
  assert digest.file_digest(paths["ab"]) != digest.file_digest(paths["other"])


def test_saved_model_is_compared_by_its_variables(tmp_path):
  def export(path, value):
    module = tf.Module()
    module.v = tf.Variable(value)
    module.f = tf.function(
      lambda x: x * module.v, input_signature=[tf.TensorSpec([], tf.float32)]
    )
    tf.saved_model.save(module, str(path))

  export(tmp_path / "a" / "1", 2.0)
  export(tmp_path / "b" / "1", 2.0)  # traced again: other function names
  export(tmp_path / "c" / "1", 3.0)
  a = digest.tree_digests(str(tmp_path / "a"))
  assert "1/variables" in a and "1/saved_model.pb" not in a
  assert a == digest.tree_digests(str(tmp_path / "b"))
  assert a != digest.tree_digests(str(tmp_path / "c"))
  shutil.rmtree(tmp_path / "c")

  # The same values under other keys (another listing order, other
  # automatic names): the same export.
  def export_two(path, first, second):
    module = tf.Module()
    module.x, module.y = tf.Variable(first), tf.Variable(second)
    tf.saved_model.save(module, str(path))

  export_two(tmp_path / "d" / "1", 2.0, [1.0, 5.0])
  export_two(tmp_path / "e" / "1", [1.0, 5.0], 2.0)
  export_two(tmp_path / "f" / "1", 2.0, [1.0, 6.0])
  d = digest.tree_digests(str(tmp_path / "d"))
  assert d == digest.tree_digests(str(tmp_path / "e"))
  assert d != digest.tree_digests(str(tmp_path / "f"))
