"""Tests for a2d_tf.materialize: the knowledge step's Beam pipeline end to
end on tiny random teachers (FnApiRunner and DirectRunner)."""

from __future__ import annotations

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from a2d_tf import config as config_lib
from a2d_tf import decoding, ensemble, masking, materialize
from a2d_tf.data import features, knowledge
from a2d_tf.data import records as records_lib
from a2d_tf.data import vocab as vocab_lib
from a2d_tf.data.records import DataError
from a2d_tf.metrics import squad
from a2d_tf.models import reader


def _parse_one(serialized: bytes) -> dict[str, np.ndarray]:
  parsed = tf.io.parse_single_example(serialized, knowledge.KNOWLEDGE_SPEC)
  return {k: v.numpy() for k, v in knowledge.parse_knowledge(parsed).items()}


_CONTEXTS = (
  "The Eiffel Tower was built in 1889 in Paris, France.",
  "Marie Curie won the Nobel Prize in physics and later in chemistry.",
  "The Amazon river flows through Brazil into the Atlantic Ocean.",
  "Mount Everest is the highest mountain above sea level.",
  "Python was created by Guido van Rossum and released in 1991.",
)
_QUESTIONS = (
  "Where is the Eiffel Tower?",
  "What did Marie Curie win?",
  "Which ocean does the Amazon reach?",
  "What is Mount Everest?",
  "Who created Python?",
)
_ANSWERS = (
  ("Paris", "Paris, France"),
  ("the Nobel Prize",),
  ("Atlantic Ocean",),
  ("the highest mountain",),
  ("Guido van Rossum",),
)


def _records():
  return [
    records_lib.Record(
      id=f"q{i}",
      title="t",
      context=context,
      question=question,
      answers=tuple(
        records_lib.Answer(text, context.index(text)) for text in answers
      ),
    )
    for i, (context, question, answers) in enumerate(
      zip(_CONTEXTS, _QUESTIONS, _ANSWERS, strict=True)
    )
  ]


def _write_fixture(tmp_path, config):
  """Features of five records and two tiny random RMR teachers."""
  records = _records()
  vocab = vocab_lib.build_vocabulary(records, 1, 1, lowercase=True)
  features.write_split(
    records, vocab, config.data, str(tmp_path), "train", training=True
  )
  teacher_paths = []
  for seed in range(2):
    keras.utils.set_random_seed(seed)
    teacher = reader.build_reader(
      config.model, vocab.num_words, vocab.num_chars, use_cudnn=False
    )
    path = str(tmp_path / f"teacher_{seed}.keras")
    teacher.save(path)
    teacher_paths.append(path)
  gold = knowledge.gold_answers_from_records(records)
  return features.file_pattern(str(tmp_path), "train"), teacher_paths, gold


def _read_all(pattern):
  paths = tf.io.gfile.glob(pattern)
  assert paths and all(p.endswith(".tfrecord.gz") for p in paths)
  dataset = tf.data.TFRecordDataset(paths, compression_type="GZIP")
  return [r.numpy() for r in dataset]


def _read_records(out_dir):
  return _read_all(knowledge.knowledge_pattern(out_dir))


@pytest.fixture(scope="module")
def materialized(tmp_path_factory):
  tmp_path = tmp_path_factory.mktemp("knowledge")
  config = config_lib.get_config("tiny", ["teacher.top_k=4"])
  feature_path, teacher_paths, gold = _write_fixture(tmp_path, config)
  out_dir = str(tmp_path / "out")
  stats = materialize.materialize_knowledge(
    feature_path,
    teacher_paths,
    out_dir,
    config,
    gold_answers=gold,
    beam_pipeline_args=["--runner=DirectRunner"],
    batch_size=2,
  )
  return config, feature_path, teacher_paths, gold, out_dir, stats


def test_materialize_knowledge_writes_every_record(materialized):
  config, feature_path, _, _, out_dir, stats = materialized
  records = _read_records(out_dir)
  assert len(records) == len(_CONTEXTS) == stats["num_examples"]
  with open(os.path.join(out_dir, knowledge.STATS_FILE)) as f:
    assert json.load(f) == stats
  # The figures come from Beam counters: no side files are left behind.
  assert sorted(os.listdir(out_dir)) == sorted(
    [knowledge.STATS_FILE]
    + [
      os.path.basename(p)
      for p in tf.io.gfile.glob(knowledge.knowledge_pattern(out_dir))
    ]
  )
  assert stats["with_confusing"] + stats["without_confusing"] == len(_CONTEXTS)
  assert stats["num_teachers"] == 2
  assert stats["knowledge_bytes_per_example"] > 0
  added = stats["knowledge_bytes_per_example"]
  assert stats["record_bytes_per_example"] > added
  originals = {}
  for raw in _read_all(feature_path):
    example = tf.train.Example.FromString(raw)
    originals[example.features.feature["id"].bytes_list.value[0]] = example
  for serialized in records:
    example = tf.train.Example.FromString(serialized)
    feature = example.features.feature
    original = originals[feature["id"].bytes_list.value[0]]
    for key, value in original.features.feature.items():
      assert feature[key] == value, key


