"""Teacher knowledge for A2D: soft answers, attention and confusing answers.

K teachers (one architecture, different seeds) are run once over the training
features, and what the student learns from is written next to the original
features, so the student's train step never runs a teacher:

* `teacher_start_probs`, `teacher_end_probs`: the arithmetic mean over the
  teachers of their masked `softmax(logits / tau)`, tau =
  `distill.temperature` (a mean of probabilities, never of logits).
* `teacher_attention`: the arithmetic mean over the teachers of their
  interactive-alignment distributions `[hops, passage_len, question_len]`.
* `confusing_start`, `confusing_end`: among every teacher's top-K spans (the
  evaluation decoder at tau = 1, confidence `p_start * p_end`), the most
  confident span whose SQuAD token F1 is 0 against every gold answer; -1 / -1
  when no such span exists.

The pure functions (`ensemble_probs`, `ensemble_attention`,
`select_confusing_span`) hold the method; `materialize_knowledge` is the
Apache Beam pipeline that applies it (DirectRunner here, Dataflow, Flink or
Spark unchanged through `beam_pipeline_args`); `KNOWLEDGE_SPEC` and
`parse_knowledge` document and read the stored format, and
`make_knowledge_dataset` yields student batches.

Stored format, per `tf.train.Example` (GZIP TFRecords): every feature of the
input record unchanged, plus

* `teacher_start_probs`, `teacher_end_probs`: one bytes value, little-endian
  float16, `passage_len` values (valid positions only).
* `teacher_attention`: one bytes value, little-endian float16, the valid
  `hops x passage_len x question_len` block in row-major order.
* `teacher_attention_hops`: int64, the number of hops T.
* `confusing_start`, `confusing_end`: int64 token positions, -1 for none.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

import apache_beam as beam
import keras
import numpy as np
import tensorflow as tf
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.options.pipeline_options import PipelineOptions

from a2d_tf import decoding, masking
from a2d_tf.config import ExperimentConfig
from a2d_tf.data import dataset as dataset_lib
from a2d_tf.data import features
from a2d_tf.data.records import DataError, Record
from a2d_tf.metrics import squad

# Registers the a2d layers, so teacher `.keras` files deserialize on workers.
from a2d_tf.models import reader as reader_lib

NO_SPAN = (-1, -1)
RECORD_PREFIX = "knowledge"
RECORD_SUFFIX = ".tfrecord.gz"
STATS_FILE = "stats.json"
GOLD_FILE = "gold.jsonl"  # what the distill step writes beside the records
_BEAM_STATS_PREFIX = "beam_stats"

# The keys `materialize_knowledge` adds to every feature record.
KNOWLEDGE_SPEC: dict[str, tf.io.FixedLenFeature] = {
  "teacher_start_probs": tf.io.FixedLenFeature([], tf.string),
  "teacher_end_probs": tf.io.FixedLenFeature([], tf.string),
  "teacher_attention": tf.io.FixedLenFeature([], tf.string),
  "teacher_attention_hops": tf.io.FixedLenFeature([], tf.int64),
  "confusing_start": tf.io.FixedLenFeature([], tf.int64),
  "confusing_end": tf.io.FixedLenFeature([], tf.int64),
}
KNOWLEDGE_KEYS = (
  "teacher_start_probs",
  "teacher_end_probs",
  "teacher_attention",
  "confusing_start",
  "confusing_end",
)


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


def gold_answers_from_records(
  records: Iterable[Record],
) -> dict[str, GoldAnswers]:
  """Returns `{record id: GoldAnswers}` for `materialize_knowledge`."""
  return {
    r.id: GoldAnswers(r.context, tuple(a.text for a in r.answers))
    for r in records
  }


def write_gold_file(
  gold_answers: Mapping[str, GoldAnswers | tuple[str, Sequence[str]]],
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


def _parse_gold_line(
  line: str, path: str
) -> tuple[str, tuple[str, tuple[str, ...]]]:
  """`(record id, (context, answers))`, as `materialize_knowledge` joins."""
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


# ---------------------------------------------------------------------------
# The method: pure functions of tensors and texts.


def ensemble_probs(
  logits: Sequence[tf.Tensor | np.ndarray],
  mask: tf.Tensor | np.ndarray,
  temperature: float,
) -> tf.Tensor:
  """Mean over teachers of their softened, masked distributions.

  Args:
    logits: One `[batch, passage_len]` score tensor per teacher.
    mask: `[batch, passage_len]`, true at valid passage positions.
    temperature: tau; each teacher's distribution is `softmax(logits / tau)`.

  Returns:
    float32 `[batch, passage_len]`: the arithmetic mean of the teachers'
    probabilities (not the softmax of their mean logits); rows sum to 1 over
    valid positions and are 0 at padding.
  """
  if not logits:
    raise ValueError("ensemble_probs needs at least one teacher, got none.")
  if temperature <= 0:
    raise ValueError(f"temperature must be positive, got {temperature}.")
  probs = [
    masking.masked_softmax(x, mask, temperature=temperature) for x in logits
  ]
  return tf.add_n(probs) / float(len(probs))


def ensemble_attention(
  attentions: Sequence[tf.Tensor | np.ndarray],
) -> tf.Tensor:
  """Mean over teachers of their alignment distributions.

  Args:
    attentions: One `[batch, hops, passage_len, question_len]` tensor per
      teacher (rows sum to 1 over valid question words, padded rows 0).

  Returns:
    float32 `[batch, hops, passage_len, question_len]`, the arithmetic mean;
    it keeps the row sums and the zero padding of the inputs.
  """
  if not attentions:
    raise ValueError("ensemble_attention needs at least one teacher, got none.")
  stacked = [tf.cast(a, tf.float32) for a in attentions]
  return tf.add_n(stacked) / float(len(stacked))


def select_confusing_span(
  teacher_spans: np.ndarray,
  teacher_scores: np.ndarray,
  span_texts: Sequence[Sequence[str | None]],
  gold_answers: Sequence[str],
) -> tuple[int, int]:
  """The most confident teacher span that shares no token with any answer.

  Args:
    teacher_spans: int `[teachers, k, 2]` token spans (start, end) per teacher
      from `decoding.top_k_spans`; -1 marks padding.
    teacher_scores: float `[teachers, k]` confidences `p_start * p_end`.
    span_texts: `[teachers][k]` answer texts of the spans (None or anything
      for padding spans, which are skipped).
    gold_answers: Every gold answer text of the example.

  Returns:
    `(start, end)` of the span with the highest confidence, over all teachers,
    whose SQuAD token F1 (official normalization) is 0 against every gold
    answer; `NO_SPAN` (-1, -1) when every span overlaps some answer, when
    there are no spans, or when the example has no gold answer (nothing to be
    confused with).
  """
  spans = np.asarray(teacher_spans).reshape(-1, 2)
  scores = np.asarray(teacher_scores, dtype=np.float64).reshape(-1)
  texts = [t for row in span_texts for t in row]
  if not (len(spans) == len(scores) == len(texts)):
    raise ValueError(
      f"Got {len(spans)} spans, {len(scores)} scores and {len(texts)} "
      "texts; expected one score and one text per span."
    )
  if not gold_answers:
    return NO_SPAN
  best, best_score = NO_SPAN, -np.inf
  for (start, end), score, text in zip(spans, scores, texts, strict=True):
    if start < 0 or end < 0 or score <= best_score:
      continue
    if all(squad.f1_score(text, gold) == 0 for gold in gold_answers):
      best, best_score = (int(start), int(end)), score
  return best


# ---------------------------------------------------------------------------
# Stored format.


def encode_float16(values: np.ndarray) -> bytes:
  """Little-endian float16 bytes of `values` in row-major order."""
  return np.ascontiguousarray(values, dtype="<f2").tobytes()


def decode_float16(data: bytes, shape: Sequence[int]) -> np.ndarray:
  """Inverse of `encode_float16`, as float32 of `shape` (NumPy)."""
  return np.frombuffer(data, dtype="<f2").astype(np.float32).reshape(shape)


def add_knowledge(
  example: tf.train.Example,
  start_probs: np.ndarray,
  end_probs: np.ndarray,
  attention: np.ndarray,
  confusing: tuple[int, int],
) -> tf.train.Example:
  """Returns a copy of `example` carrying one example's knowledge.

  Args:
    example: The feature record, copied unchanged.
    start_probs: `[passage_len]` ensemble start distribution (valid part).
    end_probs: `[passage_len]` ensemble end distribution (valid part).
    attention: `[hops, passage_len, question_len]` ensemble attention (valid
      block).
    confusing: `(start, end)` token span or `NO_SPAN`.

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


