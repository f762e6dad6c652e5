"""What the speed benchmarks share: data, random knowledge, timing, output.

Every benchmark works on the embedded synthetic corpus, featurized into a
temporary directory with the preset's data settings, and on random-weight
models of the preset's size (speed does not depend on the weights' values).
Each prints a `context` line (preset, sizes, date, machine) and then, as its
last line, one JSON object with the benchmark's figures.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import time

import numpy as np
import tensorflow as tf

from a2d_tf import config as config_lib
from a2d_tf.config import ExperimentConfig
from a2d_tf.data import features, knowledge, synthetic
from a2d_tf.data import vocab as vocab_lib
from a2d_tf.data.records import Record

PRESETS = list(config_lib.PRESETS)


@dataclasses.dataclass(frozen=True)
class FeatureData:
  """Featurized synthetic data.

  Attributes:
    pattern: Glob of the split's GZIP feature TFRecords.
    vocab: The vocabulary of the training split.
    records: The records that were featurized.
    num_examples: Feature records written.
  """

  pattern: str
  vocab: vocab_lib.Vocabulary
  records: list[Record]
  num_examples: int


def corpus_features(
  config: ExperimentConfig,
  out_dir: str,
  split: str = "train",
  max_records: int = 0,
) -> FeatureData:
  """Featurizes the synthetic `split` (`train` or `dev`) into `out_dir`.

  Args:
    config: Its `data` section sizes the corpus and the features.
    out_dir: Directory for the TFRecords.
    split: Which split to write; the vocabulary is always the training
      split's.
    max_records: Featurize only the first this many records (0: all).

  Returns:
    The written data.
  """
  data = config.data
  corpus = synthetic.generate_corpus(
    data.synthetic_train_size,
    data.synthetic_dev_size if split == "dev" else 0,
    data.synthetic_seed,
  )
  vocab = vocab_lib.build_vocabulary(
    corpus["train"],
    data.min_word_count,
    data.min_char_count,
    data.lowercase_words,
  )
  records = corpus[split]
  if max_records:
    records = records[:max_records]
  stats = features.write_split(
    records, vocab, data, out_dir, split, training=split == "train"
  )
  return FeatureData(
    features.file_pattern(out_dir, split),
    vocab,
    records,
    stats["num_examples"],
  )


def _distribution(rng: np.random.Generator, mask: np.ndarray) -> np.ndarray:
  """Random distributions over the last axis' valid positions."""
  x = np.where(mask, rng.gamma(0.3, size=mask.shape) + 1e-6, 0.0)
  total = x.sum(-1, keepdims=True)
  out = np.zeros_like(x)
  return np.divide(x, total, out=out, where=total > 0).astype(np.float32)


def random_knowledge(
  passage_len: np.ndarray,
  question_len: np.ndarray,
  hops: int,
  rng: np.random.Generator,
) -> dict[str, np.ndarray]:
  """Knowledge of the right shapes and supports for one padded batch.

  Args:
    passage_len: int `[batch]`.
    question_len: int `[batch]`.
    hops: T, the aligner hops.
    rng: Random source.

  Returns:
    `teacher_start_probs`, `teacher_end_probs` `[batch, max passage_len]`,
    `teacher_attention` `[batch, hops, max passage_len, max question_len]`
    (distributions over the valid positions, zero at padding) and
    `confusing_start`, `confusing_end` `[batch]` (a valid span for about
    three examples in four, -1 otherwise).
  """
  size = len(passage_len)
  lp, lq = int(np.max(passage_len)), int(np.max(question_len))
  p_mask = np.arange(lp)[None] < passage_len[:, None]
  q_mask = np.arange(lq)[None] < question_len[:, None]
  att_mask = p_mask[:, None, :, None] & q_mask[:, None, None, :]
  start = rng.integers(0, np.maximum(passage_len, 1))
  end = np.minimum(start + rng.integers(0, 4, size), passage_len - 1)
  none = rng.random(size) < 0.25
  return {
    "teacher_start_probs": _distribution(rng, p_mask),
    "teacher_end_probs": _distribution(rng, p_mask),
    "teacher_attention": _distribution(
      rng, np.broadcast_to(att_mask, (size, hops, lp, lq))
    ),
    "confusing_start": np.where(none, -1, start).astype(np.int32),
    "confusing_end": np.where(none, -1, end).astype(np.int32),
  }


