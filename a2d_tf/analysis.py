"""The paper's analyses of a trained student, as tables and data.

* `f1_by_question_type`: Figure 4, F1 per question type (what, who, which,
  when, where, why, how, other) of the single teacher and the student, from
  their official-format predictions.
* `case_study`: Figure 3, one example as the teachers (their mean) and the
  student see it: alignment attention `[hops, passage_len, question_len]`
  and start/end probabilities.

The figures are drawn by `a2d_tf.figures`; the ablation table (Table 5) is
built by `a2d_tf.ablations`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from a2d_tf import decoding, ensemble, masking
from a2d_tf.data import features, question_types, tokenization
from a2d_tf.data.records import DataError, Record
from a2d_tf.metrics import squad as squad_metrics
from a2d_tf.models import reader as reader_lib

# The systems compared in Figure 4, with their legend labels.
TYPE_SYSTEMS = {"single": "single teacher", "student": "A2D student"}


def f1_by_question_type(
  squad_data: list,
  predictions: Mapping[str, Mapping[str, str]],
) -> dict[str, Any]:
  """F1 per question type of each system (the paper's Figure 4).

  Args:
    squad_data: The `data` list of a SQuAD v1.1 set (questions and answers).
    predictions: System name -> official-format predictions (id -> text).

  Returns:
    A JSON-able dict: `systems` (names in the given order), `types` (one
    entry per `question_types.QUESTION_TYPES` type, in that order: `type`,
    `count`, and `f1` system -> percent, None when the set has no such
    question) and `overall` (system -> F1 percent over all questions).
  """
  questions = list(squad_metrics.iter_questions(squad_data))
  by_type: dict[str, list[str]] = {t: [] for t in question_types.QUESTION_TYPES}
  for question in questions:
    by_type[question_types.question_type(question.question)].append(question.id)
  details = {
    system: squad_metrics.evaluate_with_details(squad_data, answers)
    for system, answers in predictions.items()
  }
  types = []
  for name, ids in by_type.items():
    f1 = {
      system: (
        100.0 * sum(result.f1_by_id[i] for i in ids) / len(ids) if ids else None
      )
      for system, result in details.items()
    }
    types.append({"type": name, "count": len(ids), "f1": f1})
  return {
    "systems": list(predictions),
    "types": types,
    "overall": {system: result.f1 for system, result in details.items()},
  }


def render_question_types_markdown(
  table: Mapping[str, Any],
  labels: Mapping[str, str] | None = None,
) -> str:
  """The per-type table as Markdown (types without questions show "–")."""
  labels = {**TYPE_SYSTEMS, **(labels or {})}
  systems = table["systems"]
  lines = [
    "# F1 by question type",
    "",
    "| type | questions | "
    + " | ".join(f"{labels.get(s, s)} F1" for s in systems)
    + " |",
    "|---" * (2 + len(systems)) + "|",
  ]
  for entry in table["types"]:
    cells = [
      "–" if entry["f1"][s] is None else f"{entry['f1'][s]:.1f}"
      for s in systems
    ]
    lines.append(
      f"| {entry['type']} | {entry['count']} | " + " | ".join(cells) + " |"
    )
  total = sum(entry["count"] for entry in table["types"])
  overall = [f"{table['overall'][s]:.1f}" for s in systems]
  lines.append(f"| all | {total} | " + " | ".join(overall) + " |")
  lines.append("")
  return "\n".join(lines)


def choose_case_id(squad_data: list, predictions: Mapping[str, str]) -> str:
  """A default example for the case study.

  The first question (file order) the system answers exactly, else its
  best-F1 question, else the first question: a case where the student's
  attention can be compared with the teachers' on a right answer.
  """
  result = squad_metrics.evaluate_with_details(squad_data, predictions)
  ids = list(result.f1_by_id)
  for qid in ids:
    if result.exact_match_by_id[qid] == 1.0:
      return qid
  return max(ids, key=lambda qid: result.f1_by_id[qid])


def find_example(dataset: tf.data.Dataset, example_id: str) -> dict:
  """The batch row of one example, cut to its own lengths.

  Args:
    dataset: Batches made with `with_metadata=True`.
    example_id: The question id.

  Returns:
    A batch dict of one example, every tensor cut to its passage and
    question lengths.

  Raises:
    DataError: No batch holds the id.
  """
  wanted = example_id.encode("utf-8")
  for batch in dataset:
    ids = list(batch["id"].numpy())
    if wanted not in ids:
      continue
    row = ids.index(wanted)
    lp = int(batch["passage_len"][row])
    lq = int(batch["question_len"][row])
    example = {}
    for key, value in batch.items():
      value = value[row : row + 1]
      if key.startswith("passage_") and value.shape.rank >= 2:
        value = value[:, :lp]
      elif key.startswith("question_") and value.shape.rank >= 2:
        value = value[:, :lq]
      example[key] = value
    return example
  raise DataError("no such example in the features", record_id=example_id)


@dataclasses.dataclass(frozen=True)
class CaseStudy:
  """One example as the teachers and the student see it (Figure 3).

  Attributes:
    id: Question id.
    question: Question text.
    answers: Gold answer texts.
    passage_tokens: The passage tokens the models read, `[passage_len]`.
    question_tokens: The question tokens, `[question_len]`.
    gold_span: (first, last) passage token of the first gold answer;
      (-1, -1) when it is not within the passage the models read.
    num_teachers: K, the teachers averaged.
    teacher_attention: float32 `[hops, passage_len, question_len]`, the mean
      over the teachers of their alignment distributions.
    student_attention: float32 `[hops, passage_len, question_len]`.
    teacher_start_probs: float32 `[passage_len]`, the teachers' mean
      probability at temperature 1 (what the ensemble decodes).
    teacher_end_probs: float32 `[passage_len]`.
    student_start_probs: float32 `[passage_len]`.
    student_end_probs: float32 `[passage_len]`.
    teacher_span: (first, last) token of the ensemble's answer.
    student_span: (first, last) token of the student's answer.
    teacher_answer: The ensemble's answer text.
    student_answer: The student's answer text.
  """

  id: str
  question: str
  answers: tuple[str, ...]
  passage_tokens: tuple[str, ...]
  question_tokens: tuple[str, ...]
  gold_span: tuple[int, int]
  num_teachers: int
  teacher_attention: np.ndarray
  student_attention: np.ndarray
  teacher_start_probs: np.ndarray
  teacher_end_probs: np.ndarray
  student_start_probs: np.ndarray
  student_end_probs: np.ndarray
  teacher_span: tuple[int, int]
  student_span: tuple[int, int]
  teacher_answer: str
  student_answer: str

  def to_json(self) -> dict[str, Any]:
    """JSON-able primitives (arrays as nested lists, 6 decimals)."""
    return {
      field.name: (
        np.round(getattr(self, field.name).astype(np.float64), 6).tolist()
        if isinstance(getattr(self, field.name), np.ndarray)
        else getattr(self, field.name)
      )
      for field in dataclasses.fields(self)
    }


def _forward(models: Sequence[keras.Model], example: dict) -> tuple:
  inputs = reader_lib.model_inputs(example)
  outputs = [m(inputs, training=False) for m in models]
  mask = masking.sequence_mask(
    example["passage_len"], tf.shape(outputs[0]["start_logits"])[1]
  )
  start = ensemble.ensemble_probs([o["start_logits"] for o in outputs], mask, 1)
  end = ensemble.ensemble_probs([o["end_logits"] for o in outputs], mask, 1)
  attention = ensemble.ensemble_attention([o["attention"] for o in outputs])
  return attention[0].numpy(), start[0].numpy(), end[0].numpy()


def case_study(
  teachers: Sequence[keras.Model],
  student: keras.Model,
  example: dict,
  record: Record,
  max_answer_len: int,
) -> CaseStudy:
  """Runs the teachers and the student on one example.

  Args:
    teachers: The K teacher readers (their outputs are averaged).
    student: The student reader.
    example: One example from `find_example` (metadata included).
    record: Its raw record (question, context, answers).
    max_answer_len: Longest decoded span in tokens.

  Returns:
    The `CaseStudy`.
  """
  if not teachers:
    raise ValueError("case_study needs at least one teacher, got none.")
  lp = int(example["passage_len"][0])
  lq = int(example["question_len"][0])
  starts = example["passage_char_starts"][0].numpy()
  ends = example["passage_char_ends"][0].numpy()
  passage_tokens = tuple(
    record.context[int(s) : int(e)] for s, e in zip(starts, ends, strict=True)
  )
  question_tokens = tuple(
    t.text for t in tokenization.tokenize(record.question)[:lq]
  )
  t_att, t_start, t_end = _forward(teachers, example)
  s_att, s_start, s_end = _forward([student], example)

  def decode(start_probs, end_probs) -> tuple[tuple[int, int], str]:
    spans, _ = decoding.best_spans(
      start_probs[None], end_probs[None], np.array([lp]), max_answer_len
    )
    first, last = int(spans[0, 0]), int(spans[0, 1])
    text, _, _ = decoding.span_text(record.context, starts, ends, first, last)
    return (first, last), text

  teacher_span, teacher_answer = decode(t_start, t_end)
  student_span, student_answer = decode(s_start, s_end)
  gold = None
  if record.answers:
    answer = record.answers[0]
    gold = features.answer_token_span(
      [
        tokenization.Token(t, int(s), int(e))
        for t, s, e in zip(passage_tokens, starts, ends, strict=True)
      ],
      answer.start,
      answer.start + len(answer.text),
    )
  return CaseStudy(
    id=record.id,
    question=record.question,
    answers=tuple(a.text for a in record.answers),
    passage_tokens=passage_tokens,
    question_tokens=question_tokens,
    gold_span=gold or (-1, -1),
    num_teachers=len(teachers),
    teacher_attention=t_att,
    student_attention=s_att,
    teacher_start_probs=t_start,
    teacher_end_probs=t_end,
    student_start_probs=s_start,
    student_end_probs=s_end,
    teacher_span=teacher_span,
    student_span=student_span,
    teacher_answer=teacher_answer,
    student_answer=student_answer,
  )
