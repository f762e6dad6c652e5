"""Tests for a2d_tf.metrics.adversarial (worst-case Adversarial SQuAD)."""

import pytest

from a2d_tf.metrics import adversarial

_ORIG1 = "56be4db0acb8001400a502ec"
_ORIG2 = "56be4db0acb8001400a502ed"


def _dataset(qas):
  """Paragraphs of one question each, from (id, [answers]) pairs."""
  return [
    {
      "title": "T",
      "paragraphs": [
        {
          "context": "c",
          "qas": [
            {
              "id": qid,
              "question": "q?",
              "answers": [{"text": t, "answer_start": 0} for t in answers],
            }
          ],
        }
        for qid, answers in qas
      ],
    }
  ]


@pytest.mark.parametrize(
  "question_id, known, expected",
  [
    (_ORIG1 + "-high-conf-turk0", {_ORIG1}, _ORIG1),
    (_ORIG1 + "-addsent", {_ORIG1}, _ORIG1),
    (_ORIG1, {_ORIG1}, _ORIG1),
    # Prefix not in the dataset: the id is its own original.
    ("deadbeef-addsent", {_ORIG1}, "deadbeef-addsent"),
    # Ids that contain "-" themselves still find their original.
    ("q-1-addsent", {"q-1"}, "q-1"),
  ],
)
def test_original_id_strips_known_prefix(question_id, known, expected):
  assert adversarial.original_id(question_id, known) == expected


def test_group_by_original_puts_original_first():
  ids = ["a-turk0", "a", "b", "a-turk1", "c-x"]
  assert adversarial.group_by_original(ids) == {
    "a": ["a", "a-turk0", "a-turk1"],
    "b": ["b"],
    "c-x": ["c-x"],
  }


def test_evaluate_adversarial_takes_worst_case_per_original():
  dataset = _dataset(
    [
      (_ORIG1, ["Denver Broncos"]),
      (_ORIG2, ["Santa Clara"]),
      (_ORIG1 + "-high-conf-turk0", ["Denver Broncos"]),
      (_ORIG1 + "-addsent", ["Denver Broncos"]),
      (_ORIG2 + "-high-conf-turk0", ["Santa Clara"]),
      ("lonely-addsent", ["x y"]),
    ]
  )
  predictions = {
    _ORIG1: "Denver Broncos",  # EM 1, F1 1
    _ORIG1 + "-high-conf-turk0": "Broncos",  # EM 0, F1 2/3
    _ORIG1 + "-addsent": "the Denver Broncos",  # EM 1, F1 1
    _ORIG2: "Santa Clara, California",  # EM 0, F1 0.8
    # _ORIG2 + "-high-conf-turk0" missing: 0 / 0
    "lonely-addsent": "x y",  # own group: 1 / 1
  }
  details = adversarial.evaluate_adversarial_with_details(dataset, predictions)
  assert details.num_original == 3
  assert details.num_variants == 3
  assert details.exact_match_by_original == {
    _ORIG1: 0.0,
    _ORIG2: 0.0,
    "lonely-addsent": 1.0,
  }
  assert details.f1_by_original[_ORIG1] == pytest.approx(2 / 3)
  assert details.f1_by_original[_ORIG2] == 0.0
  assert details.missing_ids == (_ORIG2 + "-high-conf-turk0",)
  assert details.exact_match == pytest.approx(100 / 3)
  assert details.f1 == pytest.approx(100 * (2 / 3 + 0 + 1) / 3)
  assert adversarial.evaluate_adversarial(dataset, predictions) == {
    "exact_match": pytest.approx(100 / 3),
    "f1": pytest.approx(100 * (5 / 3) / 3),
    "num_original": 3,
    "num_variants": 3,
  }


def test_evaluate_adversarial_without_variants_equals_squad():
  dataset = _dataset([("a", ["x"]), ("b", ["y z"])])
  result = adversarial.evaluate_adversarial(dataset, {"a": "x", "b": "z"})
  assert result["num_variants"] == 0
  assert result["exact_match"] == pytest.approx(50.0)
  assert result["f1"] == pytest.approx(100 * (1 + 2 / 3) / 2)
