"""Tests of the evaluation report's scoring and Markdown."""

import json

import pytest

from a2d_tf import report


def _squad(ids):
  return [
    {
      "title": "t",
      "paragraphs": [
        {
          "context": "Ada wrote in 1843 in London.",
          "qas": [
            {
              "id": qid,
              "question": "When?",
              "answers": [{"text": "1843", "answer_start": 13}],
            }
            for qid in ids
          ],
        }
      ],
    }
  ]


def test_score_uses_worst_case_only_for_adversarial_sets():
  plain = report.score(_squad(["q1", "q2"]), {"q1": "1843", "q2": "London"})
  assert plain["worst_case"] is False
  assert plain["exact_match"] == pytest.approx(50.0)
  adversarial = _squad(["q1", "q1-addsent"])
  scored = report.score(adversarial, {"q1": "1843", "q1-addsent": "London"})
  assert scored["worst_case"] is True
  assert scored["exact_match"] == pytest.approx(0.0)


def _report(timing):
  scores = {"exact_match": 50.0, "f1": 60.0, "worst_case": False}
  return {
    "sets": {"dev": {s: scores for s in report.SYSTEMS}},
    "parameters": {"teacher": 1234, "student": 1234},
    "inference": timing,
  }


def test_render_markdown_with_timing_shows_speedup():
  text = report.render_markdown(
    _report(
      {
        "k": 3,
        "examples": 10,
        "repeats": 2,
        "single_s": 1.0,
        "ensemble_s": 3.0,
        "student_s": 1.0,
        "speedup": 3.0,
      }
    )
  )
  assert "| ensemble (K=3) | 50.0 | 60.0 |" in text
  assert "| ensemble (K=3) | 1,234 x 3 | 3.000 | 3.00x |" in text
  assert "| single teacher | 1,234 | 1.000 | 1.00x |" in text
  assert "**3.00x** (10 examples, 2 passes)" in text
  assert "Student architecture: the teachers'" in text


def test_render_markdown_gives_the_speedup_over_one_teacher_and_ensemble():
  result = _report(
    {
      "k": 3,
      "examples": 10,
      "repeats": 2,
      "single_s": 1.0,
      "ensemble_s": 3.0,
      "student_s": 0.5,
      "speedup": 6.0,
      "speedup_over_ensemble": 6.0,
      "speedup_over_single": 2.0,
    }
  )
  result["parameters"] = report.parameters(1234, 400, 3, {"hidden": 8})
  result["config"] = {"model": {"hidden": 16}}
  assert result["parameters"]["ensemble"] == 3702
  assert result["parameters"]["student_to_teacher"] == pytest.approx(400 / 1234)
  text = report.render_markdown(result)
  assert "| single teacher | 1,234 | 1.000 | 2.00x |" in text
  assert "| ensemble (K=3) | 1,234 x 3 | 3.000 | 6.00x |" in text
  assert "| student | 400 | 0.500 | — |" in text
  assert "over one teacher: **2.00x**; over the ensemble: **6.00x**" in text
  assert "with hidden=8 (teachers: 16); 0.32 of a teacher's" in text


def test_render_markdown_without_timing_says_so():
  text = report.render_markdown(_report({"k": 2, "repeats": 0}))
  assert "| ensemble (K=2) | 1,234 x 2 |" in text
  assert "Inference not timed (timing_repeats=0)." in text
  assert "speedup" not in text


def _ids(n):
  return [f"q{i}" for i in range(n)]


def _answers(ids, right):
  """`1843` (right) for the ids in `right`, `London` (F1 0) for the rest."""
  return {qid: "1843" if qid in right else "London" for qid in ids}


def test_score_set_single_is_the_mean_over_teachers_with_its_spread():
  ids = _ids(10)
  data = _squad(ids)
  teachers = [_answers(ids, ids[:4]), _answers(ids, ids[:6])]
  ensemble = _answers(ids, ids[:8])
  student = _answers(ids, ids[:7])
  result = report.score_set(data, teachers, ensemble, student, 200, seed=1)
  single = result["single"]
  assert single["f1"] == pytest.approx(50.0)
  assert single["mean"]["exact_match"] == pytest.approx(50.0)
  assert single["std"]["f1"] == pytest.approx(14.1421, abs=1e-3)
  assert (single["min"]["f1"], single["max"]["f1"]) == (40.0, 60.0)
  assert [t["f1"] for t in result["teachers"]] == [40.0, 60.0]
  # (70 - 50) / (80 - 50)
  assert result["gain_kept"] == pytest.approx(2 / 3)
  assert result["gain_kept_exact_match"] == pytest.approx(2 / 3)
  vs_single = result["intervals"]["student_minus_single"]
  assert vs_single["difference"]["f1"] == pytest.approx(20.0)
  low, high = vs_single["f1"]
  assert low <= 20.0 <= high
  vs_ensemble = result["intervals"]["student_minus_ensemble"]
  assert vs_ensemble["difference"]["exact_match"] == pytest.approx(-10.0)
  assert result["intervals"]["units"] == 10
  assert result["intervals"]["resamples"] == 200


