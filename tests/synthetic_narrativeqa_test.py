"""Tests of the generated NarrativeQA-layout directory."""

import csv
import os
import subprocess
import sys

import pytest

from a2d_tf.data import narrativeqa, synthetic_narrativeqa

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _header(path):
  with open(path, encoding="utf-8", newline="") as f:
    return next(csv.reader(f))


def test_written_layout_has_the_official_files_and_columns(tmp_path):
  layout = synthetic_narrativeqa.generate_layout(6, 2, 2, seed=1)
  paths = synthetic_narrativeqa.write_layout(str(tmp_path), layout)
  assert paths["summaries"] == str(
    tmp_path / "third_party" / "wikipedia" / "summaries.csv"
  )
  assert _header(paths["documents"]) == [
    "document_id",
    "set",
    "kind",
    "story_url",
    "story_file_size",
    "wiki_url",
    "wiki_title",
    "story_word_count",
    "story_start",
    "story_end",
  ]
  assert _header(paths["qaps"]) == [
    "document_id",
    "set",
    "question",
    "answer1",
    "answer2",
    "question_tokenized",
    "answer1_tokenized",
    "answer2_tokenized",
  ]
  assert _header(paths["summaries"]) == [
    "document_id",
    "set",
    "summary",
    "summary_tokenized",
  ]
  counts = layout.counts()
  assert (counts["train_documents"], counts["valid_documents"]) == (6, 2)
  assert counts["test_documents"] == 2
  assert all(len(row[0]) == 40 for row in layout.documents)


def test_reader_reads_every_split_and_unanswerable_get_no_span(tmp_path):
  layout = synthetic_narrativeqa.generate_layout(
    8, 3, 3, unanswerable=0.2, seed=2
  )
  synthetic_narrativeqa.write_layout(str(tmp_path), layout)
  read = narrativeqa.read_narrativeqa_splits(str(tmp_path))
  counts = layout.counts()
  for split in narrativeqa.SPLITS:
    assert len(read[split].records) == counts[f"{split}_questions"] > 0
  unanswerable = {
    qid
    for part in read.values()
    for qid, refs in part.references.items()
    if refs == list(synthetic_narrativeqa.UNANSWERABLE)
  }
  assert len(unanswerable) == counts["unanswerable_questions"] > 0
  without = {
    r.id for part in read.values() for r in part.records if not r.answers
  }
  assert without == unanswerable
  # Every other question has a span with ROUGE-L > 0 to its references,
  # and the answerable ones mostly match one of them exactly.
  spans = read["train"].span_rouge_l
  assert all(spans[r.id] > 0 for r in read["train"].records if r.answers)
  exact = sum(1 for v in spans.values() if v == pytest.approx(1.0))
  assert exact >= 0.5 * len(spans)


def test_second_reference_rewords_the_first():
  layout = synthetic_narrativeqa.generate_layout(20, 0, 0, seed=3)
  pairs = [(row[6], row[7]) for row in layout.qaps]
  reworded = [b for a, b in pairs if a.rstrip(" .") != b]
  assert len(reworded) > 0.3 * len(pairs)
  assert any(b.startswith("in ") for b in reworded)
  assert any(b.startswith("the ") for b in reworded)


def test_passages_per_document_make_longer_summaries():
  one = synthetic_narrativeqa.generate_layout(4, 0, 0, seed=4)
  three = synthetic_narrativeqa.generate_layout(
    4, 0, 0, passages_per_document=3, seed=4
  )
  words = [
    sum(len(row[3].split()) for row in layout.summaries)
    for layout in (one, three)
  ]
  assert words[1] > 2.5 * words[0]
  assert len(three.qaps) > 2.5 * len(one.qaps)


def test_same_arguments_same_rows_and_bad_arguments_raise():
  assert synthetic_narrativeqa.generate_layout(
    3, 1, 1, seed=5
  ) == synthetic_narrativeqa.generate_layout(3, 1, 1, seed=5)
  with pytest.raises(ValueError, match="train_documents must be >= 0"):
    synthetic_narrativeqa.generate_layout(-1)
  with pytest.raises(ValueError, match="passages_per_document"):
    synthetic_narrativeqa.generate_layout(passages_per_document=0)
  with pytest.raises(ValueError, match="unanswerable"):
    synthetic_narrativeqa.generate_layout(unanswerable=1.5)


def test_cli_writes_the_layout(tmp_path):
  result = subprocess.run(
    [
      sys.executable,
      "-m",
      "a2d_tf.data.synthetic_narrativeqa",
      f"--output_dir={tmp_path}",
      "--train_documents=2",
      "--valid_documents=1",
      "--test_documents=1",
    ],
    cwd=ROOT,
    env={**os.environ, "PYTHONPATH": ROOT},
    capture_output=True,
    text=True,
    timeout=120,
  )
  assert result.returncode == 0, result.stderr
  assert "train_documents=2" in result.stdout
  assert len(narrativeqa.read_narrativeqa(str(tmp_path), "valid").records)
