"""Tests of the tensorflow-text tokenizer and its code-point offsets."""

import pytest
import tensorflow as tf

from a2d_tf.data import tokenization
from a2d_tf.data.tokenization import Token

TEXTS = [
  "Hello, world!",
  "Le café coûte 3€.",
  "中文 文本，测试。",
  "I ❤️ TF 😀😀ok",
  "a  b\t\tc\n\nd\u00a0e\u2009f",
  "don't (stop) -- now...",
  "",
  "   ",
  "e\u0301t\u00e9",
]


def test_tokenize_punctuation_is_split_into_single_char_tokens():
  tokens = tokenization.tokenize("Don't (x), y...")
  assert [t.text for t in tokens] == [
    "Don",
    "'",
    "t",
    "(",
    "x",
    ")",
    ",",
    "y",
    ".",
    ".",
    ".",
  ]


def test_tokenize_non_ascii_offsets_are_code_points():
  tokens = tokenization.tokenize("café 中文😀 x")
  assert tokens == [
    Token("café", 0, 4),
    Token("中文", 5, 7),
    Token("😀", 7, 8),
    Token("x", 9, 10),
  ]


def test_tokenize_multiple_and_unicode_spaces_are_dropped():
  tokens = tokenization.tokenize("  a  b\u00a0c\u2009d\n")
  assert tokens == [
    Token("a", 2, 3),
    Token("b", 5, 6),
    Token("c", 7, 8),
    Token("d", 9, 10),
  ]


@pytest.mark.parametrize("text", ["", "   ", "\n\t"])
def test_tokenize_blank_text_gives_no_tokens(text):
  assert tokenization.tokenize(text) == []


@pytest.mark.parametrize("text", TEXTS)
def test_tokenize_offsets_slice_the_token_text(text):
  for token in tokenization.tokenize(text):
    assert token.text
    assert text[token.start : token.end] == token.text


def test_tokenize_combining_mark_stays_in_word():
  assert tokenization.tokenize("e\u0301t\u00e9!") == [
    Token("e\u0301t\u00e9", 0, 4),
    Token("!", 4, 5),
  ]


def test_tokenize_many_empty_input_gives_empty_list():
  assert tokenization.tokenize_many([]) == []


def _from_tf(tokens, starts, ends):
  result = []
  rows = zip(tokens.to_list(), starts.to_list(), ends.to_list(), strict=True)
  for row in rows:
    result.append(
      [Token(t.decode("utf-8"), s, e) for t, s, e in zip(*row, strict=True)]
    )
  return result


def test_tokenize_batch_tf_equals_python_tokenize():
  tokens, starts, ends = tokenization.tokenize_batch_tf(tf.constant(TEXTS))
  assert starts.dtype == tf.int64 and ends.dtype == tf.int64
  assert _from_tf(tokens, starts, ends) == [
    tokenization.tokenize(t) for t in TEXTS
  ]


def test_tokenize_batch_tf_graph_mode_unknown_batch_size():
  fn = tf.function(
    tokenization.tokenize_batch_tf,
    input_signature=[tf.TensorSpec([None], tf.string)],
  )
  concrete = fn.get_concrete_function()
  assert concrete.structured_outputs[0].shape.as_list() == [None, None]
  for texts in (TEXTS, TEXTS[:2], ["", ""]):
    assert _from_tf(*fn(tf.constant(texts))) == [
      tokenization.tokenize(t) for t in texts
    ]


def test_tokenize_batch_tf_inside_dataset_map():
  dataset = (
    tf.data.Dataset.from_tensor_slices(TEXTS)
    .batch(4)
    .map(lambda s: tokenization.tokenize_batch_tf(s)[1].row_lengths())
  )
  counts = [n for batch in dataset for n in batch.numpy().tolist()]
  assert counts == [len(tokenization.tokenize(t)) for t in TEXTS]
