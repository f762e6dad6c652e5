"""Tests of the knowledge diagnostics."""

import json
import math

import numpy as np
import pytest
import tensorflow as tf

from a2d_tf import diagnostics
from a2d_tf.data import knowledge as knowledge_lib
from a2d_tf.data.records import DataError


def test_sharpness_of_a_hand_made_row():
  row = np.array([0.5, 0.25, 0.25, 0.0])
  got = diagnostics.sharpness(row, gold=1)
  assert got["max_prob"] == pytest.approx(0.5)
  entropy = -(0.5 * math.log(0.5) + 2 * 0.25 * math.log(0.25))
  assert got["entropy"] == pytest.approx(entropy)
  assert got["gold_prob"] == pytest.approx(0.25)
  assert "gold_prob" not in diagnostics.sharpness(row, gold=-1)


def test_sharpness_refuses_an_empty_row():
  with pytest.raises(ValueError, match="non-empty"):
    diagnostics.sharpness(np.array([]))


def test_accumulated_scores_and_sharpness():
  acc = diagnostics.KnowledgeDiagnostics(num_teachers=2)
  one_hot = np.array([0.0, 1.0, 0.0])
  flat = np.array([1 / 3, 1 / 3, 1 / 3])
  acc.add(["in 1843", "London"], "1843", ["1843"], one_hot, one_hot, 1, 1)
  acc.add(["Ada", "Ada"], "Ada", ["Ada Lovelace"], flat, flat, 0, 2)
  # No gold answer: counts toward sharpness, not toward the scores.
  acc.add(["x", "y"], "x", [], flat, one_hot, None, None)
  result = acc.result()
  assert result["examples"] == 3
  t0, t1 = result["teachers"]
  # "in 1843" vs "1843": EM 0, F1 2/3; "Ada" vs "Ada Lovelace": F1 2/3.
  assert t0["exact_match"] == pytest.approx(0.0)
  assert t0["f1"] == pytest.approx(100 * (2 / 3 + 2 / 3) / 2)
  assert t1["f1"] == pytest.approx(100 * (0 + 2 / 3) / 2)
  assert result["ensemble"]["exact_match"] == pytest.approx(50.0)
  assert result["ensemble"]["f1"] == pytest.approx(100 * (1 + 2 / 3) / 2)
  assert result["mean_argmax_prob"] == pytest.approx(
    (1 + 1 + 3 * (1 / 3) + 1) / 6
  )
  assert result["mean_gold_prob"] == pytest.approx((1 + 1 + 1 / 3 + 1 / 3) / 4)
  assert result["mean_entropy"] == pytest.approx(3 * math.log(3) / 6)


def test_wrong_number_of_teacher_answers_is_refused():
  acc = diagnostics.KnowledgeDiagnostics(num_teachers=3)
  with pytest.raises(ValueError, match="3 teacher answers"):
    acc.add(["a"], "a", ["a"], np.ones(1), np.ones(1))


def test_empty_accumulator_reports_none():
  result = diagnostics.KnowledgeDiagnostics(num_teachers=1).result()
  assert result["examples"] == 0
  assert result["ensemble"]["f1"] is None and result["mean_entropy"] is None


def _example(record_id, starts, ends, gold, soft_start, soft_end, spans, ens):
  example = tf.train.Example()
  feature = example.features.feature
  feature["id"].bytes_list.value.append(record_id.encode())
  feature["passage_char_starts"].int64_list.value.extend(starts)
  feature["passage_char_ends"].int64_list.value.extend(ends)
  feature["start"].int64_list.value.append(gold[0])
  feature["end"].int64_list.value.append(gold[1])
  return knowledge_lib.add_knowledge(
    example,
    np.asarray(soft_start),
    np.asarray(soft_end),
    np.zeros((1, len(soft_start), 2)),
    (-1, -1),
    teacher_spans=spans,
    ensemble_span=ens,
  )


def _write_knowledge(directory, examples, gold):
  path = knowledge_lib.knowledge_pattern(str(directory)).replace(
    "?????-of-?????", "00000-of-00001"
  )
  with tf.io.TFRecordWriter(path, options="GZIP") as writer:
    for example in examples:
      writer.write(example.SerializeToString())
  knowledge_lib.write_gold_file(gold, str(directory / knowledge_lib.GOLD_FILE))


def test_knowledge_diagnostics_of_a_hand_made_file(tmp_path):
  # "Ada wrote in 1843": tokens Ada(0-3) wrote(4-9) in(10-12) 1843(13-17).
  context = "Ada wrote in 1843"
  starts, ends = [0, 4, 10, 13], [3, 9, 12, 17]
  examples = [
    # Teacher 0 says "1843", teacher 1 "in 1843", ensemble "1843".
    _example(
      "q1",
      starts,
      ends,
      (3, 3),
      [0.0, 0.0, 0.5, 0.5],
      [0.0, 0.0, 0.0, 1.0],
      [(3, 3), (2, 3)],
      (3, 3),
    ),
    # Both teachers and the ensemble say "Ada" for the gold "wrote".
    _example(
      "q2",
      starts,
      ends,
      (1, 1),
      [0.25, 0.25, 0.25, 0.25],
      [1.0, 0.0, 0.0, 0.0],
      [(0, 0), (0, 0)],
      (0, 0),
    ),
  ]
  gold = {
    "q1": knowledge_lib.GoldAnswers(context, ("1843",)),
    "q2": knowledge_lib.GoldAnswers(context, ("wrote",)),
  }
  _write_knowledge(tmp_path, examples, gold)
  result = diagnostics.write_diagnostics(str(tmp_path))
  assert result["examples"] == 2
  t0, t1 = result["teachers"]
  assert t0 == {"exact_match": 50.0, "f1": 50.0}
  assert t1["exact_match"] == 0.0
  assert t1["f1"] == pytest.approx(100 * (2 / 3) / 2)
  assert result["ensemble"] == {"exact_match": 50.0, "f1": 50.0}
  assert result["mean_argmax_prob"] == pytest.approx((0.5 + 1 + 0.25 + 1) / 4)
  assert result["mean_gold_prob"] == pytest.approx((0.5 + 1 + 0.25 + 0) / 4)
  entropy = math.log(2) + math.log(4)  # q1 start, q2 start; ends one-hot
  assert result["mean_entropy"] == pytest.approx(entropy / 4, rel=1e-3)
  with open(tmp_path / diagnostics.DIAGNOSTICS_FILE) as f:
    assert json.load(f) == result


def test_knowledge_without_span_keys_names_the_record(tmp_path):
  example = _example(
    "old", [0], [3], (0, 0), [1.0], [1.0], np.zeros((0, 2), int), (0, 0)
  )
  gold = {"old": knowledge_lib.GoldAnswers("Ada.", ("Ada",))}
  _write_knowledge(tmp_path, [example], gold)
  with pytest.raises(DataError, match="record old.*teacher_spans"):
    diagnostics.knowledge_diagnostics(str(tmp_path))


def test_knowledge_record_without_gold_is_an_error(tmp_path):
  example = _example("q9", [0], [3], (0, 0), [1.0], [1.0], [(0, 0)], (0, 0))
  gold = {"other": knowledge_lib.GoldAnswers("Ada.", ("Ada",))}
  _write_knowledge(tmp_path, [example], gold)
  with pytest.raises(DataError, match="record q9: no gold answers"):
    diagnostics.knowledge_diagnostics(str(tmp_path))


def test_knowledge_without_gold_file_is_an_error(tmp_path):
  with pytest.raises(DataError, match="gold.jsonl.*missing"):
    diagnostics.knowledge_diagnostics(str(tmp_path))