def test_score_set_interval_matches_a_hand_computed_bootstrap():
  import numpy as np

  ids = _ids(6)
  data = _squad(ids)
  teachers = [_answers(ids, ids[:2]), _answers(ids, ids[:4])]
  student = _answers(ids, ids[:5])
  result = report.score_set(data, teachers, student, student, 300, seed=4)
  # Per question: student 1,1,1,1,1,0; single mean 1,1,.5,.5,0,0.
  diffs = np.array([0.0, 0.0, 0.5, 0.5, 1.0, 0.0])
  rng = np.random.default_rng(4)
  means = diffs[rng.integers(0, 6, size=(300, 6))].mean(axis=1)
  expected = 100 * np.quantile(means, [0.025, 0.975])
  got = result["intervals"]["student_minus_single"]["f1"]
  assert got == pytest.approx(list(expected))


def test_score_set_adversarial_units_are_originals():
  ids = ["q1", "q1-addsent", "q2", "q2-addsent"]
  data = _squad(ids)
  right = {"q1", "q1-addsent", "q2"}
  result = report.score_set(
    data, [_answers(ids, right)], _answers(ids, right), _answers(ids, ids), 50
  )
  assert result["student"]["worst_case"] is True
  assert result["intervals"]["units"] == 2
  assert result["single"]["f1"] == pytest.approx(50.0)
  assert result["gain_kept"] is None  # the ensemble gains nothing


def test_gain_kept_is_none_without_an_ensemble_gain():
  assert report.gain_kept(60.0, 50.0, 50.0) is None
  assert report.gain_kept(55.0, 50.0, 60.0) == pytest.approx(0.5)


def test_render_markdown_shows_spread_gain_intervals_and_diagnostics():
  ids = _ids(8)
  data = _squad(ids)
  scored = report.score_set(
    data,
    [_answers(ids, ids[:2]), _answers(ids, ids[:4])],
    _answers(ids, ids[:6]),
    _answers(ids, ids[:3]),
    100,
  )
  diag = {
    "examples": 8,
    "teachers": [{"exact_match": 90.0, "f1": 95.0}] * 2,
    "ensemble": {"exact_match": 92.0, "f1": 96.0},
    "mean_argmax_prob": 0.9,
    "mean_entropy": 0.25,
    "mean_gold_prob": 0.88,
  }
  text = report.render_markdown(
    {
      "sets": {"dev": scored},
      "knowledge_diagnostics": {"train": diag},
      "training": {
        "teacher_epochs": 3,
        "student_epochs": 5,
        "selected_on": "validation",
        "models": {"teacher_0": {"best_epoch": 2, "epochs_run": 3}},
      },
      "parameters": {"teacher": 10, "student": 10},
      "inference": {"k": 2, "repeats": 0},
    }
  )
  assert "| single (mean ± sd of 2) | 37.5 ± 17.7 | 37.5 ± 17.7 |" in text
  assert "| dev | +37.5 | +0.0 | 0.00 |" in text
  assert "dev, student − single mean: EM +0.0" in text
  assert "contains 0: not resolved on this set" in text
  assert "| train | 95.0, 95.0 | 96.0 | 0.900 | 0.25 | 0.880 |" in text
  assert "the student up to 5 (longer than a teacher)" in text
  assert "| teacher_0 | 2 | 3 | n/a |" in text


def _refs(n):
  return {f"n{i}": ["the old man", "an old fisherman"] for i in range(n)}


def _free_text(ids, right):
  """The first reference for the ids in `right`, a wrong answer otherwise."""
  return {q: "the old man" if q in right else "a dog" for q in ids}


def test_score_narrativeqa_set_scores_bleu_rouge_gain_and_intervals():
  from a2d_tf.metrics import narrativeqa as narrativeqa_metrics

  refs = _refs(10)
  ids = list(refs)
  teachers = [_free_text(ids, ids[:4]), _free_text(ids, ids[:6])]
  ensemble = _free_text(ids, ids[:8])
  student = _free_text(ids, ids[:7])
  result = report.score_narrativeqa_set(
    refs, teachers, ensemble, student, 200, seed=1
  )
  assert result["task"] == "narrativeqa"
  assert result["metrics"] == ["bleu_1", "bleu_4", "rouge_l"]
  assert result["primary"] == "rouge_l"
  expected = [
    narrativeqa_metrics.evaluate_narrativeqa(refs, t) for t in teachers
  ]
  for metric in result["metrics"]:
    assert [t[metric] for t in result["teachers"]] == pytest.approx(
      [e[metric] for e in expected]
    )
    assert result["single"][metric] == pytest.approx(
      (expected[0][metric] + expected[1][metric]) / 2
    )
  # A right answer scores ROUGE-L 1, "a dog" 0: 40 and 60, mean 50.
  assert result["single"]["rouge_l"] == pytest.approx(50.0)
  assert result["single"]["std"]["rouge_l"] == pytest.approx(14.1421, abs=1e-3)
  assert result["student"]["rouge_l"] == pytest.approx(70.0)
  assert result["student"]["num_questions"] == 10
  assert result["student"]["num_missing"] == 0
  # (70 - 50) / (80 - 50) on ROUGE-L; BLEU has its own.
  assert result["gain_kept"] == pytest.approx(2 / 3)
  assert result["gain_kept_bleu_1"] is not None
  assert set(result) >= {"gain_kept_bleu_4", "intervals"}
  vs_single = result["intervals"]["student_minus_single"]
  assert set(vs_single["difference"]) == {"rouge_l"}
  assert vs_single["difference"]["rouge_l"] == pytest.approx(20.0)
  low, high = vs_single["rouge_l"]
  assert low <= 20.0 <= high
  assert result["intervals"]["units"] == 10


