"""NarrativeQA (summary setting) as extractive `Record`s plus references.

Reads the layout of the official NarrativeQA repository
(github.com/deepmind/narrativeqa):

  DIR/documents.csv                         document_id, set, kind,
                                            story_url, ..., wiki_title, ...
  DIR/qaps.csv                              document_id, set, question,
                                            answer1, answer2,
                                            question_tokenized,
                                            answer1_tokenized,
                                            answer2_tokenized
  DIR/third_party/wikipedia/summaries.csv   document_id, set, summary,
                                            summary_tokenized

Only the tokenized columns are used (with `document_id` and `set`), so a
record's passage, question and span are the space-separated tokens the
NarrativeQA baselines worked on. `documents.csv` is the index of the
documents: every question's document must be listed there, in the same
split (`set`) as the question.

- passage: the first `max_passage_words` (800) whitespace words of
  `summary_tokenized`, joined by single spaces;
- question: `question_tokenized`;
- id: `<document_id>_<k>`, the document's k-th question (0-based) in file
  order over the whole `qaps.csv`, so ids do not depend on the split read.
  No `-` in ids: the adversarial metric groups ids by `-` prefixes;
- answers: the one passage span with the highest ROUGE-L against the two
  lowercased tokenized answers (COCO's ROUGE-L, beta 1.2, the metric
  NarrativeQA is scored with), at most `span_margin` words longer than the
  longest answer; ties go to the shorter, then the earlier span. A question
  whose answers share no word with the passage gets no span (`answers=()`);
  featurization skips such training examples and counts them as
  `no_answer`, and `NarrativeQASplit.num_without_span` counts them here.

The two reference answers (`answer1_tokenized`, `answer2_tokenized`) are kept
apart from the records for scoring with `a2d_tf.metrics.narrativeqa`;
`write_references` stores them as a JSON object `{id: [answer1, answer2]}`,
the DATASET file of `python -m a2d_tf.evaluate --task=narrativeqa`.

Bad input raises `DataError` naming the file, the record (question id and
line, or the line alone) and the column: a missing file or column, a row
with the wrong number of fields, an unknown split value, a question about a
document that `documents.csv` does not list or lists in another split, or
that has no summary, an empty question, answer or summary, a duplicate
summary or document, bytes that are not UTF-8. Only the rows of the splits
being read are checked beyond their `document_id` and `set`.

`read_narrativeqa_splits` reads several splits with one pass over the
files (what the pipeline's `--dataset=narrativeqa` does);
`read_narrativeqa` reads one.

Local paths are read without importing TensorFlow (the evaluation CLI stays
light); paths with a scheme (`gs://...`) go through `tf.io.gfile`.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import logging
import os
from collections.abc import Iterator, Mapping, Sequence

import numpy as np

from a2d_tf.data.records import Answer, DataError, Record

SPLITS = ("train", "valid", "test")
DOCUMENTS_FILE = "documents.csv"
QAPS_FILE = "qaps.csv"
SUMMARIES_FILE = os.path.join("third_party", "wikipedia", "summaries.csv")
MAX_PASSAGE_WORDS = 800
SPAN_MARGIN = 5
ROUGE_BETA = 1.2

_QAPS_COLUMNS = (
  "document_id",
  "set",
  "question_tokenized",
  "answer1_tokenized",
  "answer2_tokenized",
)
_SUMMARY_COLUMNS = ("document_id", "summary_tokenized")
_DOCUMENT_COLUMNS = ("document_id", "set")
_ANSWER_COLUMNS = ("answer1_tokenized", "answer2_tokenized")


@dataclasses.dataclass(frozen=True)
class NarrativeQASplit:
  """One split of NarrativeQA.

  Attributes:
    records: One record per question, in `qaps.csv` order; `answers` holds
      the best ROUGE-L span, or nothing when no span overlaps the answers.
    references: Question id -> the two tokenized reference answers, as in
      the file (the metric lowercases them).
    span_rouge_l: Question id -> COCO ROUGE-L in [0, 1] of the chosen span
      against the references (0 when there is none).
    num_without_span: Questions whose answers share no word with the
      passage.
  """

  records: list[Record]
  references: dict[str, list[str]]
  span_rouge_l: dict[str, float]
  num_without_span: int


@dataclasses.dataclass(frozen=True)
class _Row:
  """One checked `qaps.csv` row of the requested split."""

  id: str
  line: int
  document_id: str
  split: str
  question: str
  answers: tuple[str, str]


def _has_scheme(path: str) -> bool:
  return "://" in path


def _read_bytes(path: str) -> bytes:
  if _has_scheme(path):
    import tensorflow as tf  # Remote paths only; local reads stay TF-free.

    try:
      with tf.io.gfile.GFile(path, "rb") as f:
        return f.read()
    except tf.errors.NotFoundError as e:
      raise DataError(f"cannot open: {e.message}", path=path) from e
  try:
    with open(path, "rb") as f:
      return f.read()
  except OSError as e:
    raise DataError(f"cannot open: {e.strerror or e}", path=path) from e


def _is_dir(path: str) -> bool:
  if _has_scheme(path):
    import tensorflow as tf  # Remote paths only; local reads stay TF-free.

    return tf.io.gfile.isdir(path)
  return os.path.isdir(path)


def _decode(raw: bytes, path: str) -> str:
  try:
    return raw.decode("utf-8").removeprefix("\ufeff")
  except UnicodeDecodeError as e:
    line = raw.count(b"\n", 0, e.start) + 1
    raise DataError(
      f"invalid UTF-8 byte 0x{raw[e.start]:02x} at line {line}", path=path
    ) from e


def _csv_rows(
  path: str, columns: Sequence[str]
) -> Iterator[tuple[int, dict[str, str]]]:
  """Rows of a CSV file with a header, as (first line, column -> value).

  Raises:
    DataError: The file cannot be read or decoded, is empty, lacks one of
      `columns`, or a row has a different number of fields than the header.
  """
  text = _decode(_read_bytes(path), path)
  reader = csv.reader(io.StringIO(text, newline=""))
  try:
    header = next(reader)
  except StopIteration:
    raise DataError("file is empty (no header row)", path=path) from None
  except csv.Error as e:
    raise DataError(f"malformed CSV at line 1: {e}", path=path) from e
  for column in columns:
    if column not in header:
      raise DataError(
        f"missing column (header has {', '.join(header)})",
        path=path,
        field=column,
      )
  line = reader.line_num + 1
  while True:
    try:
      row = next(reader)
    except StopIteration:
      return
    except csv.Error as e:
      raise DataError(
        f"malformed CSV: {e}", path=path, record_id=f"line {line}"
      ) from e
    if row:
      if len(row) != len(header):
        raise DataError(
          f"row has {len(row)} fields, the header has {len(header)}",
          path=path,
          record_id=f"line {line}",
        )
      yield line, dict(zip(header, row, strict=True))
    line = reader.line_num + 1


def _check_splits(splits: Sequence[str]) -> None:
  for split in splits:
    if split not in SPLITS:
      raise ValueError(f"Unknown split {split!r}; expected one of {SPLITS}.")


def _qaps_rows(path: str, splits: Sequence[str]) -> Iterator[_Row]:
  """The checked rows of `splits` in `qaps.csv`, with their stable ids."""
  _check_splits(splits)
  counts: dict[str, int] = {}
  for line, row in _csv_rows(path, _QAPS_COLUMNS):
    document_id = row["document_id"].strip()
    if not document_id:
      raise DataError(
        "empty document id",
        path=path,
        record_id=f"line {line}",
        field="document_id",
      )
    index = counts.get(document_id, 0)
    counts[document_id] = index + 1
    qid = f"{document_id}_{index}"
    where = f"{qid} (line {line})"
    row_split = row["set"].strip()
    if row_split not in SPLITS:
      raise DataError(
        f"unknown split {row_split!r}; expected one of {', '.join(SPLITS)}",
        path=path,
        record_id=where,
        field="set",
      )
    if row_split not in splits:
      continue
    question = " ".join(row["question_tokenized"].split())
    if not question:
      raise DataError(
        "empty question", path=path, record_id=where, field="question_tokenized"
      )
    answers = []
    for column in _ANSWER_COLUMNS:
      answer = " ".join(row[column].split())
      if not answer:
        raise DataError(
          "empty answer", path=path, record_id=where, field=column
        )
      answers.append(answer)
    yield _Row(
      qid, line, document_id, row_split, question, (answers[0], answers[1])
    )


def _read_summaries(path: str) -> dict[str, tuple[int, str]]:
  """Document id -> (line, tokenized summary)."""
  summaries: dict[str, tuple[int, str]] = {}
  for line, row in _csv_rows(path, _SUMMARY_COLUMNS):
    document_id = row["document_id"].strip()
    where = f"{document_id} (line {line})" if document_id else f"line {line}"
    if not document_id:
      raise DataError(
        "empty document id", path=path, record_id=where, field="document_id"
      )
    if document_id in summaries:
      raise DataError(
        f"duplicate summary (first at line {summaries[document_id][0]})",
        path=path,
        record_id=where,
        field="document_id",
      )
    summaries[document_id] = (line, row["summary_tokenized"])
  return summaries


def _read_documents(path: str) -> dict[str, tuple[int, str]]:
  """Document id -> (line, split) from `documents.csv`."""
  documents: dict[str, tuple[int, str]] = {}
  for line, row in _csv_rows(path, _DOCUMENT_COLUMNS):
    document_id = row["document_id"].strip()
    where = f"{document_id} (line {line})" if document_id else f"line {line}"
    if not document_id:
      raise DataError(
        "empty document id", path=path, record_id=where, field="document_id"
      )
    if document_id in documents:
      raise DataError(
        f"duplicate document (first at line {documents[document_id][0]})",
        path=path,
        record_id=where,
        field="document_id",
      )
    split = row["set"].strip()
    if split not in SPLITS:
      raise DataError(
        f"unknown split {split!r}; expected one of {', '.join(SPLITS)}",
        path=path,
        record_id=where,
        field="set",
      )
    documents[document_id] = (line, split)
  return documents


def _check_document(
  row: _Row,
  documents: Mapping[str, tuple[int, str]],
  qaps_path: str,
  documents_path: str,
) -> None:
  """Checks that `documents.csv` lists the row's document in its split.

  Raises:
    DataError: The document is missing there or listed in another split.
  """
  where = f"{row.id} (line {row.line})"
  if row.document_id not in documents:
    raise DataError(
      f"document not listed in {documents_path}",
      path=qaps_path,
      record_id=where,
      field="document_id",
    )
  line, split = documents[row.document_id]
  if split != row.split:
    raise DataError(
      f"split {row.split!r}, but {documents_path} line {line} has the "
      f"document in {split!r}",
      path=qaps_path,
      record_id=where,
      field="set",
    )


def best_rouge_span(
  passage_words: Sequence[str],
  references: Sequence[Sequence[str]],
  max_span_len: int,
  beta: float = ROUGE_BETA,
) -> tuple[int, int, float] | None:
  """The passage span with the highest COCO ROUGE-L against references.

  The score of a span is COCO's ROUGE-L (`pycocoevalcap.rouge`): with
  `P = max_r LCS(span, r) / len(span)` and `R = max_r LCS(span, r) / len(r)`
  (maxima taken separately), `(1 + beta^2) P R / (R + beta^2 P)`. Words are
  compared exactly; lowercase both sides first to match the metric.

  A best span starts and ends with a word that occurs in some reference
  (dropping any other boundary word raises P and keeps R), so only those
  starts are scanned. For all of them at once, the LCS with each reference
  is extended one passage word at a time: with `row[j] = LCS(span, r[:j])`,
  appending a word `w` gives `cummax_j(max(row[j], row[j-1] + [w == r[j-1]]))`
  (the LCS recurrence, vectorised over starts). Cost:
  O(starts * max_span_len * sum(len(r))) element operations.

  Args:
    passage_words: The passage, one word per item.
    references: Reference answers, each a sequence of words; empty ones are
      ignored.
    max_span_len: Longest span considered, in words (at least 1).
    beta: ROUGE-L recall weight (1.2 in COCO).

  Returns:
    `(start, end, score)`, word positions with `end` inclusive, the highest
    score first, then the shortest span, then the earliest; None when no
    passage word occurs in a reference (every span scores 0).

  Raises:
    ValueError: `max_span_len` < 1.
  """
  if max_span_len < 1:
    raise ValueError(f"max_span_len must be >= 1, got {max_span_len}.")
  vocab: dict[str, int] = {}
  refs = [
    np.array([vocab.setdefault(w, len(vocab)) for w in ref], np.int32)
    for ref in references
    if len(ref)
  ]
  n = len(passage_words)
  if not refs or not n:
    return None
  ids = np.array([vocab.get(w, -1) for w in passage_words], np.int32)
  starts = np.flatnonzero(ids >= 0)
  if not starts.size:
    return None
  steps = min(max_span_len, n)
  positions = starts[:, None] + np.arange(steps)[None, :]
  inside = positions < n
  # Words past the passage end never match (-1 is no reference word).
  words = np.where(inside, ids[np.minimum(positions, n - 1)], -1)
  lengths = np.arange(1, steps + 1, dtype=np.float64)[None, :]
  precision = np.zeros((starts.size, steps))
  recall = np.zeros((starts.size, steps))
  for ref in refs:
    row = np.zeros((starts.size, ref.size + 1), np.int32)
    lcs = np.empty((starts.size, steps), np.int32)
    for t in range(steps):
      match = (words[:, t, None] == ref[None, :]).astype(np.int32)
      row[:, 1:] = np.maximum.accumulate(
        np.maximum(row[:, 1:], row[:, :-1] + match), axis=1
      )
      lcs[:, t] = row[:, -1]
    precision = np.maximum(precision, lcs / lengths)
    recall = np.maximum(recall, lcs / ref.size)
  b2 = beta * beta
  positive = (precision > 0) & (recall > 0) & inside
  with np.errstate(divide="ignore", invalid="ignore"):
    scores = np.where(
      positive,
      (1 + b2) * precision * recall / (recall + b2 * precision),
      -1.0,
    )
  best = scores.max()
  if best <= 0:
    return None
  rows, cols = np.nonzero(scores >= best - 1e-12)
  # Shortest first, then earliest start.
  pick = np.lexsort((starts[rows], cols))[0]
  start = int(starts[rows[pick]])
  length = int(cols[pick]) + 1
  return start, start + length - 1, float(scores[rows[pick], cols[pick]])


def _word_offsets(words: Sequence[str]) -> tuple[list[int], list[int]]:
  """Start and end offsets of `words` in `" ".join(words)`."""
  starts, ends, position = [], [], 0
  for word in words:
    starts.append(position)
    position += len(word)
    ends.append(position)
    position += 1
  return starts, ends


def read_narrativeqa(
  directory: str,
  split: str,
  max_passage_words: int = MAX_PASSAGE_WORDS,
  span_margin: int = SPAN_MARGIN,
) -> NarrativeQASplit:
  """Reads one split of NarrativeQA in the summary setting.

  Args:
    directory: The NarrativeQA repository root (local or `gs://`), holding
      `documents.csv`, `qaps.csv` and `third_party/wikipedia/summaries.csv`.
    split: "train", "valid" or "test".
    max_passage_words: Words of the tokenized summary kept as the passage.
    span_margin: A training span may be this many words longer than the
      longest reference answer.

  Returns:
    A `NarrativeQASplit` (see the module docstring for the fields).

  Raises:
    DataError: On bad input (see the module docstring).
    ValueError: On an unknown split or non-positive sizes.
  """
  return read_narrativeqa_splits(
    directory, (split,), max_passage_words, span_margin
  )[split]


def read_narrativeqa_splits(
  directory: str,
  splits: Sequence[str] = SPLITS,
  max_passage_words: int = MAX_PASSAGE_WORDS,
  span_margin: int = SPAN_MARGIN,
) -> dict[str, NarrativeQASplit]:
  """Reads several splits of NarrativeQA with one pass over the files.

  Args:
    directory: The NarrativeQA repository root (local or `gs://`), holding
      `documents.csv`, `qaps.csv` and `third_party/wikipedia/summaries.csv`.
    splits: Any of "train", "valid" and "test".
    max_passage_words: Words of the tokenized summary kept as the passage.
    span_margin: A training span may be this many words longer than the
      longest reference answer.

  Returns:
    Split -> `NarrativeQASplit`, in the order of `splits` (a split without
    questions has no records).

  Raises:
    DataError: On bad input (see the module docstring).
    ValueError: On an unknown split or non-positive sizes.
  """
  if max_passage_words < 1 or span_margin < 0:
    raise ValueError(
      "max_passage_words must be >= 1 and span_margin >= 0, got "
      f"{max_passage_words} and {span_margin}."
    )
  splits = tuple(dict.fromkeys(splits))
  _check_splits(splits)
  qaps_path = os.path.join(directory, QAPS_FILE)
  summaries_path = os.path.join(directory, SUMMARIES_FILE)
  documents_path = os.path.join(directory, DOCUMENTS_FILE)
  rows = list(_qaps_rows(qaps_path, splits))
  summaries = _read_summaries(summaries_path)
  documents = _read_documents(documents_path)
  passages: dict[str, tuple[str, list[str], tuple[list[int], list[int]]]] = {}
  records = {split: [] for split in splits}
  references = {split: {} for split in splits}
  span_rouge_l = {split: {} for split in splits}
  for row in rows:
    _check_document(row, documents, qaps_path, documents_path)
    if row.document_id not in passages:
      if row.document_id not in summaries:
        raise DataError(
          f"no summary for this document in {summaries_path}",
          path=qaps_path,
          record_id=f"{row.id} (line {row.line})",
          field="document_id",
        )
      summary_line, summary = summaries[row.document_id]
      words = summary.split()[:max_passage_words]
      if not words:
        raise DataError(
          "empty summary",
          path=summaries_path,
          record_id=f"{row.document_id} (line {summary_line})",
          field="summary_tokenized",
        )
      passages[row.document_id] = (
        " ".join(words),
        [w.lower() for w in words],
        _word_offsets(words),
      )
    context, lower_words, (char_starts, char_ends) = passages[row.document_id]
    answer_words = [answer.lower().split() for answer in row.answers]
    max_span_len = max(len(words) for words in answer_words) + span_margin
    span = best_rouge_span(lower_words, answer_words, max_span_len)
    answers: tuple[Answer, ...] = ()
    span_rouge_l[row.split][row.id] = 0.0
    if span is not None:
      start, end, score = span
      char_start, char_end = char_starts[start], char_ends[end]
      answers = (Answer(context[char_start:char_end], char_start),)
      span_rouge_l[row.split][row.id] = score
    records[row.split].append(
      Record(row.id, row.document_id, context, row.question, answers)
    )
    references[row.split][row.id] = list(row.answers)
  result = {}
  for split in splits:
    num_without_span = sum(1 for r in records[split] if not r.answers)
    logging.info(
      "NarrativeQA %s: %d questions on %d summaries, %d without an "
      "overlapping span",
      split,
      len(records[split]),
      len({r.title for r in records[split]}),
      num_without_span,
    )
    result[split] = NarrativeQASplit(
      records[split], references[split], span_rouge_l[split], num_without_span
    )
  return result


def read_references(path: str, split: str = "test") -> dict[str, list[str]]:
  """Reads reference answers for scoring.

  Args:
    path: A JSON object `{id: [answer, ...]}` (see `write_references`), or
      the NarrativeQA directory (or its `qaps.csv`), whose `split` rows give
      `[answer1_tokenized, answer2_tokenized]` under the ids
      `read_narrativeqa` assigns.
    split: The split read from a directory or CSV file.

  Returns:
    Question id -> reference answers, in file order.

  Raises:
    DataError: On unreadable or malformed input.
    ValueError: On an unknown split.
  """
  if _is_dir(path):
    path = os.path.join(path, QAPS_FILE)
  if path.endswith(".csv"):
    return {row.id: list(row.answers) for row in _qaps_rows(path, (split,))}
  raw = _read_bytes(path)
  try:
    doc = json.loads(_decode(raw, path))
  except json.JSONDecodeError as e:
    raise DataError(
      f"malformed JSON at line {e.lineno} column {e.colno}: {e.msg}",
      path=path,
    ) from e
  if not isinstance(doc, dict):
    raise DataError(
      f"expected a JSON object of id -> answers, got {type(doc).__name__}",
      path=path,
    )
  for qid, answers in doc.items():
    if (
      not isinstance(answers, list)
      or not answers
      or not all(isinstance(a, str) for a in answers)
    ):
      raise DataError(
        "expected a non-empty list of answer strings",
        path=path,
        record_id=qid,
        field="references",
      )
  return doc


def write_references(path: str, references: Mapping[str, Sequence[str]]):
  """Writes `{id: [answer, ...]}` as JSON, the input of `read_references`."""
  text = json.dumps({k: list(v) for k, v in references.items()}, indent=1)
  if _has_scheme(path):
    import tensorflow as tf  # Remote paths only; local writes stay TF-free.

    with tf.io.gfile.GFile(path, "w") as f:
      f.write(text)
    return
  with open(path, "w", encoding="utf-8") as f:
    f.write(text)
