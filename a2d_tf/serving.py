"""SavedModel export of a reader for TF Serving, answering raw text.

`export_serving_model` writes `<export_dir>/<version>/`, the layout TF
Serving watches (one integer folder per version), with two signatures:

`serving_default` (raw text in, answer out):

| name         | dtype   | shape     | meaning                              |
|--------------|---------|-----------|--------------------------------------|
| `question`   | string  | `[batch]` | input: UTF-8 question                |
| `context`    | string  | `[batch]` | input: UTF-8 passage                 |
| `answer`     | string  | `[batch]` | `context[start_char:end_char]`       |
| `start_char` | int64   | `[batch]` | code-point offset of the answer      |
| `end_char`   | int64   | `[batch]` | code-point offset one past its end   |
| `score`      | float32 | `[batch]` | p_start * p_end of the span          |
| `status`     | string  | `[batch]` | "ok", or why the row has no answer   |

Offsets count Unicode code points (SQuAD's `answer_start` convention), so
`context[start_char:end_char] == answer` holds for Python strings.
Tokenization (the tensorflow-text tokenizer of `a2d_tf.data.tokenization`),
vocabulary and character lookups, truncation and the exact-match features
run inside the graph (`a2d_tf.data.features.TextFeaturizer`, the training
features' twin); the span comes from `decoding.top_k_spans_tf` with k = 1,
the decoder of offline evaluation, over the reader's softmax (temperature
1), so a served answer equals `a2d_tf.inference.predict` for the same text.

Limits: a question keeps its first `data.max_question_len` tokens and a
context its first `data.max_passage_len` tokens; the rest is ignored and
the answer is searched in the kept part only. Answers are at most
`model.max_answer_len` tokens.

Rows that cannot be answered get `answer=""`, `start_char=end_char=-1`,
`score=0` and a `status` saying why (`STATUSES`, checked in this order):
`invalid_utf8_question` / `invalid_utf8_context` (bytes that are not
UTF-8: the row is never tokenized), `empty_question` / `empty_context` (no
token: empty, whitespace, or only invisible characters such as a zero-width
space, see `a2d_tf.data.tokenization`). Answered rows have status `ok`.
The other rows of a batch are answered normally.

`predict_features` (tokenized input, for clients that featurize
themselves, see `a2d_tf.data.features`): inputs `question_ids`,
`passage_ids` int32 `[batch, len]`, `question_chars`, `passage_chars` int32
`[batch, len, max_word_len]`, `passage_em` float32 `[batch, passage_len,
2]`, `question_em` float32 `[batch, question_len, 2]` (only for a reader
with `model.question_em`), `question_len`, `passage_len` int32 `[batch]`;
outputs the reader's
`start_logits`, `end_logits` float32 `[batch, passage_len]` and `attention`
float32 `[batch, aligner_hops, passage_len, question_len]`.

The export is self-contained: `tf.saved_model.load` needs TensorFlow and
`import tensorflow_text` (which registers the tokenizer's op), not a2d or
Keras. TF Serving's model server links the tensorflow-text ops.
`assets.extra/a2d_serving.json` records the limits above.
"""

from __future__ import annotations

import json
import os
import uuid

import keras
import tensorflow as tf

from a2d_tf import decoding, masking
from a2d_tf.config import ExperimentConfig
from a2d_tf.data.features import TextFeaturizer
from a2d_tf.data.vocab import Vocabulary
from a2d_tf.models.reader import (
  FLOAT_KEYS,
  INPUT_KEYS,
  NUM_EM_FEATURES,
  input_keys,
)

SERVING_SIGNATURE = "serving_default"
FEATURES_SIGNATURE = "predict_features"
SERVING_OUTPUTS = ("answer", "start_char", "end_char", "score", "status")
# `status` values of `serving_default`, in the order they are checked; every
# status but OK comes with an empty answer, offsets -1 and score 0.
OK = "ok"
STATUSES = (
  "invalid_utf8_question",
  "invalid_utf8_context",
  "empty_question",
  "empty_context",
  "no_span",
  OK,
)
FEATURE_OUTPUTS = ("start_logits", "end_logits", "attention")
METADATA_FILE = os.path.join("assets.extra", "a2d_serving.json")

# Model inputs with a token axis (axis 1); see `_pad_tokens`.
_TOKEN_KEYS = (
  "question_ids",
  "passage_ids",
  "question_chars",
  "passage_chars",
  "question_em",
  "passage_em",
  "passage_char_starts",
  "passage_char_ends",
)