def make_knowledge_dataset(
  pattern: str,
  config: ExperimentConfig,
  batch_size: int,
  training: bool,
  seed: int | None = None,
  with_metadata: bool = False,
  cache: bool = False,
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
  )


# ---------------------------------------------------------------------------
# Materialization (Apache Beam).


def _example_id(example: tf.train.Example) -> str:
  values = example.features.feature["id"].bytes_list.value
  if len(values) != 1:
    raise DataError(
      f"expected one id per feature record, got {len(values)}", field="id"
    )
  return values[0].decode("utf-8")


def batch_features(
  serialized: Sequence[bytes], max_word_len: int
) -> dict[str, tf.Tensor]:
  """Parses and pads feature records into one batch, as `make_dataset` does.

  Args:
    serialized: Serialized feature records (`a2d_tf.data.features`).
    max_word_len: W, characters per token the features were written with.

  Returns:
    The `features.parse_example` dict batched and zero-padded to the
    longest question and passage: the model input (`question_ids`
    `[batch, question_len]`, ..., `question_len`, `passage_len` `[batch]`)
    plus `id`, `passage_char_starts` and `passage_char_ends`.
  """
  dataset = tf.data.Dataset.from_tensor_slices(
    tf.constant(list(serialized), tf.string)
  )
  dataset = dataset.map(lambda s: features.parse_example(s, max_word_len))
  return dataset.padded_batch(len(serialized)).get_single_element()


