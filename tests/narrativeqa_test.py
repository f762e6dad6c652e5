"""Tests for a2d_tf.data.narrativeqa (NarrativeQA summary-setting reader)."""

import csv
import json
import os
import random

import pytest
from pycocoevalcap.rouge.rouge import Rouge

from a2d_tf.data import narrativeqa
from a2d_tf.data.records import DataError

_QAPS_HEADER = [
  "document_id",
  "set",
  "question",
  "answer1",
  "answer2",
  "question_tokenized",
  "answer1_tokenized",
  "answer2_tokenized",
]
_SUMMARY_HEADER = ["document_id", "set", "summary", "summary_tokenized"]
_DOCUMENT_HEADER = [
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

_SUMMARY_A = "The Old Man went to the sea . He caught a big fish ."
_SUMMARY_B = "Mary lives in Paris with her cat , Tom ."


def _qa(doc, split, question, answer1, answer2):
  """A qaps.csv row; the raw columns hold the tokenized text too."""
  return [doc, split, question, answer1, answer2, question, answer1, answer2]


_QAPS = [
  _qa("docA", "train", "Who went to the sea ?", "an old man", "the old man"),
  _qa("docB", "test", "Where does Mary live ?", "in Paris .", "Paris"),
  _qa("docA", "train", "What did he catch ?", "a big fish", "a fish"),
  _qa("docA", "train", "What is his name ?", "Santiago", "unknown"),
]
_SUMMARIES = [
  ["docA", "train", "raw", _SUMMARY_A],
  ["docB", "test", "raw", _SUMMARY_B],
]


def _write_csv(path, header, rows):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, "w", encoding="utf-8", newline="") as f:
    writer = csv.writer(f)
    if header is not None:
      writer.writerow(header)
    writer.writerows(rows)


def _document(doc, split):
  return [doc, split, "gutenberg", "", "0", "", doc, "0", "", ""]


def _write_dataset(
  root,
  qaps=None,
  summaries=None,
  qaps_header=None,
  summary_header=None,
  documents=None,
):
  """Writes the official layout; `documents.csv` lists the summaries'
  documents in their split unless `documents` is given."""
  root = str(root)
  qaps = _QAPS if qaps is None else qaps
  summaries = _SUMMARIES if summaries is None else summaries
  if documents is None:
    listed = {row[0]: row[1] for row in summaries if len(row) > 1}
    documents = [_document(doc, split) for doc, split in listed.items()]
  _write_csv(os.path.join(root, "qaps.csv"), qaps_header or _QAPS_HEADER, qaps)
  _write_csv(
    os.path.join(root, "third_party", "wikipedia", "summaries.csv"),
    summary_header or _SUMMARY_HEADER,
    summaries,
  )
  _write_csv(os.path.join(root, "documents.csv"), _DOCUMENT_HEADER, documents)
  return root


def _brute_force(words, references, max_span_len):
  """Best span by scoring every span with pycocoevalcap's ROUGE-L."""
  rouge = Rouge()
  refs = [" ".join(r) for r in references]
  best = None
  for i in range(len(words)):
    for j in range(i, min(len(words), i + max_span_len)):
      score = rouge.calc_score([" ".join(words[i : j + 1])], refs)
      if score <= 0:
        continue
      key = (-score, j - i, i)
      if best is None or key < best[0]:
        best = (key, (i, j, score))
  return None if best is None else best[1]


def test_read_narrativeqa_train_fields(tmp_path):
  data = narrativeqa.read_narrativeqa(_write_dataset(tmp_path), "train")
  assert [r.id for r in data.records] == ["docA_0", "docA_1", "docA_2"]
  first = data.records[0]
  assert first.title == "docA"
  assert first.context == _SUMMARY_A
  assert first.question == "Who went to the sea ?"
  # Matched case-insensitively; the answer keeps the passage's case.
  assert len(first.answers) == 1
  answer = first.answers[0]
  assert answer.text == "The Old Man"
  assert answer.start == 0
  assert data.records[1].answers[0].text == "a big fish"
  assert data.span_rouge_l["docA_1"] == pytest.approx(1.0)
  # "Santiago" / "unknown" share no word with the summary.
  assert data.records[2].answers == ()
  assert data.span_rouge_l["docA_2"] == 0.0
  assert data.num_without_span == 1
  assert data.references == {
    "docA_0": ["an old man", "the old man"],
    "docA_1": ["a big fish", "a fish"],
    "docA_2": ["Santiago", "unknown"],
  }


