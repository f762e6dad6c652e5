"""The knowledge step as an Apache Beam pipeline.

`materialize_knowledge` runs the K teachers once over a split's feature
records and writes what the student learns from (`ensemble`: soft answers,
attention and confusing spans) in the record format of `data.knowledge`, so
the student's train step never runs a teacher. It runs on the in-process
FnApiRunner here and on Dataflow, Flink or Spark unchanged through
`beam_pipeline_args`; its figures (examples, confusing spans, bytes) are
Beam counters, read from the pipeline result.
"""

from __future__ import annotations

import json
import logging
import os
import zlib
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

import apache_beam as beam
import keras
import numpy as np
import tensorflow as tf
from apache_beam import metrics
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.options.pipeline_options import PipelineOptions

from a2d_tf import decoding, ensemble, masking
from a2d_tf.config import ExperimentConfig
from a2d_tf.data import features
from a2d_tf.data import knowledge as knowledge_lib
from a2d_tf.data.records import DataError

# Registers the a2d layers, so teacher `.keras` files deserialize on workers.
from a2d_tf.models import reader as reader_lib

# The Beam counters of `ComputeKnowledgeFn`, summed over the pipeline.
METRICS_NAMESPACE = "a2d.knowledge"
COUNTERS = ("examples", "with_confusing", "record_bytes", "knowledge_bytes")


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
  gold: knowledge_lib.GoldAnswers
  record_id: str


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
  gold = knowledge_lib.GoldAnswers(*golds[0])
  for serialized in groups["features"]:
    example = tf.train.Example.FromString(serialized)
    passage_len = len(example.features.feature["passage_ids"].int64_list.value)
    yield _Element(passage_len, serialized, gold, record_id)


class ComputeKnowledgeFn(beam.DoFn):
  """Runs the teachers on a batch and emits knowledge records.

  The teachers are loaded once per worker in `setup`. The output is
  `(record id, serialized knowledge record)`; per record the Beam counters of
  `METRICS_NAMESPACE` (`COUNTERS`) count the examples, those with a
  confusing span, and the bytes of the record and of what the knowledge
  adds to it (before compression).

  Args:
    teacher_paths: `.keras` files of the K teachers.
    temperature: tau of the soft distributions.
    top_k: Spans per teacher for the confusing-answer search.
    max_answer_len: Longest span (tokens) the decoder returns.
    max_word_len: W of the flattened char features.
  """

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
    self._counters = {
      name: metrics.Metrics.counter(METRICS_NAMESPACE, name)
      for name in COUNTERS
    }

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
      "start_probs": ensemble.ensemble_probs(starts, mask, self._temperature),
      "end_probs": ensemble.ensemble_probs(ends, mask, self._temperature),
      "attention": ensemble.ensemble_attention(
        [o["attention"] for o in outputs]
      ),
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
    ensemble_spans, _ = decoding.best_spans(
      result["teacher_start_probs"].mean(axis=0),
      result["teacher_end_probs"].mean(axis=0),
      p_lens,
      self._max_answer_len,
    )
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
      confusing = ensemble.select_confusing_span(
        spans, scores, texts, element.gold.answers
      )
      out = knowledge_lib.add_knowledge(
        tf.train.Example.FromString(element.serialized),
        result["start_probs"][i, :p],
        result["end_probs"][i, :p],
        result["attention"][i, :, :p, :q],
        confusing,
        teacher_spans=spans[:, 0],
        ensemble_span=tuple(ensemble_spans[i]),
      )
      serialized = out.SerializeToString()
      self._counters["examples"].inc()
      self._counters["with_confusing"].inc(int(confusing != ensemble.NO_SPAN))
      self._counters["record_bytes"].inc(len(serialized))
      self._counters["knowledge_bytes"].inc(
        len(serialized) - len(element.serialized)
      )
      yield element.record_id, serialized


def shard_index(record_id: str, num_shards: int) -> int:
  """The shard a record goes to: a stable hash of its id (CRC-32)."""
  return zlib.crc32(record_id.encode("utf-8")) % num_shards


class WriteShardFn(beam.DoFn):
  """Writes one shard's records, sorted by record id, as a GZIP TFRecord.

  Input: `(shard index, [(record id, serialized record), ...])`. The file
  is written beside its final name and renamed into place, so a retried
  bundle rewrites it whole; which records a shard holds and their order
  depend on the records alone, never on how the runner bundled or ordered
  them, so a re-run writes the same bytes. A shard's records are held in
  memory while sorted (raise `data.num_shards` for a split too large).

  Args:
    out_dir: Directory of the shards.
    num_shards: Shards in all (in the file names).
  """

  def __init__(self, out_dir: str, num_shards: int):
    super().__init__()
    self._out_dir = out_dir
    self._num_shards = int(num_shards)

  def process(self, shard: tuple[int, Iterable[tuple[str, bytes]]]):
    index, records = shard
    path = shard_path(self._out_dir, index, self._num_shards)
    partial = f"{path}.partial"
    options = tf.io.TFRecordOptions(compression_type="GZIP")
    with tf.io.TFRecordWriter(partial, options) as writer:
      for _, serialized in sorted(records):
        writer.write(serialized)
    tf.io.gfile.rename(partial, path, overwrite=True)
    yield path


