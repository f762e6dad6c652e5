"""The one feature spec of a2d: records to tf.train.Example and back.

Every featurized example is a `tf.train.Example` with these keys (all
variable-length lists; `Lq`/`Lp` are the question/passage token counts after
truncation to `max_question_len`/`max_passage_len`, `W` is
`data.max_word_len`):

| key                   | stored dtype | stored length | parsed dtype, shape   |
|-----------------------|--------------|---------------|-----------------------|
| `id`                  | bytes        | 1             | string `[]`           |
| `question_ids`        | int64        | Lq            | int32 `[Lq]`          |
| `passage_ids`         | int64        | Lp            | int32 `[Lp]`          |
| `question_chars`      | int64        | Lq * W        | int32 `[Lq, W]`       |
| `passage_chars`       | int64        | Lp * W        | int32 `[Lp, W]`       |
| `question_em`         | float        | Lq * 2        | float32 `[Lq, 2]`     |
| `passage_em`          | float        | Lp * 2        | float32 `[Lp, 2]`     |
| `passage_char_starts` | int64        | Lp            | int32 `[Lp]`          |
| `passage_char_ends`   | int64        | Lp            | int32 `[Lp]`          |
| `start`               | int64        | 1             | int32 `[]`            |
| `end`                 | int64        | 1             | int32 `[]`            |

`parse_example` also adds `question_len` and `passage_len` (int32 `[]`), the
lengths the model builds its masks from. Character ids are 0-padded per token
to `W`; `passage_em[i]` is `[exact match of passage token i with any
question token, match after lowercasing both]` and `question_em[i]` its
mirror, `[exact match of question token i with any passage token, match
after lowercasing both]`, both over the truncated token lists;
`passage_char_starts/ends`
are code-point offsets of each passage token in the context (for mapping a
predicted span back to text); `start`/`end` are the gold token positions of
the first answer (0/0 when it is absent or cannot be mapped at evaluation).

`FEATURE_SPEC` is the parsing spec every reader of these files uses.
`TextFeaturizer` computes the same features from raw strings in-graph, for
serving.
"""

from __future__ import annotations

import bisect
import json
import os
from collections.abc import Callable, Mapping, Sequence

import tensorflow as tf

from a2d_tf.config import DataConfig
from a2d_tf.data import tokenization
from a2d_tf.data.records import Record
from a2d_tf.data.tokenization import Token, tokenize_batch_tf
from a2d_tf.data.vocab import UNK_ID, Vocabulary

# Why a record produced no example; every key is present in `SkipCounts`.
# Only `empty_question` and `empty_passage` apply at evaluation
# (`training=False`), where every other record is kept.
SKIP_REASONS = (
  "empty_question",
  "empty_passage",
  "no_answer",
  "answer_text_mismatch",
  "answer_not_aligned",
  "answer_outside_passage",
)

SkipCounts = dict[str, int]

FEATURE_SPEC = {
  "id": tf.io.FixedLenFeature([], tf.string),
  "question_ids": tf.io.RaggedFeature(tf.int64),
  "passage_ids": tf.io.RaggedFeature(tf.int64),
  "question_chars": tf.io.RaggedFeature(tf.int64),
  "passage_chars": tf.io.RaggedFeature(tf.int64),
  "question_em": tf.io.RaggedFeature(tf.float32),
  "passage_em": tf.io.RaggedFeature(tf.float32),
  "passage_char_starts": tf.io.RaggedFeature(tf.int64),
  "passage_char_ends": tf.io.RaggedFeature(tf.int64),
  "start": tf.io.FixedLenFeature([], tf.int64),
  "end": tf.io.FixedLenFeature([], tf.int64),
}

# Keys of the parsed dict that the model does not read.
METADATA_KEYS = ("id", "passage_char_starts", "passage_char_ends")

STATS_SUFFIX = "_stats.json"

# An extra stored feature: `tf.io.RaggedFeature(dtype)` for a list (parsed
# as a dense 1-D tensor) or `tf.io.FixedLenFeature` for a fixed shape.
FeatureType = tf.io.FixedLenFeature | tf.io.RaggedFeature
# Decodes extra stored keys; see `parse_example`.
ExtraParse = Callable[[dict[str, tf.Tensor]], dict[str, tf.Tensor]]


