"""What the teachers' knowledge carries beyond the gold labels.

A student learns from the ensemble only what the ensemble's soft answers
say beyond the gold span. On the teachers' own training set they may say
little more: teachers that fit their training questions put nearly all
their probability on the gold boundaries there, while on unseen questions
(dev) they spread it and disagree. These functions measure that, per split:

* `span_scores`: SQuAD EM / F1 (max over gold answers) of decoded spans,
  for each teacher and for the ensemble.
* `sharpness`: of the soft start / end distributions at tau (what KD
  trains on): the mean probability at the argmax, the mean entropy (nats),
  and the mean probability on the gold boundary, over examples and both
  ends.

`KnowledgeDiagnostics` accumulates them one example at a time:
`knowledge_diagnostics` feeds it the records of a knowledge artifact (the
training split, where the teachers have seen every question), the evaluate
step feeds it the teachers' outputs on dev. Both score answer texts decoded
by the one span decoder.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from a2d_tf import decoding
from a2d_tf.data import knowledge as knowledge_lib
from a2d_tf.data.records import DataError
from a2d_tf.metrics import squad

DIAGNOSTICS_FILE = "diagnostics.json"


def sharpness(probs: np.ndarray, gold: int | None = None) -> dict[str, float]:
  """Argmax probability, entropy (nats) and gold probability of one row.

  Args:
    probs: `[passage_len]` probabilities over the valid positions.
    gold: Gold position, or None / -1 when there is none.

  Returns:
    `max_prob`, `entropy` and (when `gold` is a valid position) `gold_prob`.
  """
  p = np.asarray(probs, dtype=np.float64)
  if p.ndim != 1 or p.size == 0:
    raise ValueError(f"expected a non-empty [passage_len] row, got {p.shape}")
  nonzero = p[p > 0]
  out = {
    "max_prob": float(p.max()),
    "entropy": float(-(nonzero * np.log(nonzero)).sum()),
  }
  if gold is not None and 0 <= gold < p.size:
    out["gold_prob"] = float(p[gold])
  return out


class _Mean:
  def __init__(self):
    self.total = 0.0
    self.count = 0

  def add(self, value: float) -> None:
    self.total += float(value)
    self.count += 1

  def value(self) -> float | None:
    return self.total / self.count if self.count else None


class KnowledgeDiagnostics:
  """Accumulates span scores and sharpness over one split's knowledge.

  Args:
    num_teachers: K.
  """

  def __init__(self, num_teachers: int):
    if num_teachers < 1:
      raise ValueError(f"num_teachers must be >= 1, received: {num_teachers}")
    self.num_teachers = num_teachers
    self._teacher_em = [_Mean() for _ in range(num_teachers)]
    self._teacher_f1 = [_Mean() for _ in range(num_teachers)]
    self._ensemble_em = _Mean()
    self._ensemble_f1 = _Mean()
    self._sharp = {k: _Mean() for k in ("max_prob", "entropy", "gold_prob")}
    self.examples = 0

  def add(
    self,
    teacher_texts: Sequence[str],
    ensemble_text: str,
    gold_answers: Sequence[str],
    soft_start: np.ndarray,
    soft_end: np.ndarray,
    gold_start: int | None = None,
    gold_end: int | None = None,
  ) -> None:
    """Adds one example.

    Args:
      teacher_texts: Each teacher's decoded answer text (K entries).
      ensemble_text: The ensemble's decoded answer text.
      gold_answers: Every gold answer text (an example without one adds
        sharpness only).
      soft_start: `[passage_len]` ensemble start distribution at tau.
      soft_end: `[passage_len]` ensemble end distribution at tau.
      gold_start: Gold start token (-1 / None: none in the passage).
      gold_end: Gold end token.
    """
    if len(teacher_texts) != self.num_teachers:
      raise ValueError(
        f"expected {self.num_teachers} teacher answers, got "
        f"{len(teacher_texts)}"
      )
    self.examples += 1
    if gold_answers:
      for t, text in enumerate(teacher_texts):
        em, f1 = _scores(text, gold_answers)
        self._teacher_em[t].add(em)
        self._teacher_f1[t].add(f1)
      em, f1 = _scores(ensemble_text, gold_answers)
      self._ensemble_em.add(em)
      self._ensemble_f1.add(f1)
    for row, gold in ((soft_start, gold_start), (soft_end, gold_end)):
      for key, value in sharpness(row, gold).items():
        self._sharp[key].add(value)

  def result(self) -> dict:
    """JSON-able summary, scores in percent.

    Returns:
      `examples`; `teachers`: one `{"exact_match", "f1"}` per teacher;
      `ensemble`: `{"exact_match", "f1"}`; `mean_argmax_prob`,
      `mean_entropy`, `mean_gold_prob` of the soft distributions at tau.
    """

    def pct(mean: _Mean) -> float | None:
      value = mean.value()
      return None if value is None else 100.0 * value

    return {
      "examples": self.examples,
      "teachers": [
        {"exact_match": pct(em), "f1": pct(f1)}
        for em, f1 in zip(self._teacher_em, self._teacher_f1, strict=True)
      ],
      "ensemble": {
        "exact_match": pct(self._ensemble_em),
        "f1": pct(self._ensemble_f1),
      },
      "mean_argmax_prob": self._sharp["max_prob"].value(),
      "mean_entropy": self._sharp["entropy"].value(),
      "mean_gold_prob": self._sharp["gold_prob"].value(),
    }


def _scores(text: str, gold_answers: Sequence[str]) -> tuple[float, float]:
  em = squad.metric_max_over_ground_truths(
    squad.exact_match_score, text, gold_answers
  )
  f1 = squad.metric_max_over_ground_truths(squad.f1_score, text, gold_answers)
  return float(em), float(f1)


def _ints(example: tf.train.Example, key: str) -> list[int]:
  return list(example.features.feature[key].int64_list.value)


def _float16(example: tf.train.Example, key: str) -> np.ndarray:
  data = example.features.feature[key].bytes_list.value[0]
  return np.frombuffer(data, dtype="<f2").astype(np.float64)


def knowledge_diagnostics(knowledge_dir: str) -> dict:
  """`KnowledgeDiagnostics.result()` of a knowledge artifact's records.

  Reads the records (`data.knowledge` format, with `teacher_spans` and
  `ensemble_span`) and the gold answers they were made against
  (`gold.jsonl` beside them).

  Args:
    knowledge_dir: The knowledge artifact's directory.

  Returns:
    The diagnostics dict (see `KnowledgeDiagnostics.result`).

  Raises:
    DataError: When there are no records, a record has no gold answers or
      lacks the span keys (knowledge written before they existed), or the
      teacher count differs between records (names file, record, field).
  """
  gold_path = os.path.join(knowledge_dir, knowledge_lib.GOLD_FILE)
  if not tf.io.gfile.exists(gold_path):
    raise DataError("the gold answers file is missing", path=gold_path)
  gold = {}
  with tf.io.gfile.GFile(gold_path) as f:
    for line in f:
      if line.strip():
        record_id, answers = knowledge_lib.parse_gold_line(line, gold_path)
        gold[record_id] = answers
  files = sorted(
    tf.io.gfile.glob(knowledge_lib.knowledge_pattern(knowledge_dir))
  )
  if not files:
    raise DataError("no knowledge records", path=knowledge_dir)
  acc = None
  for path in files:
    for raw in tf.data.TFRecordDataset(path, compression_type="GZIP"):
      example = tf.train.Example.FromString(raw.numpy())
      record_id = example.features.feature["id"].bytes_list.value[0].decode()
      if record_id not in gold:
        raise DataError(
          "no gold answers for this record", path=path, record_id=record_id
        )
      spans = _ints(example, "teacher_spans")
      ensemble_span = _ints(example, "ensemble_span")
      if not spans or len(spans) % 2 or len(ensemble_span) != 2:
        raise DataError(
          "no teacher spans: knowledge written by an older a2d; re-run "
          "the knowledge step",
          path=path,
          record_id=record_id,
          field="teacher_spans",
        )
      if acc is None:
        acc = KnowledgeDiagnostics(len(spans) // 2)
      elif len(spans) // 2 != acc.num_teachers:
        raise DataError(
          f"{len(spans) // 2} teachers, other records have {acc.num_teachers}",
          path=path,
          record_id=record_id,
          field="teacher_spans",
        )
      context, answers = gold[record_id]
      offsets = (
        _ints(example, "passage_char_starts"),
        _ints(example, "passage_char_ends"),
      )
      pairs = [spans[2 * t : 2 * t + 2] for t in range(len(spans) // 2)]
      acc.add(
        [decoding.span_text(context, *offsets, *p)[0] for p in pairs],
        decoding.span_text(context, *offsets, *ensemble_span)[0],
        answers,
        _float16(example, "teacher_start_probs"),
        _float16(example, "teacher_end_probs"),
        _ints(example, "start")[0],
        _ints(example, "end")[0],
      )
  return acc.result()


def write_diagnostics(knowledge_dir: str) -> dict:
  """Computes `knowledge_diagnostics` and writes it as `diagnostics.json`."""
  result = knowledge_diagnostics(knowledge_dir)
  with tf.io.gfile.GFile(
    os.path.join(knowledge_dir, DIAGNOSTICS_FILE), "w"
  ) as f:
    f.write(json.dumps(result, indent=2, sort_keys=True))
  return result
