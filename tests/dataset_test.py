"""Tests of the tf.data input function."""

import numpy as np
import pytest
import tensorflow as tf

from a2d_tf.config import DataConfig, ExperimentConfig
from a2d_tf.data import dataset as dataset_lib
from a2d_tf.data import features
from a2d_tf.data import vocab as vocab_lib
from a2d_tf.data.records import Answer, DataError, Record

CONFIG = DataConfig(
  max_passage_len=40,
  max_question_len=8,
  max_word_len=4,
  num_shards=2,
  bucket_boundaries=(10,),
  shuffle_buffer=64,
)
MODEL_KEYS = {
  "question_ids",
  "passage_ids",
  "question_chars",
  "passage_chars",
  "question_em",
  "passage_em",
  "question_len",
  "passage_len",
  "start",
  "end",
}


def _records():
  """12 short (3-7 token) and 12 long (20-31 token) passages, interleaved."""
  records = []
  for i in range(24):
    size = 3 + i % 5 if i % 2 == 0 else 20 + i % 12
    words = [f"w{j}" for j in range(size)]
    context = " ".join(words)
    question = " ".join(["what", "is", *words[: 1 + i % 4]]) + "?"
    records.append(
      Record(f"q{i:02d}", "t", context, question, (Answer("w1", 3),))
    )
  return records


@pytest.fixture(name="pattern", scope="module")
def fixture_pattern(tmp_path_factory):
  out_dir = str(tmp_path_factory.mktemp("features"))
  records = _records()
  vocab = vocab_lib.build_vocabulary(records, 1, 1, lowercase=True)
  features.write_split(records, vocab, CONFIG, out_dir, "train", True)
  return features.file_pattern(out_dir, "train")


def _batches(dataset):
  return [{k: v.numpy() for k, v in b.items()} for b in dataset]


def test_eval_batch_shapes_dtypes_and_order(pattern):
  dataset = dataset_lib.make_dataset(
    pattern, CONFIG, batch_size=5, training=False, with_metadata=True
  )
  batches = _batches(dataset)
  first = batches[0]
  lq, lp = first["question_ids"].shape[1], first["passage_ids"].shape[1]
  assert lp == first["passage_len"].max() and lq == first["question_len"].max()
  shapes = {k: v.shape for k, v in first.items()}
  assert shapes == {
    "question_ids": (5, lq),
    "passage_ids": (5, lp),
    "question_chars": (5, lq, 4),
    "passage_chars": (5, lp, 4),
    "question_em": (5, lq, 2),
    "passage_em": (5, lp, 2),
    "question_len": (5,),
    "passage_len": (5,),
    "start": (5,),
    "end": (5,),
    "id": (5,),
    "passage_char_starts": (5, lp),
    "passage_char_ends": (5, lp),
  }
  spec = dataset.element_spec
  assert spec["passage_ids"].dtype == tf.int32
  assert spec["passage_em"].dtype == tf.float32
  assert spec["question_em"].dtype == tf.float32
  assert spec["id"].dtype == tf.string
  ids = [i.decode() for b in batches for i in b["id"]]
  assert ids == [f"q{i:02d}" for i in range(24)]
  assert [len(b["id"]) for b in batches] == [5, 5, 5, 5, 4]


def test_padding_is_zero_beyond_lengths(pattern):
  dataset = dataset_lib.make_dataset(
    pattern, CONFIG, batch_size=8, training=False
  )
  for batch in _batches(dataset):
    assert set(batch) == MODEL_KEYS
    for row in range(len(batch["passage_len"])):
      lp, lq = batch["passage_len"][row], batch["question_len"][row]
      assert np.all(batch["passage_ids"][row, :lp] > 0)
      assert not batch["passage_ids"][row, lp:].any()
      assert not batch["passage_chars"][row, lp:].any()
      assert not batch["passage_em"][row, lp:].any()
      assert np.all(batch["question_ids"][row, :lq] > 0)
      assert not batch["question_ids"][row, lq:].any()
      assert not batch["question_chars"][row, lq:].any()
      assert not batch["question_em"][row, lq:].any()
      # "what is w0 ..." shares w0 with the passage at position 0; "what"
      # and "is" are not in the passage.
      assert batch["passage_em"][row, 0, 0] == 1.0
      np.testing.assert_array_equal(
        batch["question_em"][row, :3], [[0, 0], [0, 0], [1, 1]]
      )