class _Element(NamedTuple):
  """A feature record joined with its gold answers, before batching."""

  passage_len: int
  serialized: bytes
  gold: GoldAnswers


def _key_by_id(serialized: bytes) -> tuple[str, bytes]:
  return _example_id(tf.train.Example.FromString(serialized)), serialized


def _join_gold(
  keyed: tuple[str, dict[str, list[Any]]],
) -> Iterable[_Element]:
  record_id, groups = keyed
  golds = groups["gold"]
  if not groups["features"]:
    return
  if not golds:
    raise DataError(
      "no gold answers given for this feature record; pass every record "
      "of the split in gold_answers",
      record_id=record_id,
      field="answers",
    )
  gold = GoldAnswers(*golds[0])
  for serialized in groups["features"]:
    example = tf.train.Example.FromString(serialized)
    passage_len = len(example.features.feature["passage_ids"].int64_list.value)
    yield _Element(passage_len, serialized, gold)


class ComputeKnowledgeFn(beam.DoFn):
  """Runs the teachers on a batch and emits knowledge records.

  The teachers are loaded once per worker in `setup`. The main output is the
  serialized knowledge record; the `stats` output carries one
  `(examples, with_confusing, record_bytes, knowledge_bytes)` tuple per
  record.

  Args:
    teacher_paths: `.keras` files of the K teachers.
    temperature: tau of the soft distributions.
    top_k: Spans per teacher for the confusing-answer search.
    max_answer_len: Longest span (tokens) the decoder returns.
    max_word_len: W of the flattened char features.
  """

  STATS = "stats"

  def __init__(
    self,
    teacher_paths: Sequence[str],
    temperature: float,
    top_k: int,
    max_answer_len: int,
    max_word_len: int,
  ):
    super().__init__()
    if not teacher_paths:
      raise ValueError("ComputeKnowledgeFn needs at least one teacher path.")
    self._teacher_paths = tuple(teacher_paths)
    self._temperature = float(temperature)
    self._top_k = int(top_k)
    self._max_answer_len = int(max_answer_len)
    self._max_word_len = int(max_word_len)
    self._teachers = None
    self._forward = None

  def setup(self):
    self._teachers = [
      keras.saving.load_model(path, compile=False)
      for path in self._teacher_paths
    ]
    logging.info("Loaded %d teachers.", len(self._teachers))
    self._forward = tf.function(
      self._run_teachers,
      input_signature=[reader_lib.input_specs(self._max_word_len)],
    )

  def _run_teachers(self, inputs):
    mask = masking.sequence_mask(
      inputs["passage_len"], tf.shape(inputs["passage_ids"])[1]
    )
    outputs = [t(inputs, training=False) for t in self._teachers]
    starts = [o["start_logits"] for o in outputs]
    ends = [o["end_logits"] for o in outputs]
    # Per-teacher distributions at tau = 1 for decoding, as in evaluation.
    hard_start = tf.stack([masking.masked_softmax(s, mask) for s in starts])
    hard_end = tf.stack([masking.masked_softmax(e, mask) for e in ends])
    return {
      "start_probs": ensemble_probs(starts, mask, self._temperature),
      "end_probs": ensemble_probs(ends, mask, self._temperature),
      "attention": ensemble_attention([o["attention"] for o in outputs]),
      "teacher_start_probs": hard_start,
      "teacher_end_probs": hard_end,
    }

  def process(self, batch: Sequence[_Element]):
    inputs = batch_features([e.serialized for e in batch], self._max_word_len)
    result = {
      k: v.numpy()
      for k, v in self._forward(reader_lib.model_inputs(inputs)).items()
    }
    p_lens = inputs["passage_len"].numpy()
    q_lens = inputs["question_len"].numpy()
    char_starts = inputs["passage_char_starts"].numpy()
    char_ends = inputs["passage_char_ends"].numpy()
    per_teacher = [
      decoding.top_k_spans(
        result["teacher_start_probs"][t],
        result["teacher_end_probs"][t],
        p_lens,
        self._top_k,
        self._max_answer_len,
      )
      for t in range(len(self._teachers))
    ]
    for i, element in enumerate(batch):
      p, q = int(p_lens[i]), int(q_lens[i])
      spans = np.stack([s[i] for s, _ in per_teacher])
      scores = np.stack([c[i] for _, c in per_teacher])
      texts = [
        [
          decoding.span_text(
            element.gold.context, char_starts[i, :p], char_ends[i, :p], s, e
          )[0]
          if s >= 0
          else None
          for s, e in row
        ]
        for row in spans
      ]
      confusing = select_confusing_span(
        spans, scores, texts, element.gold.answers
      )
      out = add_knowledge(
        tf.train.Example.FromString(element.serialized),
        result["start_probs"][i, :p],
        result["end_probs"][i, :p],
        result["attention"][i, :, :p, :q],
        confusing,
      )
      serialized = out.SerializeToString()
      yield serialized
      yield beam.pvalue.TaggedOutput(
        self.STATS,
        (
          1,
          int(confusing != NO_SPAN),
          len(serialized),
          len(serialized) - len(element.serialized),
        ),
      )