def test_score_narrativeqa_set_counts_missing_predictions():
  refs = _refs(4)
  partial = {"n0": "the old man"}
  result = report.score_narrativeqa_set(refs, [partial], partial, partial, 20)
  assert result["student"]["num_missing"] == 3
  assert result["student"]["rouge_l"] == pytest.approx(25.0)


def test_render_markdown_mixes_squad_and_narrativeqa_sets():
  ids = _ids(8)
  squad_set = report.score_set(
    _squad(ids),
    [_answers(ids, ids[:2]), _answers(ids, ids[:4])],
    _answers(ids, ids[:6]),
    _answers(ids, ids[:3]),
    100,
  )
  refs = _refs(8)
  nids = list(refs)
  narrative = report.score_narrativeqa_set(
    refs,
    [_free_text(nids, nids[:2]), _free_text(nids, nids[:4])],
    _free_text(nids, nids[:6]),
    _free_text(nids, nids[:5]),
    100,
  )
  narrative["source"] = "NarrativeQA test"
  text = report.render_markdown(
    {
      "sets": {"dev": squad_set, "test": narrative},
      "parameters": {"teacher": 10, "student": 10},
      "inference": {"k": 2, "repeats": 0},
    }
  )
  assert (
    "| system | dev EM | dev F1 | test BLEU-1 | test BLEU-4 | test ROUGE-L |"
    in text
  )
  assert "|---|---|---|---|---|---|" in text
  single = narrative["single"]
  assert (
    f"| {single['bleu_1']:.1f} ± {single['std']['bleu_1']:.1f} | "
    f"{single['bleu_4']:.1f} ± {single['std']['bleu_4']:.1f} | 37.5 ± 17.7 |"
    in text
  )
  # The SQuAD gain table is as before; NarrativeQA's is on ROUGE-L.
  assert "| set | ensemble − single F1 | student − single F1 |" in text
  assert "| dev | +37.5 | +0.0 | 0.00 |" in text
  assert (
    "| set | ensemble − single ROUGE-L | student − single ROUGE-L |" in text
  )
  assert "| test | +37.5 | +25.0 | 0.67 |" in text
  assert "- test, student − single mean: ROUGE-L +25.0 [" in text
  assert "- dev, student − single mean: EM +0.0" in text
  assert "Sets: test = NarrativeQA test." in text
  assert "NarrativeQA sets (test): BLEU-1 and BLEU-4 over the whole set" in text
  assert "| teacher | dev EM | dev F1 | test BLEU-1 |" in text


def test_summary_takes_each_sets_own_metrics():
  ids = _ids(8)
  squad_set = report.score_set(
    _squad(ids),
    [_answers(ids, ids[:2]), _answers(ids, ids[:4])],
    _answers(ids, ids[:6]),
    _answers(ids, ids[:3]),
    50,
  )
  refs = _refs(8)
  nids = list(refs)
  narrative = report.score_narrativeqa_set(
    refs,
    [_free_text(nids, nids[:2]), _free_text(nids, nids[:4])],
    _free_text(nids, nids[:6]),
    _free_text(nids, nids[:5]),
    50,
  )
  found = report.summary(
    {
      "sets": {"dev": squad_set, "test": narrative},
      "parameters": {"teacher": 10, "student": 10},
      "inference": {"k": 2, "repeats": 0},
    }
  )
  assert set(found["sets"]["dev"]["student"]) == {"exact_match", "f1"}
  test = found["sets"]["test"]
  assert set(test["student"]) == {"bleu_1", "bleu_4", "rouge_l"}
  assert test["single"]["rouge_l"] == 37.5
  assert set(test["single"]["std"]) == {"bleu_1", "bleu_4", "rouge_l"}
  assert test["gain_kept"] == 0.67
  assert set(test["intervals"]["student_minus_ensemble"]) == {"rouge_l"}
  json.dumps(found)