def test_read_narrativeqa_ids_count_questions_per_document_over_splits(
  tmp_path,
):
  data = narrativeqa.read_narrativeqa(_write_dataset(tmp_path), "test")
  # docB's only question is docB_0 although it is the file's second row.
  assert [r.id for r in data.records] == ["docB_0"]
  # "Paris" alone scores 1 in COCO's ROUGE-L (P and R are maximised over
  # the references separately) and is shorter than "in Paris".
  assert data.records[0].answers[0].text == "Paris"
  assert data.records[0].answers[0].start == _SUMMARY_B.index("Paris")
  assert data.references == {"docB_0": ["in Paris .", "Paris"]}
  assert "-" not in data.records[0].id


def test_read_narrativeqa_valid_split_can_be_empty(tmp_path):
  data = narrativeqa.read_narrativeqa(_write_dataset(tmp_path), "valid")
  assert data.records == []
  assert data.references == {}


def test_read_narrativeqa_cuts_passage_to_800_words(tmp_path):
  words = [f"w{i}" for i in range(1000)]
  qaps = [
    _qa("long", "train", "q ?", "w799", "w799"),
    _qa("long", "train", "q ?", "w800 w801", "w900"),
  ]
  root = _write_dataset(
    tmp_path, qaps=qaps, summaries=[["long", "train", "", " ".join(words)]]
  )
  data = narrativeqa.read_narrativeqa(root, "train")
  context = data.records[0].context
  assert context.split() == words[:800]
  assert context == " ".join(words[:800])
  # The last kept word is still found; words past the cut are not.
  assert data.records[0].answers[0].text == "w799"
  assert data.records[0].answers[0].start == context.rindex("w799")
  assert data.records[1].answers == ()


def test_read_narrativeqa_normalizes_whitespace_and_custom_cut(tmp_path):
  root = _write_dataset(
    tmp_path,
    qaps=[_qa("d", "train", " q  ?\n", "c  d", "c d")],
    summaries=[["d", "train", "", "a\tb\n c  d e"]],
  )
  data = narrativeqa.read_narrativeqa(root, "train", max_passage_words=4)
  record = data.records[0]
  assert record.context == "a b c d"
  assert record.question == "q ?"
  assert record.answers[0].text == "c d"
  assert record.answers[0].start == 4
  assert data.references["d_0"] == ["c d", "c d"]


def test_best_rouge_span_hand_case():
  passage = "the old man went to the sea to fish".split()
  refs = [["an", "old", "man"], ["a", "fisherman"]]
  start, end, score = narrativeqa.best_rouge_span(passage, refs, 8)
  assert (start, end) == (1, 2)
  # "old man": P = 1, R = max(2/3, 0): F = 2.44 * 2/3 / (2/3 + 1.44);
  # "the old man" has P = 2/3 and scores less.
  assert score == pytest.approx(2.44 * (2 / 3) / (2 / 3 + 1.44))


def test_best_rouge_span_equal_scores_go_to_shorter_then_earlier():
  passage = "the old man went to the sea to fish".split()
  refs = [["an", "old", "man"], ["the", "old", "fisherman"]]
  # "the old" (ref 2) and "old man" (ref 1) both have P = 1, R = 2/3.
  assert narrativeqa.best_rouge_span(passage, refs, 8)[:2] == (0, 1)
  # "x a" and "a" both score 1 against ["a"] and ["x a"]: shorter wins.
  span = narrativeqa.best_rouge_span(["x", "a"], [["a"], ["x", "a"]], 3)
  assert span[:2] == (1, 1)


def test_best_rouge_span_ties_go_to_earliest():
  assert narrativeqa.best_rouge_span("x a y a".split(), [["a"]], 3) == (
    1,
    1,
    pytest.approx(1.0),
  )


def test_best_rouge_span_without_overlap_is_none():
  assert narrativeqa.best_rouge_span(["a", "b"], [["c"], []], 4) is None
  assert narrativeqa.best_rouge_span([], [["c"]], 4) is None
  with pytest.raises(ValueError, match="max_span_len"):
    narrativeqa.best_rouge_span(["a"], [["a"]], 0)


