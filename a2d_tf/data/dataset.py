"""The tf.data input function over feature-spec TFRecords.

`make_dataset` yields ONE flat dict per batch, padded to the batch's longest
question and passage:

- `question_ids` int32 `[batch, question_len]`,
  `passage_ids` int32 `[batch, passage_len]`,
- `question_chars` int32 `[batch, question_len, max_word_len]`,
  `passage_chars` int32 `[batch, passage_len, max_word_len]`,
- `question_em` float32 `[batch, question_len, 2]`,
  `passage_em` float32 `[batch, passage_len, 2]` (exact-match flags),
- `question_len`, `passage_len`, `start`, `end` int32 `[batch]`,
- with `with_metadata=True` also `id` string `[batch]` and
  `passage_char_starts`, `passage_char_ends` int32 `[batch, passage_len]`,
- plus the keys added through `extra_spec` / `extra_parse` (zero-padded).

Padding is zeros; build masks from `question_len` / `passage_len`, never from
zero ids. Training input is shuffled (deterministically when `seed` is set)
and batched by passage-length buckets; evaluation input keeps file order.
Neither repeats: iterate once per epoch.

Bounded shapes (`pad_to`, a `LengthGrid`; `length_grid(config)` gives the
one `runtime.pad_to_bucket` asks for): every batch's passage axes are padded
further, to the smallest grid length at or above the batch's longest
passage (the bucket's upper boundary), and its question axes likewise, so
the passage and question sizes of all batches lie on the grid and a step
compiled by XLA sees at most `LengthGrid.max_batch_shapes` shapes per pass
(full and final partial batches). Which axes are passage or question
positions: axis 1 of every `passage_*` / `question_*` key other than the
lengths, and for other keys what `length_axes` says; a key with
variable-size axes that none of these covers is an error when the dataset
is made.

Epoch order: with a `seed`, each pass's order (files and examples) is a pure
function of `(seed, epoch)`: the shuffles' seed pair is `(seed + 1, epoch)`,
set inside the dataset's own function graph, so neither TF's process-wide
seed nor what the process ran before enters it. `epoch` is read from an
`epoch_variable()` when each pass starts; `training.train(train_epoch=...)`
sets it at every epoch's start, so a run resumed at epoch k sees epoch k's
order, as the uninterrupted run did. Without such a variable the passes
count themselves (pass i gets epoch i's order).

Throughput: files are read and examples parsed in parallel (`AUTOTUNE`, in a
deterministic order), batches are prefetched, and `cache=True` keeps the
parsed examples in memory after the first epoch, so later epochs (or every
dev evaluation after the first) skip reading, decompressing and parsing.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping

import tensorflow as tf

from a2d_tf.config import DataConfig, ExperimentConfig
from a2d_tf.data import features
from a2d_tf.data.records import DataError

__all__ = [
  "LengthGrid",
  "count_examples",
  "epoch_variable",
  "length_grid",
  "list_files",
  "make_dataset",
  "pad_batch",
]

PASSAGE = "passage"
QUESTION = "question"
# `{key: {axis: PASSAGE or QUESTION}}` for keys the name rule does not cover.
LengthAxes = Mapping[str, Mapping[int, str]]
_LENGTH_KEYS = ("passage_len", "question_len")

_COMPRESSION = "GZIP"
# Files read at once by the training input.
_CYCLE_LENGTH = 4


@dataclasses.dataclass(frozen=True)
class LengthGrid:
  """The passage and question sizes batches are padded to.

  Attributes:
    passage: Increasing passage lengths; the last is the longest passage
      the data holds (`data.max_passage_len`).
    question: Increasing question lengths, the last `data.max_question_len`.
  """

  passage: tuple[int, ...]
  question: tuple[int, ...]

  @property
  def max_batch_shapes(self) -> int:
    """Distinct batch shapes in one pass, at most.

    A (passage, question) size pair for full batches and for the final
    partial batch of each length bucket (training) or of the pass.
    """
    return 2 * len(self.passage) * len(self.question)


def length_grid(config: ExperimentConfig) -> LengthGrid | None:
  """The grid `config.runtime.pad_to_bucket` asks for, or None (no padding).

  Auto (None) pads under XLA (`runtime.jit_compile` without `run_eagerly`).
  Passages pad to the bucket boundaries below `data.max_passage_len`, then
  to it; questions to the `runtime.question_buckets` below
  `data.max_question_len`, then to it.
  """
  runtime, data = config.runtime, config.data
  pad = runtime.pad_to_bucket
  if pad is None:
    pad = runtime.jit_compile and not runtime.run_eagerly
  if not pad:
    return None

  def grid(lengths, longest):
    return tuple(sorted({n for n in lengths if 0 < n < longest} | {longest}))

  return LengthGrid(
    grid(data.bucket_boundaries, data.max_passage_len),
    grid(runtime.question_buckets, data.max_question_len),
  )


def _length_axes(key: str, extra: LengthAxes) -> Mapping[int, str]:
  if key in extra:
    return extra[key]
  if key in _LENGTH_KEYS:
    return {}
  if key.startswith("passage_"):
    return {1: PASSAGE}
  if key.startswith("question_"):
    return {1: QUESTION}
  return {}


def _check_length_axes(
  element_spec: Mapping[str, tf.TensorSpec], extra: LengthAxes
) -> None:
  """Raises ValueError for a key whose variable axes are not all covered."""
  for key, spec in element_spec.items():
    if key in extra:
      continue
    covered = _length_axes(key, extra)
    loose = [
      axis
      for axis, size in enumerate(spec.shape.as_list())
      if axis > 0 and size is None and axis not in covered
    ]
    if loose:
      raise ValueError(
        f"Cannot pad batches to the length grid: key {key!r} has "
        f"variable-size axes {loose} that are neither passage nor question "
        "positions by name; say which they are with length_axes="
        f"{{{key!r}: {{axis: 'passage' or 'question'}}}}."
      )


def _next_length(size: tf.Tensor, lengths: tuple[int, ...]) -> tf.Tensor:
  """The smallest of `lengths` >= `size`, or `size` above them all."""
  grid = tf.constant(lengths, tf.int32)
  size = tf.cast(size, tf.int32)
  largest = tf.constant(tf.int32.max, tf.int32)
  target = tf.reduce_min(tf.where(grid >= size, grid, largest))
  return tf.where(tf.equal(target, largest), size, target)


def pad_batch(
  batch: Mapping[str, tf.Tensor],
  grid: LengthGrid,
  length_axes: LengthAxes | None = None,
) -> dict[str, tf.Tensor]:
  """Zero-pads a batch's passage and question axes onto `grid`.

  Args:
    batch: A batch dict of `make_dataset` (any passage / question sizes).
    grid: The lengths to pad to.
    length_axes: Passage / question axes of keys the name rule does not
      cover (see the module docstring).

  Returns:
    The batch with every passage axis as long as the smallest grid passage
    length >= the batch's passage axis (`passage_ids`' axis 1), and the
    question axes likewise (`question_ids`); values unchanged, the added
    positions zero.
  """
  length_axes = dict(length_axes or {})
  targets = {
    PASSAGE: _next_length(tf.shape(batch["passage_ids"])[1], grid.passage),
    QUESTION: _next_length(tf.shape(batch["question_ids"])[1], grid.question),
  }
  padded = {}
  for key, value in batch.items():
    axes = _length_axes(key, length_axes)
    if not axes:
      padded[key] = value
      continue
    shape = tf.shape(value)
    paddings = [
      [0, targets[axes[axis]] - shape[axis]] if axis in axes else [0, 0]
      for axis in range(len(value.shape))
    ]
    padded[key] = tf.pad(value, paddings)
  return padded


def list_files(file_pattern: str) -> list[str]:
  """Sorted files matching `file_pattern`.

  Raises:
    DataError: If nothing matches.
  """
  files = sorted(tf.io.gfile.glob(file_pattern))
  if not files:
    raise DataError("no TFRecord files match this pattern", path=file_pattern)
  return files


def epoch_variable() -> tf.Variable:
  """An int64 variable, on the host, for the 0-based epoch being trained.

  Pass it to `make_dataset(epoch=...)` and to `training.train(train_epoch=
  ...)`: the dataset reads it when each pass starts, training sets it when
  each epoch starts. Create it outside any `tf.distribute` strategy scope.
  """
  with tf.device("/CPU:0"):
    return tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")


def _per_epoch(build, seed: int | None, epoch: tf.Variable | None):
  """`build(op_seed)`, one pass per epoch, ordered by `(seed, epoch)`.

  `build` makes one pass's shuffled dataset from an op-level shuffle seed
  (None: unseeded, reshuffled on every pass).
  """
  if seed is None:
    return build(None)
  if epoch is None:
    epoch = epoch_variable()
    counting = True
  else:
    counting = False

  def one_pass(_):
    # The graph-level seed of this function's graph only: the pair is
    # (seed + 1, epoch) whatever the process-wide seed is (+ 1 keeps a
    # seed of 0 from meaning "nondeterministic").
    tf.random.set_seed(seed + 1)
    if counting:
      return build(epoch.assign_add(1) - 1)
    return build(epoch.read_value())

  return tf.data.Dataset.from_tensors(0).flat_map(one_pass)


def count_examples(file_pattern: str) -> int:
  """Number of serialized examples in the files matching `file_pattern`."""
  dataset = tf.data.TFRecordDataset(
    list_files(file_pattern), compression_type=_COMPRESSION
  )
  return int(
    dataset.reduce(tf.constant(0, tf.int64), lambda count, _: count + 1)
  )


def make_dataset(
  file_pattern: str,
  data_config: DataConfig,
  batch_size: int,
  training: bool,
  seed: int | None = None,
  with_metadata: bool = False,
  extra_spec: Mapping[str, features.FeatureType] | None = None,
  extra_parse: features.ExtraParse | None = None,
  drop_remainder: bool = False,
  cache: bool = False,
  pad_to: LengthGrid | None = None,
  length_axes: LengthAxes | None = None,
  epoch: tf.Variable | None = None,
) -> tf.data.Dataset:
  """Reads feature-spec TFRecords into padded model-input batches.

  Args:
    file_pattern: Glob of GZIP TFRecord shards (`features.file_pattern`).
    data_config: `max_word_len` (must match the data), `shuffle_buffer` and
      `bucket_boundaries` (passage lengths; empty means no bucketing).
    batch_size: Examples per batch.
    training: Shuffle files and examples and batch by passage-length buckets
      (batches hold passages of similar length); otherwise keep order.
    seed: Shuffle seed; with a seed each epoch's order is a pure function
      of `(seed, epoch)` (the same on every run, different between epochs).
    with_metadata: Also yield `id`, `passage_char_starts` and
      `passage_char_ends`.
    extra_spec: `{key: tf.io feature}` of further stored keys to parse in
      the same call, e.g. the knowledge step's teacher outputs.
    extra_parse: Optional `fn(values) -> dict` decoding them, where
      `values` holds the raw `extra_spec` values and the parsed model keys
      (`question_len`, `passage_len`, ...); its keys are added to each
      example (see `features.parse_example`). Every added tensor needs a
      known rank; batching zero-pads each dimension to the batch maximum.
    drop_remainder: Drop batches smaller than `batch_size` (static batch
      dimension, e.g. for TPUs).
    cache: Keep the parsed examples in memory from the first pass on (the
      split must fit in RAM). Training input then reads the files in name
      order and draws its randomness from the example shuffle alone:
      set `shuffle_buffer` to at least the split size for a full shuffle.
      The order is still the same on every run with a seed and still
      differs between epochs.
    pad_to: Pad every batch onto this grid (bounded shapes, see the module
      docstring; `length_grid(config)`); None pads to each batch's longest.
    length_axes: `{key: {axis: "passage" or "question"}}` for `extra_parse`
      keys whose variable axes are not named by the `passage_` /
      `question_` rule (with `pad_to`).
    epoch: Optional `epoch_variable()` holding the epoch being trained,
      read when each training pass starts (see the module docstring);
      without it pass i gets epoch i's order. Only used with a `seed`.

  Returns:
    A dataset of flat dicts, documented in this module's docstring.

  Raises:
    DataError: If no file matches `file_pattern`.
    TypeError: If `data_config` is not a `DataConfig`.
    ValueError: If `batch_size` is not positive, or with `pad_to` when a
      key's variable axes are not all passage or question positions.
  """
  if not isinstance(data_config, DataConfig):
    raise TypeError(
      "data_config must be a DataConfig (pass config.data), got "
      f"{type(data_config).__name__}."
    )
  if batch_size < 1:
    raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
  files = list_files(file_pattern)
  max_word_len = data_config.max_word_len
  extra_spec = dict(extra_spec or {})

  def parse(serialized):
    example = features.parse_example(
      serialized, max_word_len, extra_spec, extra_parse
    )
    if not with_metadata:
      for key in features.METADATA_KEYS:
        del example[key]
    return example

  def shuffle(dataset, op_seed):
    return dataset.shuffle(
      data_config.shuffle_buffer,
      seed=op_seed,
      reshuffle_each_iteration=op_seed is None,
    )

  if training and not cache:

    def read(op_seed):
      file_dataset = tf.data.Dataset.from_tensor_slices(files).shuffle(
        len(files), seed=op_seed, reshuffle_each_iteration=op_seed is None
      )
      records = file_dataset.interleave(
        lambda path: tf.data.TFRecordDataset(
          path, compression_type=_COMPRESSION
        ),
        cycle_length=min(len(files), _CYCLE_LENGTH),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
      )
      return shuffle(records, op_seed)

    dataset = _per_epoch(read, seed, epoch).map(
      parse, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
    )
  else:
    dataset = tf.data.TFRecordDataset(files, compression_type=_COMPRESSION)
    dataset = dataset.map(
      parse, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
    )
    if cache:
      # Parsed in file order, the same elements every epoch.
      dataset = dataset.cache()
    if training:
      parsed = dataset
      dataset = _per_epoch(lambda s: shuffle(parsed, s), seed, epoch)

  boundaries = list(data_config.bucket_boundaries)
  if training and boundaries:
    dataset = dataset.bucket_by_sequence_length(
      lambda example: example["passage_len"],
      bucket_boundaries=boundaries,
      bucket_batch_sizes=[batch_size] * (len(boundaries) + 1),
      drop_remainder=drop_remainder,
    )
  else:
    dataset = dataset.padded_batch(batch_size, drop_remainder=drop_remainder)
  if pad_to is not None:
    length_axes = dict(length_axes or {})
    _check_length_axes(dataset.element_spec, length_axes)
    logging.info(
      "Batches padded to passage lengths %s and question lengths %s: at "
      "most %d batch shapes per pass.",
      pad_to.passage,
      pad_to.question,
      pad_to.max_batch_shapes,
    )
    dataset = dataset.map(
      lambda batch: pad_batch(batch, pad_to, length_axes),
      num_parallel_calls=tf.data.AUTOTUNE,
      deterministic=True,
    )
  return dataset.prefetch(tf.data.AUTOTUNE)
