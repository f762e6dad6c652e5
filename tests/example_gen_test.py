"""Tests of the example_gen step and the RawExamples it writes."""

import json

import pytest

from a2d_tf import artifacts, kit
from a2d_tf.data import synthetic_narrativeqa
from components.example_gen import example_gen

LIMITS = {"max_passage_len": 160, "max_question_len": 24, "max_answer_len": 15}


def _run(tmp_path, dataset, **kwargs):
  out_dir = tmp_path / "examples"
  out_dir.mkdir()
  out = kit.OutputArtifact("RawExamples", str(out_dir))
  params = dict(
    dataset=dataset,
    train_file="",
    dev_file="",
    eval_files={},
    synthetic_train_size=4,
    synthetic_dev_size=2,
    synthetic_seed=1,
    max_train_examples=0,
    max_dev_examples=0,
    validation_fraction=0.25,
    split_seed=0,
    adversarial_questions=0,
    input_digest="",
  )
  example_gen.fn(examples=out, **{**params, **kwargs})
  return kit.Artifact("RawExamples", str(out_dir), "fp", out.counts), out


def _layout(tmp_path):
  layout = synthetic_narrativeqa.generate_layout(
    8, 2, 2, unanswerable=0.2, seed=5
  )
  synthetic_narrativeqa.write_layout(str(tmp_path / "nqa"), layout)
  return str(tmp_path / "nqa")


def test_narrativeqa_run_records_tasks_sources_and_references(tmp_path):
  examples, out = _run(
    tmp_path,
    "narrativeqa",
    narrativeqa_dir=_layout(tmp_path),
    length_limits=LIMITS,
  )
  index = json.loads((tmp_path / "examples" / "splits.json").read_text())
  assert index["splits"] == ["train", "validation", "dev", "test"]
  assert index["eval_sets"] == ["dev", "test"]
  assert index["validation"] == "validation"
  assert set(index["tasks"].values()) == {"narrativeqa"}
  assert artifacts.split_task(examples, "test") == "narrativeqa"
  assert artifacts.split_source(examples, "dev") == "NarrativeQA valid"
  records = artifacts.read_split(examples, "dev")
  refs = artifacts.read_references(examples, "dev")
  assert list(refs) == [r.id for r in records]
  counts = out.counts
  assert counts["dev"] == len(records)
  assert counts["train_without_span"] + counts["validation_without_span"] > 0
  assert counts["passages_over_max_len"] == 0
  assert counts["max_passage_tokens"] > 0


def test_selection_data_scores_narrativeqa_against_the_references(tmp_path):
  examples, out = _run(
    tmp_path, "narrativeqa", narrativeqa_dir=_layout(tmp_path)
  )
  refs = artifacts.read_references(examples, "validation")
  selection = artifacts.selection_data(examples, "validation")
  spans = artifacts.squad_data(examples, "validation")
  scored = {
    qa["id"]: [a["text"] for a in qa["answers"]]
    for article in selection
    for paragraph in article["paragraphs"]
    for qa in paragraph["qas"]
  }
  assert scored == refs
  # The split's own file keeps the training spans (none for some).
  span_answers = [
    qa["answers"]
    for article in spans
    for paragraph in article["paragraphs"]
    for qa in paragraph["qas"]
  ]
  without = sum(1 for answers in span_answers if not answers)
  assert without == out.counts["validation_without_span"] > 0


def test_squad_runs_keep_squad_tasks_and_selection_data(tmp_path):
  examples, out = _run(tmp_path, "synthetic")
  index = json.loads((tmp_path / "examples" / "splits.json").read_text())
  assert set(index["tasks"].values()) == {"squad"}
  assert "sources" not in index
  assert artifacts.split_task(examples, "adversarial") == "squad"
  assert artifacts.split_source(examples, "dev") is None
  assert artifacts.selection_data(
    examples, "validation"
  ) == artifacts.squad_data(examples, "validation")
  assert "train_without_span" not in out.counts


def test_narrativeqa_run_rejects_generated_adversarial_sets(tmp_path):
  with pytest.raises(ValueError, match="adversarial_questions=3"):
    _run(
      tmp_path,
      "narrativeqa",
      narrativeqa_dir=_layout(tmp_path),
      adversarial_questions=3,
    )
