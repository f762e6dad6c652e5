"""Tests of the ablation table and of `python -m pipelines.ablation`.

The slow test runs the real CLI on the tiny preset: five students from the
same two teachers, the table on every set, and the analyses' figures.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import pytest

from a2d_tf import ablations, kit
from a2d_tf import config as config_lib
from pipelines import pipeline

ROOT = str(pathlib.Path(__file__).resolve().parent.parent)
# As report.json stores them: keys sorted, so dev is not first.
SETS = ("addsent", "dev")


def _report(student_f1, teacher_f1=50.0):
  def scores(f1, worst=False):
    return {"exact_match": f1 - 10.0, "f1": f1, "worst_case": worst}

  return {
    "sets": {
      name: {
        "single": scores(teacher_f1, name == "addsent"),
        "ensemble": scores(teacher_f1 + 5.0, name == "addsent"),
        "student": scores(
          student_f1 - (20.0 if name == "addsent" else 0.0),
          name == "addsent",
        ),
      }
      for name in SETS
    },
    "inference": {"k": 3},
  }


def _reports():
  return {
    "full": _report(70.0),
    "no_kd": _report(68.5),
    "no_att": _report(69.0),
    "no_ans": _report(71.0),
    "stagewise": _report(67.0),
  }


def test_select_variants_default_all_in_table_order():
  assert [v.name for v in ablations.select_variants([])] == [
    "full",
    "no_kd",
    "no_att",
    "no_ans",
    "stagewise",
  ]
  chosen = ablations.select_variants(["stagewise", "full"])
  assert [v.name for v in chosen] == ["full", "stagewise"]


def test_select_variants_rejects_unknown_name():
  with pytest.raises(ValueError, match="no_xyz"):
    ablations.select_variants(["full", "no_xyz"])


def test_ablation_table_rows_sets_and_teachers():
  table = ablations.ablation_table(_reports())
  assert table["sets"] == ["dev", "addsent"]
  assert [r["label"] for r in table["rows"]] == [
    "A2D",
    "−KD",
    "−ATT",
    "−ANS",
    "stage-wise",
  ]
  no_kd = table["rows"][1]
  assert no_kd["overrides"] == ["distill.use_kd=false"]
  assert no_kd["scores"]["dev"] == {
    "exact_match": 58.5,
    "f1": 68.5,
    "worst_case": False,
  }
  assert no_kd["scores"]["addsent"]["f1"] == 48.5
  assert table["teachers"]["dev"]["ensemble"]["f1"] == 55.0
  assert table["k"] == 3


def test_render_ablation_markdown_shows_changes_from_full():
  text = ablations.render_ablation_markdown(
    ablations.ablation_table(_reports())
  )
  assert "| variant | dev EM | dev F1 | addsent EM | addsent F1 |" in text
  assert "| A2D | 60.0 | 70.0 | 40.0 | 50.0 |" in text
  assert "| −KD | 58.5 (−1.5) | 68.5 (−1.5) | 38.5 (−1.5) | 48.5 (−1.5) |" in (
    text
  )
  assert "| −ANS | 61.0 (+1.0) | 71.0 (+1.0) |" in text
  assert "| ensemble (K=3) | 45.0 | 55.0 | 45.0 | 55.0 |" in text
  assert "worst score" in text


def test_ablation_table_requires_every_report_and_same_sets():
  reports = _reports()
  del reports["no_att"]
  with pytest.raises(ValueError, match="no_att"):
    ablations.ablation_table(reports)
  reports = _reports()
  del reports["stagewise"]["sets"]["addsent"]
  with pytest.raises(ValueError, match="stagewise"):
    ablations.ablation_table(reports)


def test_ablation_table_rejects_different_teachers():
  same = {"teachers": ["a", "b"], "knowledge": "k"}
  fingerprints = {v.name: dict(same) for v in ablations.ABLATIONS}
  table = ablations.ablation_table(_reports(), fingerprints=fingerprints)
  assert table["rows"][2]["fingerprints"]["knowledge"] == "k"
  fingerprints["no_ans"] = {"teachers": ["a", "c"], "knowledge": "k"}
  with pytest.raises(ValueError, match="same teachers"):
    ablations.ablation_table(_reports(), fingerprints=fingerprints)


def test_variants_share_every_step_up_to_the_student():
  base = config_lib.get_config("tiny")
  plans = {
    v.name: kit.plan(
      pipeline.create_pipeline(
        config_lib.apply_overrides(base, v.overrides),
        with_export=False,
        with_analysis=v.name == "full",
      )
    )
    for v in ablations.ABLATIONS
  }
  shared = [
    "example_gen",
    "transform",
    "train_teacher_0",
    "train_teacher_1",
    "distill_knowledge_train",
    "distill_knowledge_validation",
  ]
  for node in shared:
    assert len({plan[node] for plan in plans.values()}) == 1, node
  assert len({plan["train_student"] for plan in plans.values()}) == 5
  assert len({plan["evaluate"] for plan in plans.values()}) == 5
  assert "export" not in plans["full"]
  assert "analyze" in plans["full"] and "analyze" not in plans["no_kd"]


def test_sweep_variants_one_per_point_zipped():
  variants = ablations.sweep_variants(["student_model.hidden=32,16,8"])
  assert [v.name for v in variants] == ["hidden_32", "hidden_16", "hidden_8"]
  assert variants[1].label == "hidden=16"
  assert variants[1].overrides == ("student_model.hidden=16",)
  zipped = ablations.sweep_variants(
    ["student_model.hidden=16,8", "student_model.aligner_hops=2, 1"]
  )
  assert [v.overrides for v in zipped] == [
    ("student_model.hidden=16", "student_model.aligner_hops=2"),
    ("student_model.hidden=8", "student_model.aligner_hops=1"),
  ]
  assert zipped[1].name == "hidden_8-aligner_hops_1"


@pytest.mark.parametrize(
  "specs, message",
  [
    ([], "at least one"),
    (["student_model.hidden"], "expected student_model.FIELD=V1,V2"),
    (["model.hidden=16,8"], "student_model.* fields only"),
    (["student_model.hidden=16,,8"], "an empty value"),
    (
      ["student_model.hidden=16,8", "student_model.aligner_hops=1"],
      "hidden: 2, aligner_hops: 1",
    ),
    (["student_model.hidden=16,16"], "listed twice"),
  ],
)
def test_sweep_variants_reject_bad_specs(specs, message):
  with pytest.raises(ValueError, match=message):
    ablations.sweep_variants(specs)


def _timed_report(student_f1, student_s, student_params, hidden):
  report = _report(student_f1)
  for scored in report["sets"].values():
    scored["single"]["std"] = {"exact_match": 1.0, "f1": 2.0}
  report["inference"] = {
    "k": 3,
    "examples": 40,
    "repeats": 2,
    "single_s": 1.0 + 0.1 * hidden / 32,
    "ensemble_s": 3.0,
    "student_s": student_s,
    "speedup": 3.0 / student_s,
  }
  report["parameters"] = {
    "teacher": 1000,
    "student": student_params,
    "student_model": {} if hidden == 32 else {"hidden": hidden},
  }
  return report


def _sweep():
  variants = ablations.sweep_variants(["student_model.hidden=32,16,8"])
  reports = {
    "hidden_32": _timed_report(70.0, 1.0, 1000, 32),
    "hidden_16": _timed_report(66.0, 0.5, 400, 16),
    "hidden_8": _timed_report(55.0, 0.25, 150, 8),
  }
  return variants, reports


def test_frontier_table_rows_speedups_and_references():
  variants, reports = _sweep()
  table = ablations.frontier_table(reports, variants)
  assert table["sets"] == ["dev", "addsent"]
  assert [r["label"] for r in table["rows"]] == [
    "hidden=32",
    "hidden=16",
    "hidden=8",
  ]
  half = table["rows"][1]
  assert half["student_model"] == {"hidden": 16}
  assert half["parameters"] == 400
  assert half["parameter_ratio"] == pytest.approx(0.4)
  assert half["inference_s"] == 0.5
  # Each point's speedups come from its own evaluation's timing.
  assert half["speedup_over_single"] == pytest.approx(1.05 / 0.5)
  assert half["speedup_over_ensemble"] == pytest.approx(6.0)
  assert half["scores"]["dev"]["f1"] == 66.0
  single = table["references"]["single"]
  assert single["inference_s"] == pytest.approx(1.05)  # the median
  assert single["scores"]["dev"]["std"]["f1"] == 2.0
  assert single["parameters"] == 1000
  assert table["references"]["ensemble"]["parameters"] == 3000
  assert table["references"]["ensemble"]["scores"]["dev"]["f1"] == 55.0


def test_frontier_table_needs_timed_reports_of_the_same_teachers():
  variants, reports = _sweep()
  reports["hidden_8"]["inference"] = {"k": 3, "repeats": 0}
  with pytest.raises(ValueError, match="not timed"):
    ablations.frontier_table(reports, variants)
  variants, reports = _sweep()
  fingerprints = {
    v.name: {"teachers": ["a"], "knowledge": v.name} for v in variants
  }
  with pytest.raises(ValueError, match="same knowledge"):
    ablations.frontier_table(reports, variants, fingerprints)


def test_render_frontier_markdown_and_figure(tmp_path):
  from a2d_tf import figures

  variants, reports = _sweep()
  table = ablations.frontier_table(reports, variants)
  text = ablations.render_frontier_markdown(table)
  assert "# a2d accuracy/speed frontier" in text
  assert (
    "| single teacher (mean ± sd of 3) | 1,000 | 40.0 ± 1.0 | 50.0 ± 2.0 |"
  ) in text
  assert "| ensemble (K=3) | 3,000 | 45.0 | 55.0 |" in text
  assert (
    "| student hidden=8 | 150 (0.15) | 45.0 | 55.0 | 25.0 | 35.0 | 0.250 | "
    "4.10x | 12.00x |"
  ) in text
  path = figures.plot_frontier(table, str(tmp_path / "frontier.png"))
  pixels = figures.load_png(path)
  assert pixels.shape[0] > 200 and pixels.shape[1] > 300
  assert pixels[..., :3].std() > 10.0
  with pytest.raises(ValueError, match="set_name"):
    figures.plot_frontier(table, str(tmp_path / "x.png"), set_name="test")


def test_sweep_points_share_teachers_and_knowledge():
  base = config_lib.get_config("tiny")
  hidden = base.model.hidden
  variants = ablations.sweep_variants(
    [f"student_model.hidden={hidden},{hidden // 2},{hidden // 4}"]
  )
  plans = {
    v.name: kit.plan(
      pipeline.create_pipeline(
        config_lib.apply_overrides(base, v.overrides), with_export=False
      )
    )
    for v in variants
  }
  for node in ("train_teacher_0", "train_teacher_1", "distill_knowledge_train"):
    assert len({plan[node] for plan in plans.values()}) == 1, node
  assert len({plan["train_student"] for plan in plans.values()}) == 3
  # The teacher-sized point is the default student.
  default = kit.plan(pipeline.create_pipeline(base, with_export=False))
  assert plans[f"hidden_{hidden}"] == default


def _run_cli(*args, timeout=900):
  return subprocess.run(
    [sys.executable, "-m", "pipelines.ablation", *args],
    cwd=ROOT,
    env={**os.environ, "PYTHONPATH": ROOT, "CUDA_VISIBLE_DEVICES": ""},
    capture_output=True,
    text=True,
    timeout=timeout,
  )


def test_cli_rejects_unknown_variant_before_training(tmp_path):
  result = _run_cli(
    f"--output_dir={tmp_path / 'out'}", "--variants=full,bogus", timeout=120
  )
  assert result.returncode == 1
  assert "bogus" in result.stderr
  assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
  "args, message",
  [
    (["--sweep=student_model.hidden=8", "--variants=full"], "no --variants"),
    (["--sweep=model.hidden=8,4"], "student_model.* fields only"),
    (["--sweep=student_model.hidden=0"], "student_model.hidden=0"),
  ],
)
def test_cli_rejects_bad_sweeps_before_training(tmp_path, args, message):
  result = _run_cli(f"--output_dir={tmp_path / 'out'}", *args, timeout=120)
  assert result.returncode == 1
  assert message in result.stderr
  assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_cli_tiny_trains_students_from_the_same_teachers(tmp_path):
  from a2d_tf import figures

  out = tmp_path / "out"
  tiny = [
    f"--output_dir={out}",
    "--preset=tiny",
    "--num_teachers=2",
    "--override=data.synthetic_train_size=24",
    "--override=data.synthetic_dev_size=6",
    "--override=train.epochs=1",
    # One batch per epoch and set, steps not traced: a faster test.
    "--override=train.batch_size=128",
    # One aligning and one pointer hop: half the graph per model.
    "--override=model.aligner_hops=1",
    "--override=model.pointer_hops=1",
    "--override=runtime.run_eagerly=true",
  ]
  result = _run_cli(
    *tiny,
    # Two of the five variants: the analyses (full) and the stage-wise
    # phases; the plans of all five are checked above, the loss switches
    # in tests/losses_test.py and tests/student_test.py.
    "--variants=full,stagewise",
  )
  assert result.returncode == 0, result.stderr[-3000:]
  # Teachers and knowledge are trained once; every variant trains a student.
  assert result.stdout.count("train_teacher_0: start") == 1
  assert result.stdout.count("distill_knowledge_train: start") == 1
  assert result.stdout.count("train_student: start") == 2
  assert result.stdout.count("train_teacher_0: cached") == 1

  with open(out / "ablation.json") as f:
    table = json.load(f)
  assert [r["variant"] for r in table["rows"]] == ["full", "stagewise"]
  assert table["sets"] == ["dev", "adversarial"]
  for row in table["rows"]:
    assert set(row["scores"]) == {"dev", "adversarial"}
    for scores in row["scores"].values():
      assert 0.0 <= scores["exact_match"] <= scores["f1"] <= 100.0
  assert table["rows"][0]["scores"]["adversarial"]["worst_case"] is True
  assert len({r["fingerprints"]["student"] for r in table["rows"]}) == 2
  assert len({str(r["fingerprints"]["teachers"]) for r in table["rows"]}) == 1
  markdown = (out / "ablation.md").read_text()
  assert markdown.count("\n| ") >= 1 + 2 + 1 + 2
  assert "| stage-wise |" in markdown

  with open(out / "question_types.json") as f:
    types = json.load(f)
  assert types["split"] == "dev"
  assert sum(entry["count"] for entry in types["types"]) == 20
  with open(out / "case_study.json") as f:
    case = json.load(f)
  assert len(case["passage_tokens"]) == len(case["teacher_attention"][0])
  for name in ("question_types.png", "case_study.png"):
    pixels = figures.load_png(str(out / name))
    assert pixels.shape[0] > 200 and pixels.shape[1] > 300, name
    assert pixels[..., :3].std() > 10.0, name
  tags = figures.image_tags(str(out / "tensorboard" / "analysis"))
  assert sorted(tags) == ["case_study", "question_types"]
  assert (out / "tensorboard" / "ablation" / "stagewise" / "student").is_dir()

  # A size sweep into the same root: the teacher-sized point is the full
  # variant's student, the half-width one trains from the same cached
  # teachers and knowledge.
  hidden = config_lib.get_config("tiny").model.hidden
  sweep = _run_cli(
    *tiny,
    f"--sweep=student_model.hidden={hidden},{hidden // 2}",
  )
  assert sweep.returncode == 0, sweep.stderr[-3000:]
  log = sweep.stdout
  for step in ("train_teacher_0", "train_teacher_1", "distill_knowledge_train"):
    assert log.count(f"{step}: cached") == 2, step
    assert f"{step}: start" not in log, step
  assert log.count("train_student: start") == 1
  assert log.count("evaluate: start") == 1
  with open(out / "frontier.json") as f:
    frontier = json.load(f)
  full, half = frontier["rows"]
  assert (
    full["fingerprints"]["student"]
    == (table["rows"][0]["fingerprints"]["student"])
  )
  assert full["student_model"] == {} and half["student_model"] == {
    "hidden": hidden // 2
  }
  assert half["parameters"] < 0.6 * full["parameters"]
  assert full["fingerprints"]["knowledge"] == half["fingerprints"]["knowledge"]
  for row in frontier["rows"]:
    assert row["inference_s"] > 0 and row["speedup_over_ensemble"] > 0
  assert frontier["references"]["ensemble"]["parameters"] == (
    2 * frontier["references"]["single"]["parameters"]
  )
  assert "frontier" in (out / "frontier.md").read_text()
  pixels = figures.load_png(str(out / "frontier.png"))
  assert pixels.shape[0] > 200 and pixels[..., :3].std() > 10.0
