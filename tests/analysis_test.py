"""Tests for a2d_tf.analysis: F1 by question type and the case study."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

from a2d_tf import analysis
from a2d_tf import config as config_lib
from a2d_tf.data import dataset as dataset_lib
from a2d_tf.data import features
from a2d_tf.data import records as records_lib
from a2d_tf.data import vocab as vocab_lib
from a2d_tf.models import reader


def _squad(questions):
  """SQuAD `data` with one paragraph per (id, question, gold answers)."""
  return [
    {
      "title": "t",
      "paragraphs": [
        {
          "context": "c",
          "qas": [
            {
              "id": qid,
              "question": question,
              "answers": [{"text": a, "answer_start": 0} for a in answers],
            }
            for qid, question, answers in questions
          ],
        }
      ],
    }
  ]


_QUESTIONS = (
  ("q1", "What is above us?", ["blue sky"]),
  ("q2", "What colour is the wall?", ["red"]),
  ("q3", "Who wrote it?", ["Ann Lee"]),
  ("q4", "In which year did it open?", ["1901"]),
  ("q5", "Name the river.", ["the Nile"]),
  ("q6", "Whose book is it?", ["Bob"]),
)
# Per-question F1 (official SQuAD normalization), worked out by hand:
# single: q1 "blue" vs "blue sky" = 2*(1*0.5)/1.5 = 2/3; q2 1; q3 missing 0;
# q4 1; q5 "Nile" vs "the Nile" = 1 (articles dropped); q6 1.
# student: q1 1; q2 "green" 0; q3 1; q4 1; q5 "river Nile" vs "Nile":
# precision 1/2, recall 1 = 2/3; q6 1.
_PREDICTIONS = {
  "single": {
    "q1": "blue",
    "q2": "red",
    "q4": "1901",
    "q5": "Nile",
    "q6": "Bob",
  },
  "student": {
    "q1": "blue sky",
    "q2": "green",
    "q3": "Ann Lee",
    "q4": "1901",
    "q5": "river Nile",
    "q6": "Bob",
  },
}


def test_f1_by_question_type_matches_hand_computed_values():
  table = analysis.f1_by_question_type(_squad(_QUESTIONS), _PREDICTIONS)
  assert table["systems"] == ["single", "student"]
  by_type = {entry["type"]: entry for entry in table["types"]}
  assert list(by_type) == [
    "what",
    "who",
    "which",
    "when",
    "where",
    "why",
    "how",
    "other",
  ]
  expected = {
    "what": (2, (2 / 3 + 1) / 2, (1 + 0) / 2),
    "who": (2, (0 + 1) / 2, 1.0),
    "which": (1, 1.0, 1.0),
    "other": (1, 1.0, 2 / 3),
  }
  for name, (count, single, student) in expected.items():
    assert by_type[name]["count"] == count, name
    assert by_type[name]["f1"]["single"] == pytest.approx(100 * single)
    assert by_type[name]["f1"]["student"] == pytest.approx(100 * student)
  for name in ("when", "where", "why", "how"):
    assert by_type[name]["count"] == 0
    assert by_type[name]["f1"] == {"single": None, "student": None}
  assert table["overall"]["single"] == pytest.approx(100 * (2 / 3 + 4) / 6)
  assert table["overall"]["student"] == pytest.approx(100 * (2 / 3 + 4) / 6)


def test_render_question_types_markdown_rows_and_empty_types():
  table = analysis.f1_by_question_type(_squad(_QUESTIONS), _PREDICTIONS)
  text = analysis.render_question_types_markdown(table)
  assert "| type | questions | single teacher F1 | A2D student F1 |" in text
  assert "| what | 2 | 83.3 | 50.0 |" in text
  assert "| why | 0 | – | – |" in text
  assert "| all | 6 | 77.8 | 77.8 |" in text


def test_choose_case_id_first_exact_answer_else_best_f1():
  data = _squad(_QUESTIONS)
  assert analysis.choose_case_id(data, _PREDICTIONS["student"]) == "q1"
  assert analysis.choose_case_id(data, _PREDICTIONS["single"]) == "q2"
  partial = {"q1": "blue", "q5": "river Nile", "q2": "wall"}
  assert analysis.choose_case_id(data, partial) == "q1"


_CONTEXT = (
  "The Nile flows north through Egypt. Ann Lee wrote a book about the "
  "river in 1901. The Amazon is longer."
)
_CASES = (
  ("c1", "Who wrote a book about the river?", "Ann Lee"),
  ("c2", "When did Ann Lee write the book?", "1901"),
  ("c3", "Which river flows north?", "The Nile"),
)


@pytest.fixture(scope="module")
def fixture(tmp_path_factory):
  """Dev features of three records, two random teachers and a student."""
  tmp = tmp_path_factory.mktemp("case")
  config = config_lib.get_config("tiny")
  records = [
    records_lib.Record(
      id=qid,
      title="t",
      context=_CONTEXT,
      question=question,
      answers=(records_lib.Answer(answer, _CONTEXT.index(answer)),),
    )
    for qid, question, answer in _CASES
  ]
  vocab = vocab_lib.build_vocabulary(records, 1, 1, lowercase=True)
  features.write_split(
    records, vocab, config.data, str(tmp), "dev", training=False
  )
  dataset = dataset_lib.make_dataset(
    features.file_pattern(str(tmp), "dev"),
    config.data,
    2,
    training=False,
    with_metadata=True,
  )
  models = []
  for seed in range(3):
    keras.utils.set_random_seed(seed)
    models.append(
      reader.build_reader(
        config.model, vocab.num_words, vocab.num_chars, use_cudnn=False
      )
    )
  return config, {r.id: r for r in records}, dataset, models


def test_find_example_cuts_row_to_its_lengths(fixture):
  _, records, dataset, _ = fixture
  example = analysis.find_example(dataset, "c2")
  assert example["id"].numpy().tolist() == [b"c2"]
  lp = int(example["passage_len"][0])
  lq = int(example["question_len"][0])
  assert example["passage_ids"].shape == (1, lp)
  assert example["passage_chars"].shape[:2] == (1, lp)
  assert example["question_ids"].shape == (1, lq)
  assert lq == len(records["c2"].question.rstrip("?").split()) + 1


def test_find_example_unknown_id_names_it(fixture):
  _, _, dataset, _ = fixture
  with pytest.raises(records_lib.DataError, match="nope"):
    analysis.find_example(dataset, "nope")


def test_case_study_means_teachers_and_aligns_tokens(fixture):
  config, records, dataset, models = fixture
  teachers, student = models[:2], models[2]
  example = analysis.find_example(dataset, "c1")
  case = analysis.case_study(
    teachers, student, example, records["c1"], config.model.max_answer_len
  )
  lp = int(example["passage_len"][0])
  lq = int(example["question_len"][0])
  hops = config.model.aligner_hops
  assert len(case.passage_tokens) == lp
  assert case.question_tokens == (
    "Who",
    "wrote",
    "a",
    "book",
    "about",
    "the",
    "river",
    "?",
  )
  assert case.teacher_attention.shape == (hops, lp, lq)
  assert case.student_attention.shape == (hops, lp, lq)
  inputs = reader.model_inputs(example)
  direct = [m(inputs, training=False) for m in teachers]
  mean = np.mean([d["attention"][0].numpy() for d in direct], axis=0)
  np.testing.assert_allclose(case.teacher_attention, mean, atol=1e-6)
  np.testing.assert_allclose(
    case.student_attention,
    student(inputs, training=False)["attention"][0].numpy(),
    atol=1e-6,
  )
  np.testing.assert_allclose(case.teacher_attention.sum(-1), 1.0, atol=1e-5)
  for probs in (
    case.teacher_start_probs,
    case.teacher_end_probs,
    case.student_start_probs,
    case.student_end_probs,
  ):
    assert probs.shape == (lp,)
    assert probs.sum() == pytest.approx(1.0, abs=1e-5)
  first, last = case.gold_span
  assert case.passage_tokens[first : last + 1] == ("Ann", "Lee")
  assert case.num_teachers == 2
  for answer, (a, b) in (
    (case.teacher_answer, case.teacher_span),
    (case.student_answer, case.student_span),
  ):
    assert 0 <= a <= b < lp
    assert answer and answer in _CONTEXT
  assert json.loads(json.dumps(case.to_json()))["id"] == "c1"


def test_case_study_needs_a_teacher(fixture):
  config, records, dataset, models = fixture
  example = analysis.find_example(dataset, "c1")
  with pytest.raises(ValueError, match="teacher"):
    analysis.case_study([], models[0], example, records["c1"], 5)
