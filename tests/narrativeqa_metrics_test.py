"""Tests for a2d_tf.metrics.narrativeqa against hand-computed values."""

import math

import pytest

from a2d_tf.data.records import DataError
from a2d_tf.metrics import narrativeqa

# COCO adds these to every n-gram precision's numerator and denominator.
_REL = 1e-6


def test_normalize_lowercases_and_joins_tokens():
  assert narrativeqa.normalize("  The CAT\tsat .\n") == "the cat sat ."


def test_exact_answers_score_100():
  refs = {"a": ["the cat sat on the mat", "x"], "b": ["a b c d e", "q"]}
  preds = {"a": "The cat sat on the mat", "b": "a  b c d e"}
  assert narrativeqa.evaluate_narrativeqa(refs, preds) == {
    "bleu_1": pytest.approx(100.0, rel=_REL),
    "bleu_4": pytest.approx(100.0, rel=_REL),
    "rouge_l": pytest.approx(100.0),
  }


def test_bleu_clipped_counts_and_brevity_penalty_over_the_corpus():
  refs = {
    "q1": ["the cat sat on the mat", "a cat"],
    "q2": ["he sat on the mat", "sat on it all day"],
  }
  preds = {"q1": "the cat the cat", "q2": "sat on"}
  # q1: 4 words; closest reference length: 6 and 2 are both 2 away, the
  # shorter (2) wins. Unigrams: "the" x2 (ref max 2) + "cat" x2 (ref max 1)
  # = 3 of 4; bigrams: "the cat" x2 (max 1), "cat the" x1 (0) = 1 of 3.
  # q2: 2 words, reference length 5; unigrams 2 of 2, bigrams 1 of 1.
  # Corpus: c = 6 < r = 7, so BP = exp(1 - 7/6); p1 = 5/6.
  result = narrativeqa.evaluate_narrativeqa(refs, preds)
  bp = math.exp(1 - 7 / 6)
  assert result["bleu_1"] == pytest.approx(100 * 5 / 6 * bp, rel=_REL)
  # No trigram matches: BLEU-4 is ~0 (COCO's 1e-15 keeps it positive).
  assert 0 < result["bleu_4"] < 1e-4


def test_bleu_4_geometric_mean_with_brevity_penalty():
  refs = {"q": ["a b c d x y z", "q"]}
  # Closest reference length to 5 words: 7 (2 away) rather than 1 (4 away).
  # p1..p4 = 4/5, 3/4, 2/3, 1/2; BP = exp(1 - 7/5).
  result = narrativeqa.evaluate_narrativeqa(refs, {"q": "a b c d e"})
  bp = math.exp(1 - 7 / 5)
  assert result["bleu_1"] == pytest.approx(100 * 0.8 * bp, rel=_REL)
  geometric = (4 / 5 * 3 / 4 * 2 / 3 * 1 / 2) ** 0.25
  assert result["bleu_4"] == pytest.approx(100 * geometric * bp, rel=_REL)


def test_bleu_4_of_short_answer_is_cocos_smoothed_value():
  # No 4-gram exists: COCO's p4 = (0 + 1e-15) / (0 + 1e-9) = 1e-6, so a
  # perfect 3-word answer gets BLEU-4 = (1e-6) ** (1/4) ~ 3.16%.
  result = narrativeqa.evaluate_narrativeqa(
    {"q": ["the cat sat"]}, {"q": "the cat sat"}
  )
  assert result["bleu_4"] == pytest.approx(100 * 1e-6**0.25, rel=_REL)


def test_rouge_l_maximises_precision_and_recall_separately():
  refs = {"q1": ["a b", "a b c d e f g h"], "q2": ["a b c d"]}
  preds = {"q1": "a b c d", "q2": "a x b"}
  details = narrativeqa.evaluate_with_details(refs, preds)
  # q1: P = max(2/4, 4/4) = 1 and R = max(2/2, 4/8) = 1, from different
  # references, give ROUGE-L 1 (the best single reference gives 2/3).
  assert details.rouge_l_by_id["q1"] == pytest.approx(1.0)
  # q2: LCS 2, P = 2/3, R = 1/2, beta = 1.2.
  q2 = (1 + 1.44) * (2 / 3) * (1 / 2) / (1 / 2 + 1.44 * (2 / 3))
  assert details.rouge_l_by_id["q2"] == pytest.approx(q2)
  assert q2 == pytest.approx(0.557078, abs=1e-6)
  assert details.rouge_l == pytest.approx(100 * (1 + q2) / 2)


def test_missing_prediction_scores_zero_and_is_listed():
  refs = {"q1": ["the cat"], "q2": ["a dog"]}
  details = narrativeqa.evaluate_with_details(
    refs, {"q1": "the cat", "other": "x"}
  )
  assert details.missing_ids == ("q2",)
  assert details.rouge_l_by_id == {"q1": 1.0, "q2": 0.0}
  assert details.rouge_l == pytest.approx(50.0)
  # The empty answer adds its reference length: c = 2, r = 4.
  assert details.bleu_1 == pytest.approx(100 * math.exp(1 - 4 / 2), rel=_REL)


def test_evaluation_prints_nothing(capsys):
  narrativeqa.evaluate_narrativeqa({"q": ["a b"]}, {"q": "a"})
  assert capsys.readouterr().out == ""


@pytest.mark.parametrize(
  "references, message",
  [
    ({}, "no questions"),
    ({"q": []}, "record q, field 'references'"),
    ({"q": "a b"}, "non-empty list"),
    ({"q": ["a", 3]}, "must be a string"),
  ],
)
def test_bad_references_raise_data_error(references, message):
  with pytest.raises(DataError, match=message):
    narrativeqa.evaluate_narrativeqa(references, {"q": "a"})


def test_non_string_prediction_raises_type_error():
  with pytest.raises(TypeError, match="'q'"):
    narrativeqa.evaluate_narrativeqa({"q": ["a"]}, {"q": 3})