def test_training_buckets_group_similar_passage_lengths(pattern):
  dataset = dataset_lib.make_dataset(
    pattern, CONFIG, batch_size=4, training=True, seed=7
  )
  batches = _batches(dataset)
  assert sum(len(b["passage_len"]) for b in batches) == 24
  for batch in batches:
    short = batch["passage_len"] < CONFIG.bucket_boundaries[0]
    assert short.all() or not short.any()
    assert batch["passage_ids"].shape[1] == batch["passage_len"].max()


def _training_ids(pattern, seed):
  dataset = dataset_lib.make_dataset(
    pattern,
    CONFIG,
    batch_size=4,
    training=True,
    seed=seed,
    with_metadata=True,
  )
  return [i for b in _batches(dataset) for i in b["id"].tolist()]


def test_training_order_is_deterministic_with_seed(pattern):
  first = _training_ids(pattern, seed=3)
  assert first == _training_ids(pattern, seed=3)
  assert sorted(first) == sorted(_training_ids(pattern, seed=4))
  assert first != _training_ids(pattern, seed=4)


def test_extra_spec_and_parse_add_padded_keys(pattern):
  def extra_parse(values):
    # Pretend knowledge: a per-passage-token score built from the lengths.
    return {
      "teacher_scores": tf.ones([values["passage_len"]], tf.float32),
      "confusing_start": tf.constant(-1, tf.int32),
    }

  dataset = dataset_lib.make_dataset(
    pattern,
    CONFIG,
    batch_size=6,
    training=False,
    extra_spec={"missing": tf.io.FixedLenFeature([], tf.int64, -1)},
    extra_parse=extra_parse,
  )
  batch = _batches(dataset)[0]
  assert batch["teacher_scores"].shape == batch["passage_ids"].shape
  np.testing.assert_array_equal(
    batch["teacher_scores"].sum(axis=1), batch["passage_len"]
  )
  np.testing.assert_array_equal(batch["confusing_start"], [-1] * 6)


def test_drop_remainder_gives_static_batch_dimension(pattern):
  dataset = dataset_lib.make_dataset(
    pattern, CONFIG, batch_size=5, training=False, drop_remainder=True
  )
  assert dataset.element_spec["passage_ids"].shape.as_list() == [5, None]
  assert len(_batches(dataset)) == 4


def test_count_examples_counts_all_shards(pattern):
  assert dataset_lib.count_examples(pattern) == 24


def test_make_dataset_without_files_is_data_error(tmp_path):
  with pytest.raises(DataError, match="no TFRecord files"):
    dataset_lib.make_dataset(
      str(tmp_path / "none-*"), CONFIG, batch_size=2, training=False
    )


def test_make_dataset_rejects_experiment_config(pattern):
  with pytest.raises(TypeError, match="config.data"):
    dataset_lib.make_dataset(
      pattern, ExperimentConfig(), batch_size=2, training=False
    )


GRID = dataset_lib.LengthGrid(passage=(10, 40), question=(4, 8))


def _shapes(dataset):
  return [
    (b["passage_ids"].shape[0], b["passage_ids"].shape[1])
    + (b["question_ids"].shape[1],)
    for b in _batches(dataset)
  ]


def test_padded_training_epoch_has_bounded_batch_shapes(pattern):
  def epoch(pad_to):
    return dataset_lib.make_dataset(
      pattern, CONFIG, 5, training=True, seed=3, pad_to=pad_to
    )

  padded = _shapes(epoch(GRID))
  assert sum(size for size, _, _ in padded) == 24
  assert {p for _, p, _ in padded} <= set(GRID.passage)
  assert {q for _, _, q in padded} <= set(GRID.question)
  assert len(set(padded)) <= GRID.max_batch_shapes == 8
  # Unpadded, the same epoch has passage sizes off the grid.
  plain = _shapes(epoch(None))
  assert {p for _, p, _ in plain} - set(GRID.passage)
  assert len(set(plain)) > len({(p, q) for _, p, q in padded})
  for batch in _batches(epoch(GRID)):
    keys = ("passage_ids", "passage_chars", "passage_em")
    assert len({batch[k].shape[1] for k in keys}) == 1
    assert batch["question_chars"].shape[1] == batch["question_ids"].shape[1]


