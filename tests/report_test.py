"""Tests of the evaluation report's scoring and Markdown."""

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
  assert "| ensemble (K=3) | 1,234 x 3 | 3.000 |" in text
  assert "**3.00x** (10 examples, 2 passes)" in text


def test_render_markdown_without_timing_says_so():
  text = report.render_markdown(_report({"k": 2, "repeats": 0}))
  assert "| ensemble (K=2) | 1,234 x 2 |" in text
  assert "Inference not timed (timing_repeats=0)." in text
  assert "speedup" not in text
