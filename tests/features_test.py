"""Tests of featurization, the feature spec and split writing."""

import json

import numpy as np
import pytest
import tensorflow as tf

from a2d_tf.config import DataConfig
from a2d_tf.data import features
from a2d_tf.data.records import Answer, Record
from a2d_tf.data.tokenization import Token
from a2d_tf.data.vocab import Vocabulary

CONFIG = DataConfig(
  max_passage_len=4, max_question_len=6, max_word_len=3, num_shards=2
)


@pytest.fixture(name="vocab")
def fixture_vocab():
  # Word ids: the=2 cat=3 sat=4 who=5 ?=6 .=7; chars: T=2 h=3 e=4 c=5 a=6 t=7.
  return Vocabulary(
    ["the", "cat", "sat", "who", "?", "."],
    ["T", "h", "e", "c", "a", "t"],
    lowercase=True,
  )


def _record(rid, context, question, answers):
  return Record(rid, "title", context, question, tuple(answers))


GOOD = _record(
  "good", "The cat sat.", "Who sat on THE mat?", [Answer("cat", 4)]
)


def _parse(example, max_word_len=3):
  parsed = features.parse_example(
    tf.constant(example.SerializeToString()), max_word_len
  )
  return {k: v.numpy() for k, v in parsed.items()}


def test_round_trip_record_to_parsed_ids(vocab):
  examples, counts = features.featurize([GOOD], vocab, CONFIG, training=True)
  assert sum(counts.values()) == 0
  parsed = _parse(examples[0])
  assert parsed["id"] == b"good"
  np.testing.assert_array_equal(parsed["question_ids"], [5, 4, 1, 2, 1, 6])
  np.testing.assert_array_equal(parsed["passage_ids"], [2, 3, 4, 7])
  np.testing.assert_array_equal(
    parsed["passage_chars"], [[2, 3, 4], [5, 6, 7], [1, 6, 7], [1, 0, 0]]
  )
  # "THE": chars are case-sensitive, only "T" is known.
  np.testing.assert_array_equal(parsed["question_chars"][3], [2, 1, 1])
  # "The" matches the question's "THE" only after lowercasing.
  np.testing.assert_array_equal(
    parsed["passage_em"], [[0, 1], [0, 0], [1, 1], [0, 0]]
  )
  # The mirror: "sat" occurs in the passage, "THE" only after lowercasing.
  np.testing.assert_array_equal(
    parsed["question_em"], [[0, 0], [1, 1], [0, 0], [0, 1], [0, 0], [0, 0]]
  )
  np.testing.assert_array_equal(parsed["passage_char_starts"], [0, 4, 8, 11])
  np.testing.assert_array_equal(parsed["passage_char_ends"], [3, 7, 11, 12])
  assert (parsed["start"], parsed["end"]) == (1, 1)
  assert (parsed["question_len"], parsed["passage_len"]) == (6, 4)


def test_parse_example_dtypes_and_shapes(vocab):
  examples, _ = features.featurize([GOOD], vocab, CONFIG, training=True)
  parsed = features.parse_example(
    tf.constant(examples[0].SerializeToString()), 3
  )
  expected = {
    "id": (tf.string, []),
    "question_ids": (tf.int32, [6]),
    "passage_ids": (tf.int32, [4]),
    "question_chars": (tf.int32, [6, 3]),
    "passage_chars": (tf.int32, [4, 3]),
    "question_em": (tf.float32, [6, 2]),
    "passage_em": (tf.float32, [4, 2]),
    "question_len": (tf.int32, []),
    "passage_len": (tf.int32, []),
    "passage_char_starts": (tf.int32, [4]),
    "passage_char_ends": (tf.int32, [4]),
    "start": (tf.int32, []),
    "end": (tf.int32, []),
  }
  assert {k: (v.dtype, v.shape.as_list()) for k, v in parsed.items()} == (
    expected
  )


def test_exact_match_flags_use_the_truncated_tokens(vocab):
  # "e" is cut from the 4-token passage, so it matches nothing; "a" stays.
  record = _record("cut", "a b c d e", "e A b ?", [])
  examples, _ = features.featurize([record], vocab, CONFIG, training=False)
  parsed = _parse(examples[0])
  np.testing.assert_array_equal(
    parsed["question_em"], [[0, 0], [0, 1], [1, 1], [0, 0]]
  )
  np.testing.assert_array_equal(
    parsed["passage_em"], [[0, 1], [1, 1], [0, 0], [0, 0]]
  )