def feature_signature(
  max_word_len: int, keys: tuple[str, ...] = INPUT_KEYS
) -> dict[str, tf.TensorSpec]:
  """Input specs of `predict_features`, named after the model inputs.

  Args:
    max_word_len: Characters per token.
    keys: The model inputs to list (`RMRReader.input_keys`).
  """
  shapes = {
    "question_ids": [None, None],
    "passage_ids": [None, None],
    "question_chars": [None, None, max_word_len],
    "passage_chars": [None, None, max_word_len],
    "question_em": [None, None, NUM_EM_FEATURES],
    "passage_em": [None, None, NUM_EM_FEATURES],
    "question_len": [None],
    "passage_len": [None],
  }
  return {
    key: tf.TensorSpec(
      shapes[key],
      tf.float32 if key in FLOAT_KEYS else tf.int32,
      name=key,
    )
    for key in keys
  }


def _input_keys(reader: keras.Model) -> tuple[str, ...]:
  """The inputs `reader` reads: its `input_keys`, else all but `question_em`.

  A model without `input_keys` gets what readers read before question
  flags existed.
  """
  return tuple(getattr(reader, "input_keys", input_keys(question_em=False)))


def _portable_reader(reader: keras.Model) -> keras.Model:
  """A copy of `reader` whose LSTMs never trace to cuDNN-only kernels.

  Keras picks the cuDNN LSTM kernel when a GPU is visible at trace time and
  bakes it into the graph, and that op has no CPU kernel: an export traced
  on a GPU host would not load on a CPU model server. The copy shares the
  weights' values (same config, `use_cudnn=False`).
  """
  config = reader.get_config()
  if config.get("use_cudnn", False) is False:
    return reader
  copy = type(reader).from_config({**config, "use_cudnn": False})
  copy.build(None)
  copy.set_weights(reader.get_weights())
  return copy