def shard_name(split: str, index: int, num_shards: int) -> str:
  """File name of one shard, e.g. `train-00000-of-00002.tfrecord.gz`."""
  return f"{split}-{index:05d}-of-{num_shards:05d}.tfrecord.gz"


def file_pattern(out_dir: str, split: str) -> str:
  """Glob matching every shard `write_split` writes for `split`."""
  return os.path.join(out_dir, f"{split}-?????-of-?????.tfrecord.gz")


def answer_token_span(
  tokens: Sequence[Token], char_start: int, char_end: int
) -> tuple[int, int] | None:
  """Token positions covering the character span `[char_start, char_end)`.

  The start token is the first one ending after `char_start` (the token
  containing the answer start, or the next one when the answer starts on a
  space); the end token is the last one starting before `char_end`.

  Args:
    tokens: Passage tokens in order.
    char_start: Code-point offset of the answer start.
    char_end: Code-point offset one past the answer end.

  Returns:
    `(start, end)` inclusive token positions, or None if no token overlaps.
  """
  ends = [t.end for t in tokens]
  starts = [t.start for t in tokens]
  start = bisect.bisect_right(ends, char_start)
  end = bisect.bisect_left(starts, char_end) - 1
  if start >= len(tokens) or end < 0 or start > end:
    return None
  return start, end


def _label(
  record: Record, passage_tokens: Sequence[Token], max_passage_len: int
) -> tuple[tuple[int, int] | None, str | None]:
  """Gold token span of the first answer, or the reason there is none."""
  if not record.answers:
    return None, "no_answer"
  answer = record.answers[0]
  char_end = answer.start + len(answer.text)
  if answer.start < 0 or record.context[answer.start : char_end] != (
    answer.text
  ):
    return None, "answer_text_mismatch"
  span = answer_token_span(passage_tokens, answer.start, char_end)
  if span is None:
    return None, "answer_not_aligned"
  if span[1] >= max_passage_len:
    return None, "answer_outside_passage"
  return span, None


def _int64(values) -> tf.train.Feature:
  return tf.train.Feature(int64_list=tf.train.Int64List(value=values))


def _float(values) -> tf.train.Feature:
  return tf.train.Feature(float_list=tf.train.FloatList(value=values))


def exact_match_flags(
  tokens: Sequence[Token], others: Sequence[Token]
) -> list[float]:
  """`[t in others, t.lower() in lowered others]` per token, flattened."""
  texts = {t.text for t in others}
  lowered = {t.text.lower() for t in others}
  flags = []
  for token in tokens:
    flags.append(float(token.text in texts))
    flags.append(float(token.text.lower() in lowered))
  return flags


def _example(
  record: Record,
  question_tokens: Sequence[Token],
  passage_tokens: Sequence[Token],
  span: tuple[int, int],
  vocab: Vocabulary,
  max_word_len: int,
) -> tf.train.Example:

  def chars(tokens):
    return [i for t in tokens for i in vocab.char_ids(t.text, max_word_len)]

  feature = {
    "id": tf.train.Feature(
      bytes_list=tf.train.BytesList(value=[record.id.encode("utf-8")])
    ),
    "question_ids": _int64([vocab.word_id(t.text) for t in question_tokens]),
    "passage_ids": _int64([vocab.word_id(t.text) for t in passage_tokens]),
    "question_chars": _int64(chars(question_tokens)),
    "passage_chars": _int64(chars(passage_tokens)),
    "question_em": _float(exact_match_flags(question_tokens, passage_tokens)),
    "passage_em": _float(exact_match_flags(passage_tokens, question_tokens)),
    "passage_char_starts": _int64([t.start for t in passage_tokens]),
    "passage_char_ends": _int64([t.end for t in passage_tokens]),
    "start": _int64([span[0]]),
    "end": _int64([span[1]]),
  }
  return tf.train.Example(features=tf.train.Features(feature=feature))


