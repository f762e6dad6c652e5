"""Readers and a writer for SQuAD v1.1 data as `Record`s.

`read_squad_json` reads the official SQuAD v1.1 JSON layout, which Adversarial
SQuAD (AddSent, AddOneSent) shares; files are opened with `tf.io.gfile`, so
`gs://` paths work. Bad input raises `DataError` naming the file, the record
(question id, or a JSON location such as `data[0].paragraphs[2]` when no id is
known) and the field.

An answer whose text differs from `context[answer_start:][:len(text)]` is not
an error here: the record is kept as it is and featurization skips such
training examples and counts them by reason.

`read_tfds_squad` loads the `squad/v1.1` TensorFlow Datasets builder and
`write_squad_json` writes records back in the official layout.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import tensorflow as tf

from a2d_tf.data.records import Answer, DataError, Record

# Lone UTF-16 surrogates: undecodable bytes after `surrogateescape` decoding,
# or `\udXXX` escapes in the JSON text; neither is valid Unicode text.
_SURROGATE = re.compile("[\ud800-\udfff]")


def _line_col(text: str, index: int) -> tuple[int, int]:
  """1-based line and column of `text[index]`."""
  line = text.count("\n", 0, index) + 1
  col = index - (text.rfind("\n", 0, index) + 1) + 1
  return line, col


def _decode(raw: bytes) -> tuple[str, str]:
  """Decodes UTF-8, keeping undecodable bytes as lone surrogates.

  Returns:
    The text and, if some bytes were not valid UTF-8, a description of where
    the first of them is (`""` otherwise).
  """
  try:
    return raw.decode("utf-8"), ""
  except UnicodeDecodeError as e:
    text = raw.decode("utf-8", errors="surrogateescape")
    prefix = raw[: e.start].decode("utf-8", errors="surrogateescape")
    line, col = _line_col(text, len(prefix))
    where = (
      f"invalid UTF-8 byte 0x{raw[e.start]:02x} at line {line} column {col}"
    )
    return text, where


class _Reader:
  """Validates one parsed SQuAD JSON document into records."""

  def __init__(self, path: str, bad_bytes: str, require_answers: bool):
    self._path = path
    self._bad_bytes = bad_bytes
    self._require_answers = require_answers

  def error(self, message: str, record_id: str, field: str) -> DataError:
    return DataError(message, path=self._path, record_id=record_id, field=field)

  def get(
    self,
    obj: Mapping[str, Any],
    key: str,
    kind: type,
    record_id: str,
    field: str = "",
  ) -> Any:
    """`obj[key]`, checked to exist and to be of `kind`."""
    field = field or key
    if key not in obj:
      raise self.error("missing field", record_id, field)
    value = obj[key]
    # JSON true/false are Python bools, which are ints too.
    if not isinstance(value, kind) or isinstance(value, bool):
      raise self.error(
        f"expected {kind.__name__}, got {type(value).__name__}",
        record_id,
        field,
      )
    return value

  def text(
    self,
    obj: Mapping[str, Any],
    key: str,
    record_id: str,
    field: str = "",
    allow_blank: bool = False,
  ) -> str:
    """A string field, checked for invalid bytes and (optionally) blankness."""
    field = field or key
    value = self.get(obj, key, str, record_id, field)
    match = _SURROGATE.search(value)
    if match and self._bad_bytes and "\udc80" <= match.group() <= "\udcff":
      raise self.error(
        "contains bytes that are not valid UTF-8 (first bad byte of the "
        f"file: {self._bad_bytes})",
        record_id,
        field,
      )
    if match:
      raise self.error(
        f"lone surrogate at character {match.start()} is not valid Unicode",
        record_id,
        field,
      )
    if not allow_blank and not value.strip():
      raise self.error("empty or whitespace-only string", record_id, field)
    return value

  def records(self, doc: Any) -> list[Record]:
    """All records of a parsed document, in file order."""
    if not isinstance(doc, dict):
      raise self.error(
        f"top level must be a JSON object, got {type(doc).__name__}", "", ""
      )
    articles = self.get(doc, "data", list, "", "data")
    records: list[Record] = []
    seen: dict[str, str] = {}
    for i, article in enumerate(articles):
      loc = f"data[{i}]"
      if not isinstance(article, dict):
        raise self.error("expected an object", loc, "data")
      title = ""
      if "title" in article:
        title = self.text(article, "title", loc, allow_blank=True)
      paragraphs = self.get(article, "paragraphs", list, loc)
      for j, paragraph in enumerate(paragraphs):
        records.extend(
          self.paragraph(paragraph, f"{loc}.paragraphs[{j}]", title, seen)
        )
    return records

  def paragraph(
    self, paragraph: Any, loc: str, title: str, seen: dict[str, str]
  ) -> list[Record]:
    """The records of one paragraph; `seen` maps ids read so far to places."""
    if not isinstance(paragraph, dict):
      raise self.error("expected an object", loc, "paragraphs")
    qas = self.get(paragraph, "qas", list, loc)
    # Paragraph-level errors name the paragraph's first question id if any.
    first_id = ""
    if qas and isinstance(qas[0], dict) and isinstance(qas[0].get("id"), str):
      first_id = qas[0]["id"]
    where = f"{first_id} ({loc})" if first_id else loc
    context = self.text(paragraph, "context", where)
    out = []
    for k, qa in enumerate(qas):
      qa_loc = f"{loc}.qas[{k}]"
      if not isinstance(qa, dict):
        raise self.error("expected an object", qa_loc, "qas")
      qid = self.text(qa, "id", qa_loc)
      if qid in seen:
        raise self.error(
          f"duplicate id (first at {seen[qid]}, again at {qa_loc})", qid, "id"
        )
      seen[qid] = qa_loc
      question = self.text(qa, "question", qid)
      answers = self.answers(qa, qid, context)
      out.append(Record(qid, title, context, question, answers))
    return out

  def answers(
    self, qa: Mapping[str, Any], qid: str, context: str
  ) -> tuple[Answer, ...]:
    """The checked answers of one question."""
    if "answers" not in qa and not self._require_answers:
      return ()
    items = self.get(qa, "answers", list, qid)
    if not items and self._require_answers:
      raise self.error("no answers", qid, "answers")
    answers = []
    for n, item in enumerate(items):
      field = f"answers[{n}]"
      if not isinstance(item, dict):
        raise self.error("expected an object", qid, field)
      text = self.text(item, "text", qid, f"{field}.text", allow_blank=True)
      if not text:
        raise self.error("empty answer text", qid, f"{field}.text")
      start = self.get(item, "answer_start", int, qid, f"{field}.answer_start")
      if start < 0 or start + len(text) > len(context):
        raise self.error(
          f"answer_start {start} with answer length {len(text)} is out of "
          f"range for a context of {len(context)} characters",
          qid,
          f"{field}.answer_start",
        )
      answers.append(Answer(text, start))
    return tuple(answers)


def read_squad_json(path: str, require_answers: bool = True) -> list[Record]:
  """Reads a SQuAD v1.1 (or Adversarial SQuAD) JSON file.

  Args:
    path: Local or `gs://` path of the JSON file.
    require_answers: If true (training and evaluation data), every question
      needs a non-empty `answers` list. If false (prediction input), `answers`
      may be missing or empty; answers that are present are still checked.

  Returns:
    One record per question, in file order. Answers keep the file's text and
    offset; a text that does not match the context at its offset is left for
    featurization to skip and count.

  Raises:
    DataError: On a missing or empty file, malformed JSON (with line and
      column), bytes that are not UTF-8, a missing or mistyped field, a blank
      context or question, an answer offset that is negative or past the end
      of the context, or a duplicate question id.
  """
  try:
    with tf.io.gfile.GFile(path, "rb") as f:
      raw = f.read()
  except tf.errors.NotFoundError as e:
    raise DataError(f"cannot open: {e.message}", path=path) from e
  if not raw.strip():
    raise DataError("file is empty", path=path)
  text, bad_bytes = _decode(raw)
  text = text.removeprefix("\ufeff")
  try:
    doc = json.loads(text)
  except json.JSONDecodeError as e:
    message = f"malformed JSON at line {e.lineno} column {e.colno}: {e.msg}"
    if bad_bytes:
      message += f" (and {bad_bytes})"
    raise DataError(message, path=path) from e
  records = _Reader(path, bad_bytes, require_answers).records(doc)
  if bad_bytes:
    # The bad bytes sit in a part of the file no record field reads.
    raise DataError(bad_bytes, path=path)
  return records


def _tfds_text(value: Any) -> str:
  return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def read_tfds_squad(
  split: str,
  data_dir: str | None = None,
  max_examples: int | None = None,
) -> list[Record]:
  """Loads SQuAD v1.1 through TensorFlow Datasets (`squad/v1.1`).

  The TFDS data was validated when the builder prepared it, so checks here
  are light: answer texts and offsets are paired up to the shorter of the two
  lists and kept as they are (featurization skips answers that do not match
  their context), and only duplicate ids are rejected.

  Args:
    split: A TFDS split string, e.g. `"train"`, `"validation[:10%]"`.
    data_dir: TFDS data directory (downloaded and prepared there if needed);
      the TFDS default when `None`.
    max_examples: Read at most this many examples; all if `None`.

  Returns:
    One record per question, in dataset order.

  Raises:
    DataError: On duplicate ids.
  """
  import tensorflow_datasets as tfds  # Heavy import; only this reader uses it.

  dataset = tfds.load("squad/v1.1", split=split, data_dir=data_dir)
  if max_examples is not None:
    dataset = dataset.take(max_examples)
  source = f"tfds:squad/v1.1:{split}"
  records: list[Record] = []
  seen: set[str] = set()
  unpaired = 0
  for example in tfds.as_numpy(dataset):
    qid = _tfds_text(example["id"])
    if qid in seen:
      raise DataError("duplicate id", path=source, record_id=qid, field="id")
    seen.add(qid)
    texts = list(example["answers"]["text"])
    starts = list(example["answers"]["answer_start"])
    unpaired += len(texts) != len(starts)
    answers = tuple(
      Answer(_tfds_text(t), int(s)) for t, s in zip(texts, starts, strict=False)
    )
    records.append(
      Record(
        id=qid,
        title=_tfds_text(example["title"]),
        context=_tfds_text(example["context"]),
        question=_tfds_text(example["question"]),
        answers=answers,
      )
    )
  if unpaired:
    logging.warning(
      "%s: %d examples had different numbers of answer texts and offsets",
      source,
      unpaired,
    )
  return records


def to_squad_json(
  records: Iterable[Record], version: str = "1.1"
) -> dict[str, Any]:
  """The official SQuAD layout of `records`, as a JSON-able dict.

  Records are grouped into articles by title and into paragraphs by context,
  both in order of first appearance.
  """
  articles: dict[str, dict[str, list[dict[str, Any]]]] = {}
  for record in records:
    paragraphs = articles.setdefault(record.title, {})
    paragraphs.setdefault(record.context, []).append(
      {
        "answers": [
          {"answer_start": a.start, "text": a.text} for a in record.answers
        ],
        "question": record.question,
        "id": record.id,
      }
    )
  data = [
    {
      "title": title,
      "paragraphs": [
        {"context": context, "qas": qas} for context, qas in paragraphs.items()
      ],
    }
    for title, paragraphs in articles.items()
  ]
  return {"data": data, "version": version}


def write_squad_json(
  records: Sequence[Record], path: str, version: str = "1.1"
) -> None:
  """Writes records as an official SQuAD v1.1 JSON file.

  Records are grouped by title, then by context, in order of first
  appearance, so reading the file back gives the same records in the same
  order whenever records of one title and context are contiguous. The file is
  written to a temporary name and renamed into place.

  Args:
    records: The records to write.
    path: Local or `gs://` destination; parent directories are created.
    version: Value of the top-level `version` field.
  """
  parent = os.path.dirname(path)
  if parent:
    tf.io.gfile.makedirs(parent)
  payload = json.dumps(to_squad_json(records, version), ensure_ascii=False)
  tmp = f"{path}.tmp-{os.getpid()}"
  with tf.io.gfile.GFile(tmp, "wb") as f:
    f.write(payload.encode("utf-8"))
  tf.io.gfile.rename(tmp, path, overwrite=True)
