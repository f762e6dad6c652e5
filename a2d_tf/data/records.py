"""The common example record every reader yields, and the data error type."""

from __future__ import annotations

import dataclasses


class DataError(ValueError):
  """Bad input data; the message names the file, record id and field."""

  def __init__(
    self,
    message: str,
    *,
    path: str = "",
    record_id: str = "",
    field: str = "",
  ):
    where = []
    if path:
      where.append(f"file {path}")
    if record_id:
      where.append(f"record {record_id}")
    if field:
      where.append(f"field '{field}'")
    prefix = ", ".join(where)
    super().__init__(f"{prefix}: {message}" if prefix else message)
    self.path = path
    self.record_id = record_id
    self.field = field


@dataclasses.dataclass(frozen=True)
class Answer:
  """One gold answer.

  Attributes:
    text: The answer text, equal to `context[start:start + len(text)]`.
    start: Character offset (Unicode code points) into the context.
  """

  text: str
  start: int


@dataclasses.dataclass(frozen=True)
class Record:
  """One question about one passage.

  Attributes:
    id: Unique question id (adversarial variants carry the original id plus a
      suffix such as `-high-conf-turk0`).
    title: Article title.
    context: The passage text.
    question: The question text.
    answers: Gold answers; may be empty only for prediction-time inputs.
  """

  id: str
  title: str
  context: str
  question: str
  answers: tuple[Answer, ...]