def shard_path(out_dir: str, index: int, num_shards: int) -> str:
  """`<out_dir>/knowledge-<index>-of-<num_shards>.tfrecord.gz`."""
  return os.path.join(
    out_dir,
    f"{knowledge_lib.RECORD_PREFIX}-{index:05d}-of-{num_shards:05d}"
    f"{knowledge_lib.RECORD_SUFFIX}",
  )


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
  gold_answers: knowledge_lib.GoldMapping | str,
  beam_pipeline_args: Sequence[str] | None = None,
  batch_size: int | None = None,
) -> dict[str, Any]:
  """Runs the K teachers over feature records and writes knowledge records.

  Pipeline: read the GZIP feature TFRecords -> join with the gold answers by
  record id -> batch by passage length (`data.bucket_boundaries`) ->
  `ComputeKnowledgeFn` (teachers loaded once per worker) -> sharded GZIP
  TFRecords `<out_dir>/knowledge-?????-of-?????.tfrecord.gz`
  (`data.num_shards` shards; a record's shard is a hash of its id and each
  shard is sorted by id, `WriteShardFn`, so the files are the same bytes
  on every run and runner), plus `<out_dir>/stats.json` from the Beam
  counters and the files' sizes. Nothing else is left in `out_dir` (no
  sink temp folders): the shards are written by the pipeline itself.

  Args:
    feature_pattern: Glob of the feature TFRecords (GZIP).
    teacher_paths: `.keras` files of the K teachers.
    out_dir: Output directory (created; local or any `tf.io.gfile` path).
    config: The experiment config (`distill.temperature`, `teacher.top_k`,
      `model.max_answer_len`, `data.*`, `train.batch_size`).
    gold_answers: `{record id: GoldAnswers(context, answer texts)}` for every
      feature record, e.g. from `data.knowledge.gold_answers_from_records`,
      or the path of a `data.knowledge.write_gold_file` file. Use the file
      for large splits on a distributed runner: a mapping enters the graph
      through `beam.Create`.
    beam_pipeline_args: Runner and options, e.g.
      `["--runner=DataflowRunner", "--project=...", ...]`; without a
      `--runner` the in-process FnApiRunner (`beam_options`).
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
  num_shards = config.data.num_shards
  tf.io.gfile.makedirs(out_dir)
  compute = ComputeKnowledgeFn(
    teacher_paths,
    temperature=config.distill.temperature,
    top_k=config.teacher.top_k,
    max_answer_len=config.model.max_answer_len,
    max_word_len=config.data.max_word_len,
  )
  pipeline = beam.Pipeline(
    options=PipelineOptions(beam_options(beam_pipeline_args))
  )
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
      | "ParseGold"
      >> beam.Map(knowledge_lib.parse_gold_line, path=gold_answers)
    )
  else:
    gold = pipeline | "Gold" >> beam.Create(
      [
        (record_id, (g[0], tuple(g[1])))
        for record_id, g in gold_answers.items()
      ]
    )
  _ = (
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
    | "Teachers" >> beam.ParDo(compute)
    | "Shard"
    >> beam.Map(lambda kv, n: (shard_index(kv[0], n), kv), n=num_shards)
    | "GroupShards" >> beam.GroupByKey()
    | "Write" >> beam.ParDo(WriteShardFn(out_dir, num_shards))
  )
  result = pipeline.run()
  result.wait_until_finish()
  for index in range(num_shards):
    # A shard no record hashed to is written empty, as a sink would.
    path = shard_path(out_dir, index, num_shards)
    if not tf.io.gfile.exists(path):
      options = tf.io.TFRecordOptions(compression_type="GZIP")
      with tf.io.TFRecordWriter(path, options):
        pass
  totals = counter_totals(result)
  count, with_confusing = totals["examples"], totals["with_confusing"]
  files = tf.io.gfile.glob(knowledge_lib.knowledge_pattern(out_dir))
  file_bytes = sum(tf.io.gfile.stat(path).length for path in files)
  per = max(count, 1)
  stats = {
    "num_examples": count,
    "with_confusing": with_confusing,
    "without_confusing": count - with_confusing,
    "record_bytes_per_example": totals["record_bytes"] / per,
    "knowledge_bytes_per_example": totals["knowledge_bytes"] / per,
    "file_bytes_per_example": file_bytes / per,
    "num_teachers": len(teacher_paths),
    "temperature": config.distill.temperature,
    "top_k": config.teacher.top_k,
    "num_shards": len(files),
  }
  stats_path = os.path.join(out_dir, knowledge_lib.STATS_FILE)
  with tf.io.gfile.GFile(stats_path, "w") as f:
    f.write(json.dumps(stats, indent=2, sort_keys=True))
  logging.info(
    "Knowledge for %d examples (%d with a confusing answer), %.0f bytes "
    "per record.",
    count,
    with_confusing,
    stats["record_bytes_per_example"],
  )
  return stats


def counter_totals(
  result: beam.runners.runner.PipelineResult,
) -> dict[str, int]:
  """The `COUNTERS` of a finished knowledge pipeline, summed over steps.

  Committed values where the runner reports them (FnApiRunner, Dataflow),
  else the attempted ones; a counter nothing incremented reads 0.
  """
  query = result.metrics().query(
    metrics.MetricsFilter().with_namespace(METRICS_NAMESPACE)
  )
  totals = dict.fromkeys(COUNTERS, 0)
  for counter in query["counters"]:
    name = counter.key.metric.name
    if name in totals:
      value = counter.committed
      totals[name] += counter.attempted if value is None else value
  return totals