def test_materialize_knowledge_shapes_and_distributions(materialized):
  config, _, _, gold, out_dir, stats = materialized
  with_confusing = 0
  for serialized in _read_records(out_dir):
    example = tf.train.Example.FromString(serialized)
    feature = example.features.feature
    record_id = feature["id"].bytes_list.value[0].decode()
    p_len = len(feature["passage_ids"].int64_list.value)
    q_len = len(feature["question_ids"].int64_list.value)
    got = _parse_one(serialized)
    assert got["teacher_start_probs"].shape == (p_len,)
    assert got["teacher_end_probs"].shape == (p_len,)
    hops = config.model.aligner_hops
    assert got["teacher_attention"].shape == (hops, p_len, q_len)
    np.testing.assert_allclose(got["teacher_start_probs"].sum(), 1.0, atol=2e-3)
    np.testing.assert_allclose(got["teacher_end_probs"].sum(), 1.0, atol=2e-3)
    np.testing.assert_allclose(got["teacher_attention"].sum(-1), 1.0, atol=2e-3)
    start, end = int(got["confusing_start"]), int(got["confusing_end"])
    if (start, end) == ensemble.NO_SPAN:
      continue
    with_confusing += 1
    assert 0 <= start <= end < min(p_len, start + config.model.max_answer_len)
    chars_from = feature["passage_char_starts"].int64_list.value[start]
    chars_to = feature["passage_char_ends"].int64_list.value[end]
    text = gold[record_id].context[chars_from:chars_to]
    assert all(squad.f1_score(text, g) == 0 for g in gold[record_id].answers)
  assert with_confusing == stats["with_confusing"]


def test_materialize_knowledge_matches_direct_computation(materialized):
  """Records equal the method applied to one differently padded batch."""
  config, feature_path, teacher_paths, gold, out_dir, _ = materialized
  stored = {}
  for serialized in _read_records(out_dir):
    example = tf.train.Example.FromString(serialized)
    stored[example.features.feature["id"].bytes_list.value[0]] = serialized
  teachers = [keras.saving.load_model(p) for p in teacher_paths]
  # All five examples in one batch, where the pipeline used batches of 2.
  inputs = materialize.batch_features(
    _read_all(feature_path), config.data.max_word_len
  )
  inputs = {k: v.numpy() for k, v in inputs.items()}
  mask = tf.sequence_mask(inputs["passage_len"], inputs["passage_ids"].shape[1])
  outputs = [t(inputs) for t in teachers]
  tau = config.distill.temperature
  want = {
    key: ensemble.ensemble_probs(
      [o[f"{key}_logits"] for o in outputs], mask, tau
    ).numpy()
    for key in ("start", "end")
  }
  want_att = ensemble.ensemble_attention([o["attention"] for o in outputs])
  decoded = [
    decoding.top_k_spans(
      masking.masked_softmax(o["start_logits"], mask).numpy(),
      masking.masked_softmax(o["end_logits"], mask).numpy(),
      inputs["passage_len"],
      config.teacher.top_k,
      config.model.max_answer_len,
    )
    for o in outputs
  ]
  for i, record_id in enumerate(inputs["id"]):
    p, q = inputs["passage_len"][i], inputs["question_len"][i]
    got = _parse_one(stored[record_id])
    for key in ("start", "end"):
      np.testing.assert_allclose(
        got[f"teacher_{key}_probs"], want[key][i, :p], rtol=2**-10, atol=1e-6
      )
    np.testing.assert_allclose(
      got["teacher_attention"],
      want_att.numpy()[i, :, :p, :q],
      rtol=2**-10,
      atol=1e-6,
    )
    record_gold = gold[record_id.decode()]
    texts = [
      [
        decoding.span_text(
          record_gold.context,
          inputs["passage_char_starts"][i, :p],
          inputs["passage_char_ends"][i, :p],
          a,
          b,
        )[0]
        for a, b in spans[i]
      ]
      for spans, _ in decoded
    ]
    want_span = ensemble.select_confusing_span(
      np.stack([spans[i] for spans, _ in decoded]),
      np.stack([scores[i] for _, scores in decoded]),
      texts,
      record_gold.answers,
    )
    assert (got["confusing_start"], got["confusing_end"]) == want_span