def test_padding_onto_the_grid_only_appends_zeros(pattern):
  def batches(pad_to):
    return _batches(
      dataset_lib.make_dataset(
        pattern, CONFIG, 7, training=False, with_metadata=True, pad_to=pad_to
      )
    )

  for plain, padded in zip(batches(None), batches(GRID), strict=True):
    assert set(plain) == set(padded)
    for key, value in plain.items():
      grown = padded[key]
      if value.ndim < 2:
        np.testing.assert_array_equal(grown, value)
        continue
      region = tuple(slice(0, n) for n in value.shape)
      np.testing.assert_array_equal(grown[region], value)
      assert grown.sum() == value.sum() or value.dtype.kind == "O"
    assert padded["passage_ids"].shape[1] in GRID.passage
    assert padded["question_ids"].shape[1] in GRID.question


def test_length_grid_follows_the_runtime_section():
  from a2d_tf.config import get_config

  assert dataset_lib.length_grid(get_config("tiny")) is None
  xla = dataset_lib.length_grid(get_config("tiny", ["runtime.jit_compile=1"]))
  assert xla == dataset_lib.LengthGrid((100, 120, 140, 160), (16, 24))
  paper = dataset_lib.length_grid(
    get_config("paper", ["runtime.pad_to_bucket=true"])
  )
  assert paper.passage == (100, 150, 200, 250, 300, 400)
  assert paper.question == (16, 32, 50)
  assert paper.max_batch_shapes == 36
  off = get_config(
    "tiny", ["runtime.jit_compile=true", "runtime.pad_to_bucket=false"]
  )
  assert dataset_lib.length_grid(off) is None


def test_padding_needs_the_axes_of_extra_keys(pattern):
  def extra_parse(values):
    return {"teacher_scores": tf.ones([values["passage_len"]], tf.float32)}

  def make(length_axes):
    return dataset_lib.make_dataset(
      pattern,
      CONFIG,
      batch_size=6,
      training=False,
      extra_spec={"missing": tf.io.FixedLenFeature([], tf.int64, -1)},
      extra_parse=extra_parse,
      pad_to=GRID,
      length_axes=length_axes,
    )

  with pytest.raises(ValueError, match="'teacher_scores' has variable-size"):
    make(None)
  for batch in _batches(make({"teacher_scores": {1: dataset_lib.PASSAGE}})):
    assert batch["teacher_scores"].shape == batch["passage_ids"].shape
    np.testing.assert_array_equal(
      batch["teacher_scores"].sum(axis=1), batch["passage_len"]
    )


def _epoch_orders(pattern, epochs, seed=3, cache=False, global_seed=None):
  """Each epoch's ids from a fresh dataset, as a fresh process makes it."""
  if global_seed is not None:
    tf.random.set_seed(global_seed)
  epoch = dataset_lib.epoch_variable()
  dataset = dataset_lib.make_dataset(
    pattern,
    CONFIG,
    batch_size=4,
    training=True,
    seed=seed,
    with_metadata=True,
    cache=cache,
    epoch=epoch,
  )
  orders = {}
  for k in epochs:
    epoch.assign(k)
    orders[k] = [i for b in _batches(dataset) for i in b["id"].tolist()]
  return orders


@pytest.mark.parametrize("cache", [False, True])
def test_epoch_k_order_is_the_same_after_a_resume(pattern, cache):
  uninterrupted = _epoch_orders(pattern, range(4), cache=cache)
  assert len({tuple(o) for o in uninterrupted.values()}) == 4
  assert all(
    sorted(o) == sorted(uninterrupted[0]) for o in uninterrupted.values()
  )
  # A resumed process builds the input anew, after other work changed TF's
  # global seed, and starts at epoch 2.
  resumed = _epoch_orders(pattern, [2, 3], cache=cache, global_seed=1234)
  assert resumed == {2: uninterrupted[2], 3: uninterrupted[3]}
  # The same epoch read twice is the same order; another seed another one.
  assert _epoch_orders(pattern, [1, 1], cache=cache)[1] == uninterrupted[1]
  assert _epoch_orders(pattern, [1], seed=4, cache=cache)[1] != uninterrupted[1]


def test_training_passes_without_an_epoch_variable_count_themselves(pattern):
  tf.random.set_seed(99)
  dataset = dataset_lib.make_dataset(
    pattern, CONFIG, batch_size=4, training=True, seed=3, with_metadata=True
  )
  passes = [[i for b in _batches(dataset) for i in b["id"].tolist()]]
  passes.append([i for b in _batches(dataset) for i in b["id"].tolist()])
  # Pass i has epoch i's order, whatever the global seed.
  assert passes == list(_epoch_orders(pattern, range(2)).values())
