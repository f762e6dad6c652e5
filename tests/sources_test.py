"""Tests of `data.sources` for NarrativeQA runs (the official layout)."""

import os

import pytest

from a2d_tf.data import sources, squad, synthetic, synthetic_narrativeqa
from a2d_tf.data.records import DataError

LIMITS = {"max_passage_len": 160, "max_question_len": 24, "max_answer_len": 15}


@pytest.fixture(scope="module")
def layout_dir(tmp_path_factory):
  root = tmp_path_factory.mktemp("narrativeqa")
  layout = synthetic_narrativeqa.generate_layout(
    10, 3, 3, unanswerable=0.15, seed=7
  )
  synthetic_narrativeqa.write_layout(str(root), layout)
  return str(root)


def test_load_narrativeqa_splits_tasks_sources_and_references(layout_dir):
  loaded = sources.load_narrativeqa(
    layout_dir, validation_fraction=0.2, split_seed=3
  )
  assert list(loaded.splits) == ["train", "validation", "dev", "test"]
  assert set(loaded.tasks.values()) == {"narrativeqa"}
  assert loaded.sources["dev"] == "NarrativeQA valid"
  assert loaded.sources["test"] == "NarrativeQA test"
  assert "by document" in loaded.sources["validation"]
  # Held out by document: no summary on both sides.
  train_docs = {r.title for r in loaded.splits["train"]}
  assert not train_docs & {r.title for r in loaded.splits["validation"]}
  for name, records in loaded.splits.items():
    refs = loaded.references[name]
    assert list(refs) == [r.id for r in records]
    assert all(len(pair) == 2 for pair in refs.values())
    # Questions without a span stay, and are counted.
    without = sum(1 for r in records if not r.answers)
    assert loaded.counts[f"{name}_without_span"] == without
  assert sum(loaded.counts[f"{n}_without_span"] for n in loaded.splits) > 0
  assert "max_passage_tokens" not in loaded.counts


def test_load_narrativeqa_sizes_and_token_counts(layout_dir):
  loaded = sources.load_narrativeqa(
    layout_dir,
    max_train_examples=7,
    max_dev_examples=4,
    length_limits={**LIMITS, "max_passage_len": 100},
  )
  assert [len(loaded.splits[n]) for n in ("train", "dev", "test")] == [7, 4, 4]
  assert "validation" not in loaded.splits
  counts = loaded.counts
  # The corpus' passages are 80 to 140 tokens: some exceed 100.
  assert 100 < counts["max_passage_tokens"] <= 160
  assert 0 < counts["passages_over_max_len"]
  assert counts["questions_over_max_len"] == 0
  assert counts["train_spans_over_max_answer_len"] == 0
  cut = sources.load_narrativeqa(
    layout_dir, max_passage_words=20, length_limits=LIMITS
  )
  # 20 words are at most 20 tokens here: punctuation is already split off.
  assert cut.counts["max_passage_tokens"] == 20
  assert cut.counts["passages_over_max_len"] == 0


def test_load_narrativeqa_extra_squad_set_is_scored_as_squad(
  layout_dir, tmp_path
):
  path = str(tmp_path / "extra.json")
  squad.write_squad_json(synthetic.generate_corpus(0, 2, 1)["dev"], path)
  loaded = sources.load_narrativeqa(layout_dir, eval_files={"extra": path})
  assert loaded.tasks["extra"] == "squad"
  assert "extra" not in loaded.references
  with pytest.raises(ValueError, match="'test' is already defined"):
    sources.load_narrativeqa(layout_dir, eval_files={"test": path})


def test_load_splits_dispatches_to_narrativeqa(layout_dir):
  splits = sources.load_splits(
    "narrativeqa", narrativeqa_dir=layout_dir, validation_fraction=0.2
  )
  loaded = sources.load_narrativeqa(layout_dir, validation_fraction=0.2)
  assert splits == loaded.splits
  with pytest.raises(ValueError, match="needs --narrativeqa_dir"):
    sources.load_splits("narrativeqa")
  with pytest.raises(ValueError, match="does not apply to --dataset="):
    sources.load_splits(
      "narrativeqa", narrativeqa_dir=layout_dir, adversarial_questions=5
    )


def test_missing_file_and_empty_split_are_named(layout_dir, tmp_path):
  with pytest.raises(DataError) as info:
    sources.load_narrativeqa(str(tmp_path))
  assert os.path.join(str(tmp_path), "documents.csv") in str(info.value)
  assert "NarrativeQA documents file does not exist" in str(info.value)
  layout = synthetic_narrativeqa.generate_layout(3, 1, 0, seed=1)
  synthetic_narrativeqa.write_layout(str(tmp_path), layout)
  with pytest.raises(DataError, match="split 'test' has no examples"):
    sources.load_narrativeqa(str(tmp_path))


def test_narrativeqa_files_are_the_official_layout():
  assert sources.narrativeqa_files("/d") == {
    "NarrativeQA documents": "/d/documents.csv",
    "NarrativeQA questions": "/d/qaps.csv",
    "NarrativeQA summaries": "/d/third_party/wikipedia/summaries.csv",
  }