def write_random_knowledge(
  feature_pattern: str, out_dir: str, hops: int, num_shards: int, seed: int
) -> str:
  """Knowledge records in the stored format, with random knowledge.

  Copies every feature record and adds knowledge through
  `knowledge.add_knowledge`, as `materialize_knowledge` does, without
  running teachers (a stand-in for the input-pipeline benchmark: reading
  and parsing cost does not depend on the values).

  Returns:
    The glob of the written shards (`knowledge.knowledge_pattern`).
  """
  rng = np.random.default_rng(seed)
  tf.io.gfile.makedirs(out_dir)
  examples = [
    tf.train.Example.FromString(raw.numpy())
    for raw in tf.data.TFRecordDataset(
      sorted(tf.io.gfile.glob(feature_pattern)), compression_type="GZIP"
    )
  ]
  per_shard = -(-len(examples) // num_shards)
  options = tf.io.TFRecordOptions(compression_type="GZIP")
  for index in range(num_shards):
    name = (
      f"{knowledge.RECORD_PREFIX}-{index:05d}-of-{num_shards:05d}"
      f"{knowledge.RECORD_SUFFIX}"
    )
    with tf.io.TFRecordWriter(os.path.join(out_dir, name), options) as writer:
      for example in examples[index * per_shard : (index + 1) * per_shard]:
        feature = example.features.feature
        lp = len(feature["passage_ids"].int64_list.value)
        lq = len(feature["question_ids"].int64_list.value)
        values = random_knowledge(np.array([lp]), np.array([lq]), hops, rng)
        out = knowledge.add_knowledge(
          example,
          values["teacher_start_probs"][0],
          values["teacher_end_probs"][0],
          values["teacher_attention"][0],
          (
            int(values["confusing_start"][0]),
            int(values["confusing_end"][0]),
          ),
        )
        writer.write(out.SerializeToString())
  return knowledge.knowledge_pattern(out_dir)


def fill(dataset: tf.data.Dataset) -> int:
  """Iterates `dataset` once (filling its caches); returns the examples."""
  return sum(int(tf.shape(b["passage_len"])[0]) for b in dataset)


def fit_step_seconds(model, dataset) -> list[float]:
  """Seconds of each step of `model.fit` over one pass of `dataset`.

  A step's time runs from the end of the previous step (from the `fit` call
  for the first), so it includes waiting for its batch; the first also
  includes creating the dataset's iterator.
  """
  import keras

  class StepTimes(keras.callbacks.Callback):
    def __init__(self):
      super().__init__()
      self.ends = [time.perf_counter()]

    def on_train_batch_end(self, batch, logs=None):
      self.ends.append(time.perf_counter())

  recorder = StepTimes()
  model.fit(dataset, epochs=1, verbose=0, shuffle=False, callbacks=[recorder])
  return list(np.diff(recorder.ends))


def context(preset: str, **fields) -> dict:
  """The run's context: preset, date, machine and the given sizes."""
  gpus = tf.config.list_physical_devices("GPU")
  return {
    "preset": preset,
    "date": time.strftime("%Y-%m-%d"),
    "machine": (
      f"{platform.machine()}, {os.cpu_count()} CPU cores"
      + (f", {len(gpus)} GPU" if gpus else "")
    ),
    "load_average_1m": round(os.getloadavg()[0], 2),
    "tensorflow": tf.__version__,
    **fields,
  }


def report(run_context: dict, result: dict, digits: int = 3) -> None:
  """Prints the context line, then `result` as the last line (JSON)."""
  print("context " + json.dumps(run_context, sort_keys=True))
  print(
    json.dumps(
      {
        k: round(v, digits) if isinstance(v, float) else v
        for k, v in result.items()
      }
    )
  )