def test_best_rouge_span_respects_max_span_len():
  passage = "a x b x c".split()
  refs = [["a", "b", "c"]]
  assert narrativeqa.best_rouge_span(passage, refs, 5)[:2] == (0, 4)
  assert narrativeqa.best_rouge_span(passage, refs, 3)[:2] == (0, 2)


@pytest.mark.parametrize("seed", range(4))
def test_best_rouge_span_matches_brute_force(seed):
  rng = random.Random(seed)
  vocab = [f"w{i}" for i in range(12)]
  for _ in range(40):
    words = [rng.choice(vocab) for _ in range(rng.randint(1, 25))]
    refs = [
      [rng.choice(vocab) for _ in range(rng.randint(1, 5))] for _ in range(2)
    ]
    max_span_len = max(len(r) for r in refs) + rng.randint(0, 5)
    got = narrativeqa.best_rouge_span(words, refs, max_span_len)
    want = _brute_force(words, refs, max_span_len)
    assert (got is None) == (want is None), (words, refs)
    if got is not None:
      assert got[:2] == want[:2], (words, refs, max_span_len)
      assert got[2] == pytest.approx(want[2])


def test_read_references_from_directory_csv_and_json(tmp_path):
  root = _write_dataset(tmp_path)
  from_dir = narrativeqa.read_references(root, "train")
  from_csv = narrativeqa.read_references(os.path.join(root, "qaps.csv"), "test")
  assert list(from_dir) == ["docA_0", "docA_1", "docA_2"]
  assert from_csv == {"docB_0": ["in Paris .", "Paris"]}
  path = str(tmp_path / "refs.json")
  narrativeqa.write_references(path, from_dir)
  assert narrativeqa.read_references(path) == from_dir


@pytest.mark.parametrize(
  "content, message",
  [
    ("[1]", "expected a JSON object"),
    ('{"a": "text"}', "record a, field 'references'"),
    ('{"a": []}', "non-empty list"),
    ("{bad", "malformed JSON at line 1"),
  ],
)
def test_read_references_bad_json(tmp_path, content, message):
  path = tmp_path / "refs.json"
  path.write_text(content, encoding="utf-8")
  with pytest.raises(DataError, match=message) as info:
    narrativeqa.read_references(str(path))
  assert str(path) in str(info.value)


def _error(root, split="train"):
  with pytest.raises(DataError) as info:
    narrativeqa.read_narrativeqa(str(root), split)
  return str(info.value)


def test_missing_files_name_the_file(tmp_path):
  message = _error(tmp_path)
  assert "qaps.csv" in message and "cannot open" in message
  _write_csv(str(tmp_path / "qaps.csv"), _QAPS_HEADER, _QAPS)
  message = _error(tmp_path)
  assert os.path.join("third_party", "wikipedia", "summaries.csv") in message
  _write_csv(
    str(tmp_path / "third_party" / "wikipedia" / "summaries.csv"),
    _SUMMARY_HEADER,
    _SUMMARIES,
  )
  message = _error(tmp_path)
  assert "documents.csv" in message and "cannot open" in message


def test_documents_csv_must_list_each_document_in_its_split(tmp_path):
  # docB is missing from the index.
  message = _error(
    _write_dataset(tmp_path / "a", documents=[_document("docA", "train")]),
    "test",
  )
  assert "qaps.csv" in message and "record docB_0 (line 3)" in message
  assert "field 'document_id'" in message
  assert "not listed in" in message and "documents.csv" in message
  # The index puts docA in valid while its questions say train.
  message = _error(
    _write_dataset(
      tmp_path / "b",
      documents=[_document("docA", "valid"), _document("docB", "test")],
    )
  )
  assert "record docA_0 (line 2)" in message and "field 'set'" in message
  assert "has the document in 'valid'" in message


