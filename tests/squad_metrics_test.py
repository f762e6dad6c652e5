"""Tests for a2d_tf.metrics.squad (official SQuAD v1.1 semantics)."""

import re

import pytest

from a2d_tf.data.records import DataError
from a2d_tf.metrics import squad


def _dataset(*qas):
  """A one-article, one-paragraph dataset from (id, [answers]) pairs."""
  return [
    {
      "title": "T",
      "paragraphs": [
        {
          "context": "c",
          "qas": [
            {
              "id": qid,
              "question": f"question {qid}?",
              "answers": [{"text": t, "answer_start": 0} for t in answers],
            }
            for qid, answers in qas
          ],
        }
      ],
    }
  ]


@pytest.mark.parametrize(
  "text, expected",
  [
    ("The Quick, Brown Fox!", "quick brown fox"),
    ("an apple a day", "apple day"),
    ("There and Then", "there and then"),
    ("A.B.C.", "abc"),
    # Punctuation goes first, so a hyphenated article survives joined.
    ("the-end", "theend"),
    ("  Denver\tBroncos \n", "denver broncos"),
    # Only ASCII punctuation is removed; Unicode letters bound words.
    ("Théâtre de la Ville", "théâtre de la ville"),
    ("\u201cCafé\u201d", "\u201ccafé\u201d"),
    ("ÀN Über", "àn über"),
    ("", ""),
  ],
)
def test_normalize_answer_matches_official(text, expected):
  assert squad.normalize_answer(text) == expected


def test_exact_match_ignores_case_articles_and_punctuation():
  assert squad.exact_match_score("The Denver Broncos.", "denver broncos")
  assert not squad.exact_match_score("Denver", "Denver Broncos")


def test_exact_match_empty_normalization_matches_empty_prediction():
  assert squad.exact_match_score("", "The")


def test_f1_score_partial_overlap_hand_computed():
  # Tokens [cat, sat] vs [cat, sat, on, mat]: P = 1, R = 1/2, F1 = 2/3.
  assert squad.f1_score("the cat sat", "A cat sat on the mat") == (
    pytest.approx(2 / 3)
  )


def test_f1_score_counts_repeated_tokens_once_each():
  # Common multiset {x, y}: P = R = 2/3.
  assert squad.f1_score("x x y", "x y y") == pytest.approx(2 / 3)


def test_f1_score_no_overlap_or_empty_is_zero():
  assert squad.f1_score("cat", "dog") == 0
  assert squad.f1_score("", "the") == 0
  assert squad.f1_score("the", "") == 0


def test_metric_max_over_ground_truths_takes_best_gold():
  gold = ["Broncos team", "Denver Broncos", "the Denver Broncos team"]
  assert squad.metric_max_over_ground_truths(
    squad.exact_match_score, "denver broncos", gold
  )
  assert squad.metric_max_over_ground_truths(
    squad.f1_score, "Broncos", gold
  ) == pytest.approx(2 / 3)


def test_evaluate_missing_prediction_scores_zero_and_is_listed():
  dataset = _dataset(
    ("q1", ["Denver Broncos", "Broncos"]),
    ("q2", ["cat sat on the mat"]),
    ("q3", ["Paris"]),
  )
  predictions = {"q1": "the broncos", "q2": "cat sat", "extra": "ignored"}
  details = squad.evaluate_with_details(dataset, predictions)
  # q2: [cat, sat] vs [cat, sat, on, mat] -> F1 2/3.
  assert details.exact_match == pytest.approx(100 / 3)
  assert details.f1 == pytest.approx(100 * (1 + 2 / 3) / 3)
  assert details.total == 3
  assert details.missing_ids == ("q3",)
  assert details.exact_match_by_id == {"q1": 1.0, "q2": 0.0, "q3": 0.0}
  assert details.f1_by_id["q2"] == pytest.approx(2 / 3)
  assert details.f1_by_id["q3"] == 0.0
  assert squad.evaluate(dataset, predictions) == details.summary()


def test_evaluate_all_correct_is_hundred():
  dataset = _dataset(("a", ["x"]), ("b", ["Über-Café"]))
  result = squad.evaluate(dataset, {"a": "X.", "b": "übercafé"})
  assert result == {"exact_match": 100.0, "f1": 100.0}


def test_iter_questions_reads_question_text_and_answers():
  (question,) = squad.iter_questions(_dataset(("q", ["a1", "a2"])))
  assert question == squad.Question("q", "question q?", ("a1", "a2"))


@pytest.mark.parametrize(
  "dataset, message",
  [
    ({"paragraphs": []}, "list of articles"),
    ([{"title": "no paragraphs"}], "data[0]"),
    ([{"paragraphs": [{"qas": [{"answers": []}]}]}], "'id'"),
    ([{"paragraphs": [{"qas": [{"id": "q"}]}]}], "'answers'"),
    ([{"paragraphs": [{"qas": [{"id": "q", "answers": []}]}]}], "no gold"),
    (
      [{"paragraphs": [{"qas": [{"id": "q", "answers": [{"t": 1}]}]}]}],
      "answers[0]",
    ),
    ([], "no questions"),
  ],
)
def test_evaluate_malformed_dataset_raises_data_error(dataset, message):
  with pytest.raises(DataError, match=re.escape(message)):
    squad.evaluate(dataset, {"q": "x"})


def test_evaluate_non_string_prediction_raises_type_error():
  with pytest.raises(TypeError, match="'q'"):
    squad.evaluate(_dataset(("q", ["x"])), {"q": ["x"]})