def featurize(
  records: Sequence[Record],
  vocab: Vocabulary,
  data_config: DataConfig,
  training: bool,
) -> tuple[list[tf.train.Example], SkipCounts]:
  """Turns records into examples of the feature spec.

  Questions and passages are truncated to `max_question_len` and
  `max_passage_len` tokens. With `training=True` a record is skipped (and
  counted) when it has no answer (`no_answer`), its first answer's text is
  not `context[start:start + len(text)]` (`answer_text_mismatch`), the
  answer covers no token (`answer_not_aligned`) or ends beyond the
  truncated passage (`answer_outside_passage`). With `training=False` those
  records are kept with `start = end = 0`, so evaluation covers every
  question. Records whose question or passage has no token are skipped in
  both modes (`empty_question`, `empty_passage`).

  Args:
    records: The records.
    vocab: Word and character vocabulary.
    data_config: Lengths (`max_question_len`, `max_passage_len`,
      `max_word_len`).
    training: Whether unlabelable records are skipped.

  Returns:
    A tuple `(examples, skip_counts)`: examples in record order, and the
    number of skipped records per reason of `SKIP_REASONS`.
  """
  records = list(records)
  contexts = list(dict.fromkeys(r.context for r in records))
  context_tokens = dict(
    zip(contexts, tokenization.tokenize_many(contexts), strict=True)
  )
  question_tokens = tokenization.tokenize_many([r.question for r in records])
  counts = dict.fromkeys(SKIP_REASONS, 0)
  examples = []
  for record, q_tokens in zip(records, question_tokens, strict=True):
    q_tokens = q_tokens[: data_config.max_question_len]
    all_passage_tokens = context_tokens[record.context]
    p_tokens = all_passage_tokens[: data_config.max_passage_len]
    if not q_tokens:
      counts["empty_question"] += 1
      continue
    if not p_tokens:
      counts["empty_passage"] += 1
      continue
    span, reason = _label(
      record, all_passage_tokens, data_config.max_passage_len
    )
    if reason is not None:
      if training:
        counts[reason] += 1
        continue
      span = (0, 0)
    examples.append(
      _example(
        record, q_tokens, p_tokens, span, vocab, data_config.max_word_len
      )
    )
  return examples, counts


def parse_example(
  serialized: tf.Tensor,
  max_word_len: int,
  extra_spec: Mapping[str, FeatureType] | None = None,
  extra_parse: ExtraParse | None = None,
) -> dict[str, tf.Tensor]:
  """Parses one serialized example into the unbatched model input dict.

  Args:
    serialized: tf.string `[]`, a serialized `tf.train.Example`.
    max_word_len: `W`, the characters per token the data was written with.
    extra_spec: Optional `{key: tf.io feature}` of further stored keys
      (e.g. the knowledge step's), parsed in the same call.
    extra_parse: Optional `fn(values) -> dict` that decodes them: `values`
      holds the raw `extra_spec` values and the parsed keys above (so the
      lengths are at hand); the returned keys are added to the result.
      Without it the raw `extra_spec` values are added as they are.

  Returns:
    The dict documented in this module's docstring (int32 ids and positions,
    float32 `question_em`/`passage_em`, string `id`,
    `question_len`/`passage_len`), plus
    the decoded extra keys.
  """
  extra_spec = dict(extra_spec or {})
  clashes = sorted(set(extra_spec) & set(FEATURE_SPEC))
  if clashes:
    raise ValueError(f"extra_spec keys {clashes} clash with FEATURE_SPEC.")
  spec = {**FEATURE_SPEC, **extra_spec}
  raw = tf.io.parse_single_example(serialized, spec)
  question_len = tf.size(raw["question_ids"], out_type=tf.int32)
  passage_len = tf.size(raw["passage_ids"], out_type=tf.int32)
  checks = [
    tf.debugging.assert_equal(
      tf.size(raw["question_chars"], out_type=tf.int32),
      question_len * max_word_len,
      message="question_chars size != question_len * max_word_len; "
      "was the data written with another data.max_word_len?",
    ),
    tf.debugging.assert_equal(
      tf.size(raw["passage_chars"], out_type=tf.int32),
      passage_len * max_word_len,
      message="passage_chars size != passage_len * max_word_len; "
      "was the data written with another data.max_word_len?",
    ),
    tf.debugging.assert_equal(
      tf.size(raw["question_em"], out_type=tf.int32),
      question_len * 2,
      message="question_em size != question_len * 2; were these features "
      "written before question_em existed? Run the transform step again.",
    ),
  ]
  with tf.control_dependencies(checks):
    parsed = {
      "id": raw["id"],
      "question_ids": tf.cast(raw["question_ids"], tf.int32),
      "passage_ids": tf.cast(raw["passage_ids"], tf.int32),
      "question_chars": tf.reshape(
        tf.cast(raw["question_chars"], tf.int32),
        [question_len, max_word_len],
      ),
      "passage_chars": tf.reshape(
        tf.cast(raw["passage_chars"], tf.int32),
        [passage_len, max_word_len],
      ),
      "question_em": tf.reshape(raw["question_em"], [question_len, 2]),
      "passage_em": tf.reshape(raw["passage_em"], [passage_len, 2]),
      "question_len": question_len,
      "passage_len": passage_len,
      "passage_char_starts": tf.cast(raw["passage_char_starts"], tf.int32),
      "passage_char_ends": tf.cast(raw["passage_char_ends"], tf.int32),
      "start": tf.cast(raw["start"], tf.int32),
      "end": tf.cast(raw["end"], tf.int32),
    }
  extras = {key: raw[key] for key in extra_spec}
  if extra_parse is not None:
    extras = extra_parse({**parsed, **extras})
    clashes = sorted(set(extras) & set(parsed))
    if clashes:
      raise ValueError(f"extra_parse returned existing keys {clashes}.")
  parsed.update(extras)
  return parsed