@pytest.mark.parametrize(
  "documents, message",
  [
    (
      [_document("docA", "train"), _document("docA", "train")],
      "record docA (line 3), field 'document_id': duplicate document "
      "(first at line 2)",
    ),
    ([_document("docA", "dev")], "record docA (line 2), field 'set'"),
    ([_document(" ", "train")], "record line 2, field 'document_id'"),
  ],
)
def test_bad_documents_csv_names_row_and_field(tmp_path, documents, message):
  text = _error(_write_dataset(tmp_path, documents=documents))
  assert "documents.csv" in text and message in text


def test_read_splits_in_one_pass_equals_one_split_at_a_time(tmp_path):
  root = _write_dataset(tmp_path)
  together = narrativeqa.read_narrativeqa_splits(root)
  assert list(together) == ["train", "valid", "test"]
  for split in narrativeqa.SPLITS:
    assert together[split] == narrativeqa.read_narrativeqa(root, split)
  assert together["train"].num_without_span == 1
  with pytest.raises(ValueError, match="Unknown split 'dev'"):
    narrativeqa.read_narrativeqa_splits(root, ("train", "dev"))


def test_missing_column_names_the_column(tmp_path):
  header = [c for c in _QAPS_HEADER if c != "answer2_tokenized"]
  rows = [row[:-1] for row in _QAPS]
  message = _error(_write_dataset(tmp_path, qaps=rows, qaps_header=header))
  assert "qaps.csv" in message
  assert "field 'answer2_tokenized'" in message
  assert "missing column" in message


def test_document_without_summary_names_row_and_field(tmp_path):
  qaps = [*_QAPS, _qa("docZ", "train", "q ?", "a", "b")]
  documents = [
    _document("docA", "train"),
    _document("docB", "test"),
    _document("docZ", "train"),
  ]
  message = _error(_write_dataset(tmp_path, qaps=qaps, documents=documents))
  assert "qaps.csv" in message
  assert "record docZ_0 (line 6)" in message
  assert "field 'document_id'" in message
  assert "no summary" in message


@pytest.mark.parametrize(
  "row, field",
  [
    (_qa("docA", "train", "  ", "a", "b"), "question_tokenized"),
    (_qa("docA", "train", "q ?", "a", ""), "answer2_tokenized"),
    (_qa("docA", "training", "q ?", "a", "b"), "set"),
  ],
)
def test_bad_qaps_row_names_file_row_and_field(tmp_path, row, field):
  qaps = [_QAPS[0], row]
  message = _error(_write_dataset(tmp_path, qaps=qaps))
  assert "qaps.csv" in message
  assert "record docA_1 (line 3)" in message
  assert f"field '{field}'" in message


def test_short_row_names_line(tmp_path):
  qaps = [_QAPS[0], ["docA", "train", "q ?"]]
  message = _error(_write_dataset(tmp_path, qaps=qaps))
  assert "record line 3" in message
  assert "3 fields, the header has 8" in message


def test_bad_summaries_name_document_and_field(tmp_path):
  message = _error(
    _write_dataset(tmp_path, summaries=[["docA", "train", "", "  "]])
  )
  assert "summaries.csv" in message
  assert "record docA (line 2)" in message
  assert "field 'summary_tokenized'" in message
  message = _error(
    _write_dataset(tmp_path, summaries=[*_SUMMARIES, _SUMMARIES[0]])
  )
  assert "record docA (line 4)" in message
  assert "duplicate summary (first at line 2)" in message


def test_invalid_utf8_names_line(tmp_path):
  root = _write_dataset(tmp_path)
  path = tmp_path / "qaps.csv"
  path.write_bytes(path.read_bytes() + b"docA,train,q,a,b,q \xff,a,b\n")
  message = _error(root)
  assert "qaps.csv" in message
  assert "invalid UTF-8 byte 0xff at line 6" in message


def test_empty_file_and_unknown_split(tmp_path):
  root = _write_dataset(tmp_path)
  (tmp_path / "qaps.csv").write_text("", encoding="utf-8")
  assert "no header row" in _error(root)
  with pytest.raises(ValueError, match="Unknown split 'dev'"):
    narrativeqa.read_narrativeqa(root, "dev")


def test_references_json_written_by_reader_round_trips(tmp_path):
  data = narrativeqa.read_narrativeqa(_write_dataset(tmp_path), "train")
  path = tmp_path / "refs.json"
  narrativeqa.write_references(str(path), data.references)
  assert json.loads(path.read_text(encoding="utf-8")) == data.references
