"""The knowledge record format, its dataset, and the gold-answer file.

The knowledge step (`materialize.materialize_knowledge`) writes, per
`tf.train.Example` (GZIP TFRecords `knowledge-?????-of-?????.tfrecord.gz`),
every feature of the input record (`data.features`) unchanged, plus

* `teacher_start_probs`, `teacher_end_probs`: one bytes value, little-endian
  float16, `passage_len` values (valid positions only).
* `teacher_attention`: one bytes value, little-endian float16, the valid
  `hops x passage_len x question_len` block in row-major order.
* `teacher_attention_hops`: int64, the number of hops T.
* `confusing_start`, `confusing_end`: int64 token positions, -1 for none.
* `teacher_spans`: int64, `2 K` values: each teacher's best span (start,
  end) by the evaluation decoder at tau = 1, -1 for none.
* `ensemble_span`: int64, 2 values: the ensemble's best span (the decoder
  on the mean of the teachers' tau = 1 probabilities, as evaluation
  answers), -1 for none.

The two span keys are what `diagnostics.knowledge_diagnostics` scores
against the gold answers (how much the knowledge says beyond the gold
labels); the student does not read them. `KNOWLEDGE_SPEC` and
`parse_knowledge` read the student's keys, `add_knowledge` writes one
record, and `make_knowledge_dataset` yields the student's batches. The gold
answers the confusing spans are scored against travel as a JSON-lines file
(`write_gold_file`, `GOLD_FILE` beside the records).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import NamedTuple

import numpy as np
import tensorflow as tf

from a2d_tf.config import ExperimentConfig
from a2d_tf.data import dataset as dataset_lib
from a2d_tf.data.records import DataError, Record

RECORD_PREFIX = "knowledge"
RECORD_SUFFIX = ".tfrecord.gz"
STATS_FILE = "stats.json"
GOLD_FILE = "gold.jsonl"  # what the distill step writes beside the records

# The keys the knowledge step adds to every feature record.
KNOWLEDGE_SPEC: dict[str, tf.io.FixedLenFeature] = {
  "teacher_start_probs": tf.io.FixedLenFeature([], tf.string),
  "teacher_end_probs": tf.io.FixedLenFeature([], tf.string),
  "teacher_attention": tf.io.FixedLenFeature([], tf.string),
  "teacher_attention_hops": tf.io.FixedLenFeature([], tf.int64),
  "confusing_start": tf.io.FixedLenFeature([], tf.int64),
  "confusing_end": tf.io.FixedLenFeature([], tf.int64),
}


def knowledge_pattern(out_dir: str) -> str:
  """Glob matching every shard `materialize_knowledge` writes to `out_dir`."""
  return os.path.join(out_dir, f"{RECORD_PREFIX}-?????-of-?????{RECORD_SUFFIX}")


class GoldAnswers(NamedTuple):
  """What the confusing-answer search needs from the raw record.

  Attributes:
    context: The passage text the feature's char offsets point into.
    answers: Every gold answer text.
  """

  context: str
  answers: tuple[str, ...]


# Record id -> gold answers, as `GoldAnswers` or `(context, answer texts)`.
GoldMapping = Mapping[str, GoldAnswers | tuple[str, Sequence[str]]]


def gold_answers_from_records(
  records: Iterable[Record],
) -> dict[str, GoldAnswers]:
  """Returns `{record id: GoldAnswers}` for `materialize_knowledge`."""
  return {
    r.id: GoldAnswers(r.context, tuple(a.text for a in r.answers))
    for r in records
  }


def write_gold_file(
  gold_answers: GoldMapping,
  path: str,
) -> str:
  """Writes gold answers as JSON lines for `materialize_knowledge`.

  One line per record: `{"id", "context", "answers"}`. A Beam runner reads
  the file in parallel (`path` may be any `tf.io.gfile` path the workers can
  reach, e.g. `gs://`), so the gold answers of a large split never travel
  inside the pipeline graph. Returns `path`.
  """
  with tf.io.gfile.GFile(path, "w") as f:
    for record_id, gold in gold_answers.items():
      line = {"id": record_id, "context": gold[0], "answers": list(gold[1])}
      f.write(json.dumps(line, ensure_ascii=False) + "\n")
  return path


def parse_gold_line(
  line: str, path: str
) -> tuple[str, tuple[str, tuple[str, ...]]]:
  """One `write_gold_file` line as `(record id, (context, answers))`.

  Raises:
    DataError: On a malformed line (names `path` and the field).
  """
  try:
    value = json.loads(line)
    record_id = value["id"]
    gold = (value["context"], tuple(value["answers"]))
  except (ValueError, KeyError, TypeError) as e:
    raise DataError(
      f"bad gold-answer line {line[:80]!r}: {e!r}", path=path, field="answers"
    ) from e
  if not isinstance(record_id, str) or not isinstance(gold[0], str):
    raise DataError(
      f"bad gold-answer line {line[:80]!r}: id and context must be strings",
      path=path,
      field="id",
    )
  return record_id, gold


def encode_float16(values: np.ndarray) -> bytes:
  """Little-endian float16 bytes of `values` in row-major order."""
  return np.ascontiguousarray(values, dtype="<f2").tobytes()


def add_knowledge(
  example: tf.train.Example,
  start_probs: np.ndarray,
  end_probs: np.ndarray,
  attention: np.ndarray,
  confusing: tuple[int, int],
  teacher_spans: np.ndarray | Sequence[tuple[int, int]] = (),
  ensemble_span: tuple[int, int] = (-1, -1),
) -> tf.train.Example:
  """Returns a copy of `example` carrying one example's knowledge.

  Args:
    example: The feature record, copied unchanged.
    start_probs: `[passage_len]` ensemble start distribution (valid part).
    end_probs: `[passage_len]` ensemble end distribution (valid part).
    attention: `[hops, passage_len, question_len]` ensemble attention (valid
      block).
    confusing: `(start, end)` token span or `ensemble.NO_SPAN` (-1, -1).
    teacher_spans: `[K, 2]` each teacher's best span (-1, -1 for none).
    ensemble_span: The ensemble's best span.

  Returns:
    A new `tf.train.Example` in the format of `KNOWLEDGE_SPEC`.
  """
  attention = np.asarray(attention)
  if attention.ndim != 3 or attention.shape[1] != len(start_probs):
    raise ValueError(
      f"attention must be [hops, {len(start_probs)}, question_len], got "
      f"shape {attention.shape}."
    )
  out = tf.train.Example()
  out.CopyFrom(example)
  feature = out.features.feature
  feature["teacher_start_probs"].bytes_list.value.append(
    encode_float16(start_probs)
  )
  feature["teacher_end_probs"].bytes_list.value.append(
    encode_float16(end_probs)
  )
  feature["teacher_attention"].bytes_list.value.append(
    encode_float16(attention)
  )
  feature["teacher_attention_hops"].int64_list.value.append(attention.shape[0])
  feature["confusing_start"].int64_list.value.append(int(confusing[0]))
  feature["confusing_end"].int64_list.value.append(int(confusing[1]))
  spans = np.asarray(teacher_spans, dtype=np.int64).reshape(-1)
  feature["teacher_spans"].int64_list.value.extend(int(v) for v in spans)
  feature["ensemble_span"].int64_list.value.extend(
    int(v) for v in ensemble_span
  )
  return out


def parse_knowledge(parsed: Mapping[str, tf.Tensor]) -> dict[str, tf.Tensor]:
  """Decodes the `KNOWLEDGE_SPEC` features of one parsed record.

  The `extra_parse` hook of `dataset.make_dataset` / `features.parse_example`
  (graph mode). With `passage_len` and `question_len` in `parsed` (as the
  hook provides) the stored sizes are checked against them; without them
  they are taken from the stored values (passage_len = number of start
  probabilities, question_len = attention values / (hops * passage_len)).

  Args:
    parsed: The raw `KNOWLEDGE_SPEC` values of one record, optionally with
      the parsed feature keys.

  Returns:
    `teacher_start_probs`, `teacher_end_probs` float32 `[passage_len]`,
    `teacher_attention` float32 `[hops, passage_len, question_len]`,
    `confusing_start`, `confusing_end` int32 scalars.
  """

  def decode(key):
    raw = tf.io.decode_raw(parsed[key], tf.float16, little_endian=True)
    return tf.cast(raw, tf.float32)

  start = decode("teacher_start_probs")
  end = decode("teacher_end_probs")
  hops = tf.cast(parsed["teacher_attention_hops"], tf.int32)
  passage_len = tf.size(start, out_type=tf.int32)
  question_len = tf.constant(-1, tf.int32)
  checks = [
    tf.debugging.assert_equal(
      tf.size(end, out_type=tf.int32),
      passage_len,
      message="teacher_end_probs and teacher_start_probs differ in length",
    )
  ]
  if "passage_len" in parsed:
    checks.append(
      tf.debugging.assert_equal(
        passage_len,
        tf.cast(parsed["passage_len"], tf.int32),
        message="teacher_start_probs length != passage_len; was the "
        "knowledge written from other feature records?",
      )
    )
  if "question_len" in parsed:
    question_len = tf.cast(parsed["question_len"], tf.int32)
  with tf.control_dependencies(checks):
    attention = tf.reshape(
      decode("teacher_attention"), tf.stack([hops, passage_len, question_len])
    )
  return {
    "teacher_start_probs": start,
    "teacher_end_probs": end,
    "teacher_attention": attention,
    "confusing_start": tf.cast(parsed["confusing_start"], tf.int32),
    "confusing_end": tf.cast(parsed["confusing_end"], tf.int32),
  }


# The passage and question axes of the batched knowledge keys, for padding
# batches onto `runtime.pad_to_bucket`'s length grid.
KNOWLEDGE_LENGTH_AXES = {
  "teacher_start_probs": {1: dataset_lib.PASSAGE},
  "teacher_end_probs": {1: dataset_lib.PASSAGE},
  "teacher_attention": {2: dataset_lib.PASSAGE, 3: dataset_lib.QUESTION},
}


def make_knowledge_dataset(
  pattern: str,
  config: ExperimentConfig,
  batch_size: int,
  training: bool,
  seed: int | None = None,
  with_metadata: bool = False,
  cache: bool = False,
  epoch: tf.Variable | None = None,
) -> tf.data.Dataset:
  """Student input: model-input batches plus the knowledge keys.

  Args:
    pattern: Glob of the knowledge TFRecords (`knowledge_pattern(out_dir)`).
    config: The experiment config (data section used for batching).
    batch_size: Examples per batch.
    training: Shuffle, bucket and repeat as the dataset module does for
      training.
    seed: Shuffle seed.
    with_metadata: Also yield `id`, `passage_char_starts/ends`.
    cache: Keep the parsed knowledge in memory after the first pass (see
      `dataset.make_dataset`; about 4 KB per example at the small preset).
    epoch: Optional `dataset.epoch_variable()` the training order reads its
      epoch from (see `dataset.make_dataset`).

  Batches are padded onto `dataset.length_grid(config)` when the runtime
  asks for it (`runtime.pad_to_bucket`).

  Returns:
    A dataset of flat dicts: the `dataset.make_dataset` keys plus
    `teacher_start_probs`, `teacher_end_probs` float32 `[batch, passage_len]`,
    `teacher_attention` float32 `[batch, hops, passage_len, question_len]`
    and `confusing_start`, `confusing_end` int32 `[batch]`.
  """
  return dataset_lib.make_dataset(
    pattern,
    config.data,
    batch_size=batch_size,
    training=training,
    seed=seed,
    with_metadata=with_metadata,
    extra_spec=KNOWLEDGE_SPEC,
    extra_parse=parse_knowledge,
    cache=cache,
    pad_to=dataset_lib.length_grid(config),
    length_axes=KNOWLEDGE_LENGTH_AXES,
    epoch=epoch,
  )