def write_split(
  records: Sequence[Record],
  vocab: Vocabulary,
  data_config: DataConfig,
  out_dir: str,
  split: str,
  training: bool,
) -> dict:
  """Featurizes `records` into GZIP TFRecord shards plus a stats file.

  Writes `data_config.num_shards` contiguous shards
  `<split>-0000i-of-0000N.tfrecord.gz` (so reading them in name order keeps
  record order) and `<split>_stats.json`.

  Args:
    records: The split's records.
    vocab: Vocabulary.
    data_config: Lengths and `num_shards`.
    out_dir: Output directory (created if needed).
    split: Split name used in file names, e.g. "train".
    training: Passed to `featurize`.

  Returns:
    The stats written: split, training, num_records, num_examples,
    num_skipped, skipped (count per reason), num_shards, files, and the
    lengths the data was written with.
  """
  num_shards = data_config.num_shards
  if num_shards < 1:
    raise ValueError(f"num_shards must be >= 1, got {num_shards}.")
  records = list(records)
  examples, skipped = featurize(records, vocab, data_config, training)
  tf.io.gfile.makedirs(out_dir)
  files = []
  per_shard = -(-len(examples) // num_shards)
  options = tf.io.TFRecordOptions(compression_type="GZIP")
  for index in range(num_shards):
    name = shard_name(split, index, num_shards)
    files.append(name)
    shard = examples[index * per_shard : (index + 1) * per_shard]
    with tf.io.TFRecordWriter(os.path.join(out_dir, name), options) as writer:
      for example in shard:
        writer.write(example.SerializeToString())
  stats = {
    "split": split,
    "training": training,
    "num_records": len(records),
    "num_examples": len(examples),
    "num_skipped": sum(skipped.values()),
    "skipped": skipped,
    "num_shards": num_shards,
    "files": files,
    "max_question_len": data_config.max_question_len,
    "max_passage_len": data_config.max_passage_len,
    "max_word_len": data_config.max_word_len,
    "vocab_words": vocab.num_words,
    "vocab_chars": vocab.num_chars,
  }
  stats_path = os.path.join(out_dir, split + STATS_SUFFIX)
  with tf.io.gfile.GFile(stats_path, "w") as f:
    f.write(json.dumps(stats, indent=2, sort_keys=True) + "\n")
  return stats


class TextFeaturizer(tf.Module):
  """Raw question/context strings to a model-input batch, in-graph.

  The serving counterpart of `featurize` + `make_dataset`: the same
  tokenizer, truncation, vocabulary lookups and exact-match features, as TF
  ops with lookup tables owned by this module, so a SavedModel that tracks
  it serves raw text. Works in a `tf.function` with unknown batch size.
  Lowercasing uses `tf.strings.lower(encoding="utf-8")`, which equals
  Python's `str.lower` except for rare characters whose lowercase form is
  longer (e.g. "İ").

  Args:
    vocab: The vocabulary the model was trained with.
    data_config: `max_question_len`, `max_passage_len`, `max_word_len`.
    name: Module name.
  """

  def __init__(
    self, vocab: Vocabulary, data_config: DataConfig, name: str | None = None
  ):
    super().__init__(name=name)
    self._lowercase = vocab.lowercase
    self._max_question_len = data_config.max_question_len
    self._max_passage_len = data_config.max_passage_len
    self._max_word_len = data_config.max_word_len
    self.word_table = self._table(vocab.words)
    self.char_table = self._table(vocab.chars)

  @staticmethod
  def _table(entries: Sequence[str]) -> tf.lookup.StaticHashTable:
    keys = tf.constant(entries[2:], tf.string)
    ids = tf.range(2, len(entries), dtype=tf.int64)
    return tf.lookup.StaticHashTable(
      tf.lookup.KeyValueTensorInitializer(keys, ids), default_value=UNK_ID
    )

  def _lower(self, tokens: tf.Tensor) -> tf.Tensor:
    return tf.strings.lower(tokens, encoding="utf-8")

  def _ids(self, tokens: tf.RaggedTensor) -> tf.Tensor:
    keys = tokens.flat_values
    if self._lowercase:
      keys = self._lower(keys)
    ids = tokens.with_flat_values(self.word_table.lookup(keys))
    return tf.cast(ids.to_tensor(default_value=0), tf.int32)

  def _chars(self, tokens: tf.RaggedTensor) -> tf.Tensor:
    chars = tf.strings.unicode_split(tokens, "UTF-8")[
      :, :, : self._max_word_len
    ]
    ids = chars.with_flat_values(self.char_table.lookup(chars.flat_values))
    ids = ids.to_tensor(default_value=0, shape=[None, None, self._max_word_len])
    return tf.cast(ids, tf.int32)

  def __call__(
    self, questions: tf.Tensor, contexts: tf.Tensor
  ) -> dict[str, tf.Tensor]:
    """Featurizes a batch.

    Args:
      questions: tf.string `[batch]`.
      contexts: tf.string `[batch]`.

    Returns:
      The `make_dataset` dict with metadata (`id` excluded): ids, chars,
      `question_em`, `passage_em`, lengths, `passage_char_starts`/`ends`
      int32 `[batch, passage_len]`, and `start`/`end` set to 0.
    """
    q_tokens, _, _ = tokenize_batch_tf(questions)
    p_tokens, p_starts, p_ends = tokenize_batch_tf(contexts)
    q_tokens = q_tokens[:, : self._max_question_len]
    p_tokens = p_tokens[:, : self._max_passage_len]
    p_starts = p_starts[:, : self._max_passage_len]
    p_ends = p_ends[:, : self._max_passage_len]
    question_len = tf.cast(q_tokens.row_lengths(), tf.int32)
    passage_len = tf.cast(p_tokens.row_lengths(), tf.int32)

    q_dense = q_tokens.to_tensor(default_value="")
    p_dense = p_tokens.to_tensor(default_value="")
    q_mask = tf.sequence_mask(question_len, tf.shape(q_dense)[1])
    p_mask = tf.sequence_mask(passage_len, tf.shape(p_dense)[1])

    def match(a, a_mask, b, b_mask):
      """Whether each valid token of `a` occurs among the valid `b`."""
      same = tf.equal(a[:, :, None], b[:, None, :]) & b_mask[:, None, :]
      return tf.reduce_any(same, axis=2) & a_mask

    def flags(a, a_mask, b, b_mask):
      return tf.cast(
        tf.stack(
          [
            match(a, a_mask, b, b_mask),
            match(self._lower(a), a_mask, self._lower(b), b_mask),
          ],
          axis=-1,
        ),
        tf.float32,
      )

    batch = tf.shape(questions)[0]
    return {
      "question_ids": self._ids(q_tokens),
      "passage_ids": self._ids(p_tokens),
      "question_chars": self._chars(q_tokens),
      "passage_chars": self._chars(p_tokens),
      "question_em": flags(q_dense, q_mask, p_dense, p_mask),
      "passage_em": flags(p_dense, p_mask, q_dense, q_mask),
      "question_len": question_len,
      "passage_len": passage_len,
      "passage_char_starts": tf.cast(p_starts.to_tensor(), tf.int32),
      "passage_char_ends": tf.cast(p_ends.to_tensor(), tf.int32),
      "start": tf.zeros([batch], tf.int32),
      "end": tf.zeros([batch], tf.int32),
    }