def test_parse_example_without_question_em_names_the_cause(vocab):
  examples, _ = features.featurize([GOOD], vocab, CONFIG, training=True)
  example = examples[0]
  del example.features.feature["question_em"]
  with pytest.raises(tf.errors.InvalidArgumentError, match="question_em"):
    _parse(example)


def test_parse_example_wrong_max_word_len_fails(vocab):
  examples, _ = features.featurize([GOOD], vocab, CONFIG, training=True)
  with pytest.raises(tf.errors.InvalidArgumentError, match="max_word_len"):
    _parse(examples[0], max_word_len=5)


def test_parse_example_extra_keys_decoded_with_lengths(vocab):
  examples, _ = features.featurize([GOOD], vocab, CONFIG, training=True)
  example = examples[0]
  example.features.feature["extra"].float_list.value.extend(range(24))
  parsed = features.parse_example(
    tf.constant(example.SerializeToString()),
    3,
    extra_spec={"extra": tf.io.RaggedFeature(tf.float32)},
    extra_parse=lambda v: {
      "extra_grid": tf.reshape(
        v["extra"], [v["passage_len"], v["question_len"]]
      )
    },
  )
  assert parsed["extra_grid"].shape == (4, 6)
  assert "extra" not in parsed


def test_parse_example_extra_key_clash_is_error(vocab):
  with pytest.raises(ValueError, match="start"):
    features.parse_example(
      tf.constant(b""), 3, extra_spec={"start": tf.io.RaggedFeature(tf.int64)}
    )


SKIP_RECORDS = [
  GOOD,
  _record("none", "The cat sat.", "Who?", []),
  _record("mismatch", "The cat sat.", "Who?", [Answer("dog", 4)]),
  _record("outside", "a b c d e f", "Who?", [Answer("f", 10)]),
  _record("space", "a b", "Who?", [Answer(" ", 1)]),
  _record("noq", "The cat sat.", "  ", [Answer("cat", 4)]),
  _record("nop", "   ", "Who?", [Answer(" ", 0)]),
]


def test_featurize_training_skips_and_counts_by_reason(vocab):
  examples, counts = features.featurize(
    SKIP_RECORDS, vocab, CONFIG, training=True
  )
  assert [e.features.feature["id"].bytes_list.value[0] for e in examples] == [
    b"good"
  ]
  assert counts == {
    "empty_question": 1,
    "empty_passage": 1,
    "no_answer": 1,
    "answer_text_mismatch": 1,
    "answer_not_aligned": 1,
    "answer_outside_passage": 1,
  }


def test_featurize_eval_keeps_unlabelable_records_at_zero(vocab):
  examples, counts = features.featurize(
    SKIP_RECORDS, vocab, CONFIG, training=False
  )
  parsed = {p["id"]: p for p in map(_parse, examples)}
  assert sorted(parsed) == [b"good", b"mismatch", b"none", b"outside", b"space"]
  assert (parsed[b"good"]["start"], parsed[b"good"]["end"]) == (1, 1)
  for rid in (b"none", b"mismatch", b"outside", b"space"):
    assert (parsed[rid]["start"], parsed[rid]["end"]) == (0, 0)
  assert counts["empty_question"] == 1 and counts["empty_passage"] == 1
  assert counts["no_answer"] == 0


def test_featurize_truncates_question_and_passage(vocab):
  record = _record(
    "long", "a b c d e f g", "q1 q2 q3 q4 q5 q6 q7 q8", [Answer("b", 2)]
  )
  examples, _ = features.featurize([record], vocab, CONFIG, training=True)
  parsed = _parse(examples[0])
  assert parsed["question_len"] == CONFIG.max_question_len
  assert parsed["passage_len"] == CONFIG.max_passage_len
  assert (parsed["start"], parsed["end"]) == (1, 1)


TOKENS = [Token("foo", 0, 3), Token("-", 3, 4), Token("bar", 4, 7)]


@pytest.mark.parametrize(
  "char_span, expected",
  [
    ((4, 7), (2, 2)),
    ((1, 2), (0, 0)),
    ((0, 7), (0, 2)),
    ((2, 5), (0, 2)),
    ((7, 9), None),
  ],
)
def test_answer_token_span_overlapping_tokens(char_span, expected):
  assert features.answer_token_span(TOKENS, *char_span) == expected