def _sum_stats(rows: Iterable[tuple[int, ...]]) -> tuple[int, int, int, int]:
  total = [0, 0, 0, 0]
  for row in rows:
    for j, value in enumerate(row):
      total[j] += value
  return tuple(total)


LOCAL_RUNNER = "--runner=FnApiRunner"


def beam_options(beam_pipeline_args: Sequence[str] | None) -> list[str]:
  """The Beam arguments, with the in-process runner when none is named.

  Beam's DirectRunner first tries Prism, which downloads a binary at run
  time; the in-process FnApiRunner (what DirectRunner falls back to) runs
  the same pipeline without that.
  """
  args = list(beam_pipeline_args or [])
  if not any(a == "--runner" or a.startswith("--runner=") for a in args):
    args.insert(0, LOCAL_RUNNER)
  return args


def materialize_knowledge(
  feature_pattern: str,
  teacher_paths: Sequence[str],
  out_dir: str,
  config: ExperimentConfig,
  gold_answers: Mapping[str, GoldAnswers | tuple[str, Sequence[str]]] | str,
  beam_pipeline_args: Sequence[str] | None = None,
  batch_size: int | None = None,
) -> dict[str, Any]:
  """Runs the K teachers over feature records and writes knowledge records.

  Pipeline: read the GZIP feature TFRecords -> join with the gold answers by
  record id -> batch by passage length (`data.bucket_boundaries`) ->
  `ComputeKnowledgeFn` (teachers loaded once per worker) -> sharded GZIP
  TFRecords `<out_dir>/knowledge-?????-of-?????.tfrecord.gz`
  (`data.num_shards` shards), plus `<out_dir>/stats.json`.

  Args:
    feature_pattern: Glob of the feature TFRecords (GZIP).
    teacher_paths: `.keras` files of the K teachers.
    out_dir: Output directory (created; local or any `tf.io.gfile` path).
    config: The experiment config (`distill.temperature`, `teacher.top_k`,
      `model.max_answer_len`, `data.*`, `train.batch_size`).
    gold_answers: `{record id: GoldAnswers(context, answer texts)}` for every
      feature record, e.g. from `gold_answers_from_records`, or the path of
      a `write_gold_file` file. Use the file for large splits on a
      distributed runner: a mapping enters the graph through `beam.Create`.
    beam_pipeline_args: Runner and options, e.g.
      `["--runner=DataflowRunner", "--project=...", ...]`; None or empty runs
      the DirectRunner.
    batch_size: Teacher inference batch size; `train.batch_size` when None.

  Returns:
    The stats written to `stats.json`: `num_examples`, `with_confusing`,
    `without_confusing`, `record_bytes_per_example` (serialized, before
    compression), `knowledge_bytes_per_example` (what the knowledge adds),
    `file_bytes_per_example` (GZIP on disk), `num_teachers`, `temperature`,
    `top_k`, `num_shards`.

  Raises:
    DataError: When a feature record has no entry in `gold_answers`, or a
      line of the gold file is malformed (names the file).
  """
  batch_size = batch_size or config.train.batch_size
  tf.io.gfile.makedirs(out_dir)
  compute = ComputeKnowledgeFn(
    teacher_paths,
    temperature=config.distill.temperature,
    top_k=config.teacher.top_k,
    max_answer_len=config.model.max_answer_len,
    max_word_len=config.data.max_word_len,
  )
  options = PipelineOptions(beam_options(beam_pipeline_args))
  with beam.Pipeline(options=options) as pipeline:
    features = (
      pipeline
      | "ReadFeatures"
      >> beam.io.ReadFromTFRecord(
        feature_pattern, compression_type=CompressionTypes.GZIP
      )
      | "KeyById" >> beam.Map(_key_by_id)
    )
    if isinstance(gold_answers, str):
      gold = (
        pipeline
        | "ReadGold" >> beam.io.ReadFromText(gold_answers)
        | "ParseGold" >> beam.Map(_parse_gold_line, path=gold_answers)
      )
    else:
      gold = pipeline | "Gold" >> beam.Create(
        [
          (record_id, (g[0], tuple(g[1])))
          for record_id, g in gold_answers.items()
        ]
      )
    outputs = (
      {"features": features, "gold": gold}
      | "JoinGold" >> beam.CoGroupByKey()
      | "Pair" >> beam.FlatMap(_join_gold)
      | "Batch"
      >> beam.BatchElements(
        min_batch_size=batch_size,
        max_batch_size=batch_size,
        length_fn=lambda e: e.passage_len,
        bucket_boundaries=list(config.data.bucket_boundaries) or None,
      )
      | "Teachers"
      >> beam.ParDo(compute).with_outputs(
        ComputeKnowledgeFn.STATS, main="records"
      )
    )
    _ = outputs.records | "Write" >> beam.io.WriteToTFRecord(
      os.path.join(out_dir, RECORD_PREFIX),
      file_name_suffix=RECORD_SUFFIX,
      num_shards=config.data.num_shards,
      compression_type=CompressionTypes.GZIP,
    )
    _ = (
      outputs[ComputeKnowledgeFn.STATS]
      | "SumStats" >> beam.CombineGlobally(_sum_stats)
      | "StatsJson" >> beam.Map(json.dumps)
      | "WriteStats"
      >> beam.io.WriteToText(
        os.path.join(out_dir, _BEAM_STATS_PREFIX),
        file_name_suffix=".json",
        shard_name_template="",
      )
    )
  beam_stats_path = os.path.join(out_dir, _BEAM_STATS_PREFIX + ".json")
  with tf.io.gfile.GFile(beam_stats_path) as f:
    count, with_confusing, record_bytes, knowledge_bytes = json.loads(f.read())
  tf.io.gfile.remove(beam_stats_path)
  files = tf.io.gfile.glob(knowledge_pattern(out_dir))
  file_bytes = sum(tf.io.gfile.stat(path).length for path in files)
  per = max(count, 1)
  stats = {
    "num_examples": count,
    "with_confusing": with_confusing,
    "without_confusing": count - with_confusing,
    "record_bytes_per_example": record_bytes / per,
    "knowledge_bytes_per_example": knowledge_bytes / per,
    "file_bytes_per_example": file_bytes / per,
    "num_teachers": len(teacher_paths),
    "temperature": config.distill.temperature,
    "top_k": config.teacher.top_k,
    "num_shards": len(files),
  }
  with tf.io.gfile.GFile(os.path.join(out_dir, STATS_FILE), "w") as f:
    f.write(json.dumps(stats, indent=2, sort_keys=True))
  logging.info(
    "Knowledge for %d examples (%d with a confusing answer), %.0f bytes "
    "per record.",
    count,
    with_confusing,
    stats["record_bytes_per_example"],
  )
  return stats
