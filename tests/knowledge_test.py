"""Tests for a2d_tf.data.knowledge: the record format, the student's
dataset and the gold-answer file, without Beam or teachers."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from a2d_tf import config as config_lib
from a2d_tf.data import dataset as dataset_lib
from a2d_tf.data import features, knowledge
from a2d_tf.data import records as records_lib
from a2d_tf.data import vocab as vocab_lib
from a2d_tf.data.records import DataError


def _softmax(x):
  e = np.exp(x - np.max(x, axis=-1, keepdims=True))
  return e / e.sum(axis=-1, keepdims=True)


def _parse_one(serialized: bytes) -> dict[str, np.ndarray]:
  parsed = tf.io.parse_single_example(serialized, knowledge.KNOWLEDGE_SPEC)
  return {k: v.numpy() for k, v in knowledge.parse_knowledge(parsed).items()}


def test_add_knowledge_float16_round_trip(tmp_path):
  rng = np.random.default_rng(1)
  start = _softmax(rng.normal(size=[7]) * 3).astype(np.float32)
  end = _softmax(rng.normal(size=[7])).astype(np.float32)
  attention = _softmax(rng.normal(size=[2, 7, 5])).astype(np.float32)
  example = tf.train.Example()
  example.features.feature["id"].bytes_list.value.append(b"q1")
  example.features.feature["passage_ids"].int64_list.value.extend(range(7))
  out = knowledge.add_knowledge(example, start, end, attention, (2, 4))

  path = str(tmp_path / "k.tfrecord.gz")
  with tf.io.TFRecordWriter(path, options="GZIP") as writer:
    writer.write(out.SerializeToString())
  (serialized,) = list(tf.data.TFRecordDataset(path, compression_type="GZIP"))
  got = _parse_one(serialized)

  # float16 keeps 11 significant bits: relative error <= 2**-11.
  np.testing.assert_allclose(got["teacher_start_probs"], start, rtol=2**-11)
  np.testing.assert_allclose(got["teacher_end_probs"], end, rtol=2**-11)
  assert got["teacher_attention"].shape == (2, 7, 5)
  np.testing.assert_allclose(got["teacher_attention"], attention, rtol=2**-11)
  assert (got["confusing_start"], got["confusing_end"]) == (2, 4)
  assert got["teacher_start_probs"].dtype == np.float32
  parsed = tf.train.Example.FromString(serialized.numpy())
  assert parsed.features.feature["id"].bytes_list.value == [b"q1"]
  assert list(parsed.features.feature["passage_ids"].int64_list.value) == list(
    range(7)
  )


def test_add_knowledge_rejects_misshaped_attention():
  with pytest.raises(ValueError, match=r"\[hops, 3, question_len\]"):
    knowledge.add_knowledge(
      tf.train.Example(), np.ones(3), np.ones(3), np.ones([2, 4, 5]), (0, 0)
    )


_RECORDS = (
  (
    "q0",
    "The Eiffel Tower was built in 1889 in Paris.",
    "Where is it?",
    "Paris",
  ),
  (
    "q1",
    "Marie Curie won the Nobel Prize.",
    "What did she win?",
    "Nobel Prize",
  ),
  ("q2", "The Amazon flows into the Atlantic Ocean.", "Into what?", "Atlantic"),
  ("q3", "Everest is the highest mountain.", "What is Everest?", "highest"),
  ("q4", "Python was created by Guido van Rossum.", "By whom?", "Guido"),
)


def _records():
  return [
    records_lib.Record(
      id=record_id,
      title="t",
      context=context,
      question=question,
      answers=(records_lib.Answer(answer, context.index(answer)),),
    )
    for record_id, context, question, answer in _RECORDS
  ]


@pytest.fixture(scope="module", name="knowledge_dir")
def fixture_knowledge_dir(tmp_path_factory):
  """Feature records of five questions with random knowledge, two shards."""
  root = tmp_path_factory.mktemp("knowledge")
  config = config_lib.get_config("tiny")
  records = _records()
  vocab = vocab_lib.build_vocabulary(records, 1, 1, lowercase=True)
  features.write_split(
    records, vocab, config.data, str(root), "train", training=True
  )
  raw = tf.data.TFRecordDataset(
    tf.io.gfile.glob(features.file_pattern(str(root), "train")),
    compression_type="GZIP",
  )
  rng = np.random.default_rng(0)
  hops = config.model.aligner_hops
  out_dir = root / "out"
  out_dir.mkdir()
  examples = [tf.train.Example.FromString(r.numpy()) for r in raw]
  for shard in range(2):
    name = (
      f"{knowledge.RECORD_PREFIX}-{shard:05d}-of-00002{knowledge.RECORD_SUFFIX}"
    )
    with tf.io.TFRecordWriter(str(out_dir / name), "GZIP") as writer:
      for example in examples[shard::2]:
        feature = example.features.feature
        p = len(feature["passage_ids"].int64_list.value)
        q = len(feature["question_ids"].int64_list.value)
        out = knowledge.add_knowledge(
          example,
          _softmax(rng.normal(size=p)),
          _softmax(rng.normal(size=p)),
          _softmax(rng.normal(size=(hops, p, q))),
          (0, 1) if shard else (-1, -1),
        )
        writer.write(out.SerializeToString())
  return config, str(out_dir)


@pytest.mark.parametrize("pad_to_bucket", [False, True])
def test_make_knowledge_dataset_batches_knowledge_keys(
  knowledge_dir, pad_to_bucket
):
  config, out_dir = knowledge_dir
  config = config_lib.apply_overrides(
    config, [f"runtime.pad_to_bucket={pad_to_bucket}"]
  )
  pattern = knowledge.knowledge_pattern(out_dir)
  assert len(tf.io.gfile.glob(pattern)) == 2
  batches = list(
    knowledge.make_knowledge_dataset(pattern, config, 3, training=False)
  )
  grid = dataset_lib.length_grid(config)
  if pad_to_bucket:
    assert {b["passage_ids"].shape[1] for b in batches} <= set(grid.passage)
    assert {b["question_ids"].shape[1] for b in batches} <= set(grid.question)
  assert sum(int(b["passage_len"].shape[0]) for b in batches) == len(_RECORDS)
  hops = config.model.aligner_hops
  for batch in batches:
    size, p_len = batch["passage_ids"].shape
    q_len = batch["question_ids"].shape[1]
    assert batch["teacher_start_probs"].shape == (size, p_len)
    assert batch["teacher_attention"].shape == (size, hops, p_len, q_len)
    assert batch["confusing_start"].dtype == tf.int32
    mask = tf.sequence_mask(batch["passage_len"], p_len).numpy()
    probs = batch["teacher_end_probs"].numpy()
    assert not probs[~mask].any()  # padding stays 0
    np.testing.assert_allclose(probs.sum(-1), 1.0, atol=2e-3)


def test_make_knowledge_dataset_cache_yields_the_same_batches(knowledge_dir):
  config, out_dir = knowledge_dir
  pattern = knowledge.knowledge_pattern(out_dir)
  plain = list(
    knowledge.make_knowledge_dataset(pattern, config, 2, training=False)
  )
  cached = knowledge.make_knowledge_dataset(
    pattern, config, 2, training=False, cache=True
  )
  for _ in range(2):  # the second pass reads from memory
    again = list(cached)
    assert len(again) == len(plain)
    for got, want in zip(again, plain, strict=True):
      assert set(got) == set(want)
      for key in want:
        np.testing.assert_array_equal(got[key].numpy(), want[key].numpy())


def test_gold_file_round_trips_every_record(tmp_path):
  gold = knowledge.gold_answers_from_records(_records())
  path = knowledge.write_gold_file(gold, str(tmp_path / knowledge.GOLD_FILE))
  with open(path, encoding="utf-8") as f:
    lines = f.readlines()
  parsed = dict(knowledge.parse_gold_line(line, path) for line in lines)
  assert parsed == {k: (v.context, v.answers) for k, v in gold.items()}


@pytest.mark.parametrize(
  "line, field",
  [
    ('{"id": "q0", "context": "c"}', "answers"),
    ("not json", "answers"),
    ('{"id": 3, "context": "c", "answers": []}', "id"),
  ],
)
def test_parse_gold_line_names_file_and_field(line, field):
  with pytest.raises(DataError, match=f"file gold.jsonl, field '{field}'"):
    knowledge.parse_gold_line(line, "gold.jsonl")