def _pad_tokens(features: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
  """Pads the token axis of `_TOKEN_KEYS` to at least one position.

  Only a batch whose every question (or context) is empty has a zero-length
  token axis; every row of it is answered empty anyway, and one padding
  position keeps the model's and decoder's shapes valid.
  """
  padded = dict(features)
  for key in _TOKEN_KEYS:
    value = features[key]
    missing = tf.maximum(1 - tf.shape(value)[1], 0)
    paddings = tf.concat(
      [[[0, 0], [0, missing]], tf.zeros([tf.rank(value) - 2, 2], tf.int32)],
      axis=0,
    )
    padded[key] = tf.pad(value, paddings)
  return padded


def _is_utf8(strings: tf.Tensor) -> tf.Tensor:
  """bool `[batch]`: whether each string is valid UTF-8.

  Transcoding replaces every invalid sequence (stray bytes, overlong forms,
  encoded surrogates), so a string is valid when it comes back unchanged.
  """
  repaired = tf.strings.unicode_transcode(
    strings, "UTF-8", "UTF-8", errors="replace", replacement_char=0xFFFD
  )
  return tf.equal(repaired, strings)


def _status(
  question_utf8: tf.Tensor,
  context_utf8: tf.Tensor,
  question_len: tf.Tensor,
  passage_len: tf.Tensor,
  found: tf.Tensor,
) -> tf.Tensor:
  """string `[batch]`: the first `STATUSES` entry that applies to a row."""
  status = tf.fill(tf.shape(found), OK)
  # Applied from the last check to the first, so the first one wins.
  for applies, name in reversed(
    (
      (~question_utf8, "invalid_utf8_question"),
      (~context_utf8, "invalid_utf8_context"),
      (question_len <= 0, "empty_question"),
      (passage_len <= 0, "empty_context"),
      (~found, "no_span"),
    )
  ):
    status = tf.where(applies, name, status)
  return status


def _answer_fn(
  reader: keras.Model, featurizer: TextFeaturizer, max_answer_len: int
):
  """The `serving_default` function: raw strings to decoded answers."""

  def answer(question: tf.Tensor, context: tf.Tensor) -> dict[str, tf.Tensor]:
    question_utf8 = _is_utf8(question)
    context_utf8 = _is_utf8(context)
    # A row with bytes that are not UTF-8 is never tokenized.
    question = tf.where(question_utf8, question, "")
    context = tf.where(context_utf8, context, "")
    features = _pad_tokens(featurizer(question, context))
    passage_len = features["passage_len"]
    answerable = (features["question_len"] > 0) & (passage_len > 0)
    inputs = {key: features[key] for key in _input_keys(reader)}
    outputs = reader(inputs, training=False)
    mask = masking.sequence_mask(
      passage_len, tf.shape(outputs["start_logits"])[1]
    )
    start_probs = masking.masked_softmax(outputs["start_logits"], mask)
    end_probs = masking.masked_softmax(outputs["end_logits"], mask)
    spans, scores = decoding.top_k_spans_tf(
      start_probs, end_probs, passage_len, 1, max_answer_len
    )
    first, last = spans[:, 0, 0], spans[:, 0, 1]
    found = answerable & (first >= 0)
    start_char = tf.gather(
      features["passage_char_starts"], tf.maximum(first, 0), batch_dims=1
    )
    end_char = tf.gather(
      features["passage_char_ends"], tf.maximum(last, 0), batch_dims=1
    )
    start_char = tf.where(found, tf.cast(start_char, tf.int64), -1)
    end_char = tf.where(found, tf.cast(end_char, tf.int64), -1)
    text = tf.strings.substr(
      context,
      tf.maximum(start_char, 0),
      tf.maximum(end_char - start_char, 0),
      unit="UTF8_CHAR",
    )
    return {
      "answer": text,
      "start_char": start_char,
      "end_char": end_char,
      "score": tf.where(found, scores[:, 0], tf.zeros_like(scores[:, 0])),
      "status": _status(
        question_utf8,
        context_utf8,
        features["question_len"],
        passage_len,
        found,
      ),
    }

  return answer


def _check_version(version) -> int:
  if isinstance(version, bool) or not isinstance(version, int) or version < 0:
    raise ValueError(
      "version must be a non-negative integer (TF Serving's version "
      f"folder), received: version={version!r}"
    )
  return version


def export_serving_model(
  reader: keras.Model,
  vocab: Vocabulary,
  config: ExperimentConfig,
  export_dir: str,
  version: int | None = None,
) -> str:
  """Writes the serving SavedModel to `<export_dir>/<version>/`.

  The SavedModel is written to a hidden temporary folder next to the
  version folder and renamed into place, so a model server watching
  `export_dir` never loads half an export.

  Args:
    reader: A built reader (`RMRReader` or any Keras model with its input
      dict and outputs), e.g. the student loaded from its `.keras` file.
    vocab: The vocabulary the reader was trained with.
    config: Supplies `data.max_question_len`, `data.max_passage_len`,
      `data.max_word_len` (featurization, as in training) and
      `model.max_answer_len` (decoding).
    export_dir: The model's base path for TF Serving.
    version: The version folder; default `config.export.version`.

  Returns:
    The path of the written version folder.

  Raises:
    ValueError: `version` is not a non-negative integer, or the reader's
      vocabulary sizes differ from `vocab`'s.
    FileExistsError: The version folder already exists.
  """
  version = _check_version(
    config.export.version if version is None else version
  )
  for attr, size in (
    ("word_vocab_size", vocab.num_words),
    ("char_vocab_size", vocab.num_chars),
  ):
    expected = getattr(reader, attr, size)
    if expected != size:
      raise ValueError(
        f"The reader has {attr}={expected} but the vocabulary has {size} "
        "entries; export with the vocabulary the reader was trained with."
      )
  path = os.path.join(export_dir, str(version))
  if tf.io.gfile.exists(path):
    raise FileExistsError(
      f"{path} exists; export a new version instead of overwriting one a "
      "model server may be serving."
    )
  tmp_path = os.path.join(export_dir, f".tmp-{version}-{uuid.uuid4().hex}")
  tf.io.gfile.makedirs(export_dir)

  model = _portable_reader(reader)
  featurizer = TextFeaturizer(vocab, config.data, name="featurizer")
  archive = keras.export.ExportArchive()
  archive.track(model)
  archive.track(featurizer)
  text_spec = [
    tf.TensorSpec([None], tf.string, name="question"),
    tf.TensorSpec([None], tf.string, name="context"),
  ]
  archive.add_endpoint(
    SERVING_SIGNATURE,
    _answer_fn(model, featurizer, config.model.max_answer_len),
    input_signature=text_spec,
  )
  archive.add_endpoint(
    FEATURES_SIGNATURE,
    lambda inputs: model(inputs, training=False),
    input_signature=[
      feature_signature(config.data.max_word_len, _input_keys(model))
    ],
  )
  try:
    archive.write_out(tmp_path, verbose=False)
    metadata = {
      "signatures": {
        SERVING_SIGNATURE: list(SERVING_OUTPUTS),
        FEATURES_SIGNATURE: list(FEATURE_OUTPUTS),
      },
      "max_question_len": config.data.max_question_len,
      "max_passage_len": config.data.max_passage_len,
      "max_word_len": config.data.max_word_len,
      "max_answer_len": config.model.max_answer_len,
      "lowercase_words": vocab.lowercase,
      "vocab_words": vocab.num_words,
      "vocab_chars": vocab.num_chars,
      "offsets": "unicode code points",
      "statuses": list(STATUSES),
    }
    tf.io.gfile.makedirs(os.path.join(tmp_path, "assets.extra"))
    with tf.io.gfile.GFile(os.path.join(tmp_path, METADATA_FILE), "w") as f:
      f.write(json.dumps(metadata, indent=2, sort_keys=True) + "\n")
    tf.io.gfile.rename(tmp_path, path)
  finally:
    if tf.io.gfile.exists(tmp_path):
      tf.io.gfile.rmtree(tmp_path)
  return path
