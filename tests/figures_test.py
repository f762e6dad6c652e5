"""Tests for a2d_tf.figures: PNGs with content and TensorBoard images."""

from __future__ import annotations

import numpy as np
import pytest

from a2d_tf import analysis, figures


def _case(passage_len=12, question_len=5, hops=2, gold=(4, 5)):
  rng = np.random.default_rng(0)

  def attention():
    logits = rng.normal(size=(hops, passage_len, question_len))
    weights = np.exp(logits)
    return (weights / weights.sum(-1, keepdims=True)).astype(np.float32)

  def probs(peak):
    values = np.full(passage_len, 0.1 / passage_len, np.float32)
    values[peak] += 0.9
    return values

  return analysis.CaseStudy(
    id="q1",
    question="Who wrote the book about the river?",
    answers=("Ann Lee",),
    passage_tokens=tuple(f"tok{i}" for i in range(passage_len)),
    question_tokens=("Who", "wrote", "the", "book", "?")[:question_len],
    gold_span=gold,
    num_teachers=3,
    teacher_attention=attention(),
    student_attention=attention(),
    teacher_start_probs=probs(4),
    teacher_end_probs=probs(5),
    student_start_probs=probs(4),
    student_end_probs=probs(6),
    teacher_span=(4, 5),
    student_span=(4, 6),
    teacher_answer="Ann Lee",
    student_answer="Ann Lee wrote",
  )


def _check_png(path, min_height, min_width):
  pixels = figures.load_png(path)
  assert pixels.ndim == 3 and pixels.shape[2] in (3, 4)
  assert pixels.shape[0] >= min_height and pixels.shape[1] >= min_width
  assert pixels[..., :3].astype(np.float32).std() > 10.0
  return pixels


def test_plot_question_types_writes_a_chart(tmp_path):
  table = {
    "systems": ["single", "student"],
    "types": [
      {"type": "what", "count": 3, "f1": {"single": 70.0, "student": 75.0}},
      {"type": "why", "count": 0, "f1": {"single": None, "student": None}},
      {"type": "how", "count": 2, "f1": {"single": 40.0, "student": 55.0}},
    ],
    "overall": {"single": 58.0, "student": 67.0},
  }
  path = figures.plot_question_types(table, str(tmp_path / "types.png"))
  pixels = _check_png(path, 200, 300)
  # Both systems' colours are drawn.
  rgb = pixels[..., :3].reshape(-1, 3).astype(int)
  for color in ((31, 119, 180), (255, 127, 14)):  # tab:blue, tab:orange
    assert (np.abs(rgb - color).sum(-1) < 30).sum() > 100, color


def test_case_study_figure_draws_both_models(tmp_path):
  case = _case(passage_len=12, hops=2)
  figure = figures.case_study_figure(case, hop=0)
  teacher_heat, teacher_probs, student_heat, student_probs = figure.axes[:4]
  # Each model's heatmap is its own attention at the hop shown ...
  for heat, attention in (
    (teacher_heat, case.teacher_attention),
    (student_heat, case.student_attention),
  ):
    (image,) = heat.get_images()
    np.testing.assert_allclose(image.get_array(), attention[0])
  assert not np.allclose(case.teacher_attention[0], case.student_attention[0])
  assert teacher_heat.get_title().startswith("Teachers (mean of K=3)")
  assert "'Ann Lee'" in teacher_heat.get_title()
  assert student_heat.get_title().startswith("A2D student")
  assert "'Ann Lee wrote'" in student_heat.get_title()
  # ... beside its start (first bars) and end probabilities.
  for probs, start, end in (
    (teacher_probs, case.teacher_start_probs, case.teacher_end_probs),
    (student_probs, case.student_start_probs, case.student_end_probs),
  ):
    widths = [bar.get_width() for bars in probs.containers for bar in bars]
    np.testing.assert_allclose(widths, np.concatenate([start, end]))
  path = figures.plot_case_study(case, str(tmp_path / "case.png"), hop=0)
  _check_png(path, 200, 400)


def test_plot_case_study_rejects_missing_hop(tmp_path):
  with pytest.raises(ValueError, match="hop"):
    figures.plot_case_study(_case(hops=2), str(tmp_path / "x.png"), hop=2)


def test_passage_window_centres_on_gold_and_stays_inside():
  assert figures.passage_window(_case(passage_len=12), 40) == (0, 12)
  assert figures.passage_window(_case(passage_len=100, gold=(50, 51)), 20) == (
    40,
    60,
  )
  assert figures.passage_window(_case(passage_len=100, gold=(98, 99)), 20) == (
    80,
    100,
  )
  # Without a gold span in the passage, around the teachers' answer (4, 5).
  assert figures.passage_window(_case(passage_len=100, gold=(-1, -1)), 6) == (
    1,
    7,
  )


def test_log_images_writes_image_summaries(tmp_path):
  png = figures.plot_case_study(_case(), str(tmp_path / "case.png"))
  logdir = str(tmp_path / "tb")
  figures.log_images(logdir, {"case_study": png, "again": png})
  assert sorted(figures.image_tags(logdir)) == ["again", "case_study"]