def test_make_knowledge_dataset_batches_knowledge_keys(materialized):
  config, _, _, _, out_dir, _ = materialized
  pattern = knowledge.knowledge_pattern(out_dir)
  dataset = knowledge.make_knowledge_dataset(
    pattern, config, batch_size=3, training=False
  )
  batches = list(dataset)
  assert sum(int(b["passage_len"].shape[0]) for b in batches) == 5
  hops = config.model.aligner_hops
  for batch in batches:
    size, p_len = batch["passage_ids"].shape
    q_len = batch["question_ids"].shape[1]
    assert batch["teacher_start_probs"].shape == (size, p_len)
    assert batch["teacher_end_probs"].dtype == tf.float32
    assert batch["teacher_attention"].shape == (size, hops, p_len, q_len)
    assert batch["confusing_start"].shape == (size,)
    assert batch["confusing_end"].dtype == tf.int32
    mask = tf.sequence_mask(batch["passage_len"], p_len).numpy()
    probs = batch["teacher_start_probs"].numpy()
    assert not probs[~mask].any()
    np.testing.assert_allclose(probs.sum(-1), 1.0, atol=2e-3)


def test_materialize_knowledge_missing_gold_names_record(
  materialized, tmp_path
):
  config, feature_path, teacher_paths, gold, _, _ = materialized
  gold = {k: v for k, v in gold.items() if k != "q3"}
  with pytest.raises(DataError, match="record q3"):
    materialize.materialize_knowledge(
      feature_path,
      teacher_paths,
      str(tmp_path / "out"),
      config,
      gold_answers=gold,
    )


def _knowledge_by_id(out_dir):
  parsed = {}
  for serialized in _read_records(out_dir):
    record_id = tf.train.Example.FromString(serialized).features.feature["id"]
    parsed[record_id.bytes_list.value[0].decode()] = _parse_one(serialized)
  return parsed


def test_materialize_knowledge_reads_gold_from_a_file(materialized, tmp_path):
  config, feature_path, teacher_paths, gold, out_dir, stats = materialized
  path = knowledge.write_gold_file(gold, str(tmp_path / "gold.jsonl"))
  with open(path, encoding="utf-8") as f:
    assert len(f.readlines()) == len(gold)
  from_file = str(tmp_path / "from_file")
  file_stats = materialize.materialize_knowledge(
    feature_path,
    teacher_paths,
    from_file,
    config,
    gold_answers=path,
    beam_pipeline_args=["--runner=DirectRunner"],
    batch_size=2,
  )
  assert file_stats["num_examples"] == stats["num_examples"]
  assert file_stats["with_confusing"] == stats["with_confusing"]
  want, got = _knowledge_by_id(out_dir), _knowledge_by_id(from_file)
  assert sorted(got) == sorted(want)
  for record_id, example in want.items():
    for key in ("confusing_start", "confusing_end"):
      np.testing.assert_array_equal(got[record_id][key], example[key])
    np.testing.assert_allclose(
      got[record_id]["teacher_start_probs"],
      example["teacher_start_probs"],
      atol=1e-3,
    )


def test_materialize_knowledge_bad_gold_line_names_the_file(
  materialized, tmp_path
):
  config, feature_path, teacher_paths, _, _, _ = materialized
  path = tmp_path / "gold.jsonl"
  path.write_text('{"id": "q0", "context": "c"}\n', encoding="utf-8")
  with pytest.raises(DataError, match="gold.jsonl.*field 'answers'"):
    materialize.materialize_knowledge(
      feature_path,
      teacher_paths,
      str(tmp_path / "out"),
      config,
      gold_answers=str(path),
    )


def test_write_shard_is_sorted_by_id_whatever_the_input_order(tmp_path):
  records = [(f"q{i}", f"record {i}".encode()) for i in (3, 1, 2)]
  written = []
  for name, order in (("a", records), ("b", records[::-1])):
    out_dir = tmp_path / name
    out_dir.mkdir()
    (path,) = materialize.WriteShardFn(str(out_dir), 2).process((1, order))
    assert path == materialize.shard_path(str(out_dir), 1, 2)
    assert os.listdir(out_dir) == [os.path.basename(path)]  # no .partial
    assert _read_all(path) == [b"record 1", b"record 2", b"record 3"]
    with open(path, "rb") as f:
      written.append(f.read())
  assert written[0] == written[1]
  # The shard of a record is a CRC-32 of its id, the same in every process.
  assert materialize.shard_index("q1", 7) == 639851122 % 7
  assert {materialize.shard_index(f"q{i}", 3) for i in range(30)} == {0, 1, 2}