def test_answer_token_span_answer_starting_on_space():
  tokens = [Token("foo", 0, 3), Token("bar", 4, 7)]
  assert features.answer_token_span(tokens, 3, 7) == (1, 1)


def test_answer_token_span_non_ascii_offsets(vocab):
  context = "Le café 😀 coûte"
  record = _record("x", context, "Who?", [Answer("coûte", 10)])
  examples, counts = features.featurize([record], vocab, CONFIG, training=True)
  assert sum(counts.values()) == 0
  parsed = _parse(examples[0])
  assert (parsed["start"], parsed["end"]) == (3, 3)
  start, end = parsed["passage_char_starts"][3], parsed["passage_char_ends"][3]
  assert context[start:end] == "coûte"


def test_write_split_writes_shards_and_stats(tmp_path, vocab):
  stats = features.write_split(
    SKIP_RECORDS, vocab, CONFIG, str(tmp_path), "train", training=True
  )
  names = sorted(p.name for p in tmp_path.iterdir())
  assert names == [
    "train-00000-of-00002.tfrecord.gz",
    "train-00001-of-00002.tfrecord.gz",
    "train_stats.json",
  ]
  assert json.loads((tmp_path / "train_stats.json").read_text()) == stats
  assert stats["num_records"] == 7
  assert stats["num_examples"] == 1
  assert stats["num_skipped"] == 6
  assert stats["skipped"]["answer_outside_passage"] == 1
  files = tf.io.gfile.glob(features.file_pattern(str(tmp_path), "train"))
  serialized = list(tf.data.TFRecordDataset(files, compression_type="GZIP"))
  assert len(serialized) == 1
  assert _parse_serialized(serialized[0])["id"] == b"good"


def _parse_serialized(serialized):
  parsed = features.parse_example(serialized, CONFIG.max_word_len)
  return {k: v.numpy() for k, v in parsed.items()}


SERVING_RECORDS = [
  GOOD,
  _record("caps", "THE Cat, sat... é 中文😀", "the cat?", []),
  _record("long", "a b c d e f g", "q1 q2 q3 q4 q5 q6 q7 q8", []),
  _record("cut", "a b c d e", "e A b ?", []),
]
BATCH_KEYS = (
  "question_ids",
  "passage_ids",
  "question_chars",
  "passage_chars",
  "question_em",
  "passage_em",
  "passage_char_starts",
  "passage_char_ends",
)


def _assert_matches_featurize(batch, records, vocab):
  examples, _ = features.featurize(records, vocab, CONFIG, training=False)
  for row, example in enumerate(examples):
    expected = _parse(example)
    lq, lp = expected["question_len"], expected["passage_len"]
    assert batch["question_len"][row] == lq
    assert batch["passage_len"][row] == lp
    for key in BATCH_KEYS:
      length = lq if key.startswith("question") else lp
      np.testing.assert_array_equal(
        batch[key][row, :length], expected[key], err_msg=key
      )
      assert not batch[key][row, length:].any(), key


def test_text_featurizer_equals_featurize(vocab):
  featurizer = features.TextFeaturizer(vocab, CONFIG)
  batch = featurizer(
    tf.constant([r.question for r in SERVING_RECORDS]),
    tf.constant([r.context for r in SERVING_RECORDS]),
  )
  batch = {k: v.numpy() for k, v in batch.items()}
  assert batch["question_chars"].shape[2] == CONFIG.max_word_len
  assert batch["passage_em"].dtype == np.float32
  assert batch["question_em"].dtype == np.float32
  assert batch["question_em"].shape == (*batch["question_ids"].shape, 2)
  _assert_matches_featurize(batch, SERVING_RECORDS, vocab)


def test_text_featurizer_saved_model_round_trip(tmp_path, vocab):
  module = tf.Module()
  module.featurizer = features.TextFeaturizer(vocab, CONFIG)
  spec = tf.TensorSpec([None], tf.string)
  module.serve = tf.function(
    lambda q, c: module.featurizer(q, c), input_signature=[spec, spec]
  )
  tf.saved_model.save(module, str(tmp_path))
  loaded = tf.saved_model.load(str(tmp_path))
  batch = loaded.serve(
    tf.constant([r.question for r in SERVING_RECORDS]),
    tf.constant([r.context for r in SERVING_RECORDS]),
  )
  batch = {k: v.numpy() for k, v in batch.items()}
  _assert_matches_featurize(batch, SERVING_RECORDS, vocab)
