"""The one tokenizer of a2d, built on tensorflow-text ops.

Text is split on whitespace and every punctuation or symbol character
(Unicode categories P* and S*, which include most emoji) becomes its own
token; all other runs of characters (letters, digits, combining marks, CJK
ideographs) stay together. "Don't (x)." gives `Don ' t ( x ) .`.

Whitespace is every character that shows nothing: ASCII whitespace,
Unicode separators (Z*), control characters (Cc: NUL and the other C0 and
C1 controls, DEL), format characters (Cf: zero-width space, zero-width
joiner and non-joiner, word joiner, BOM, soft hyphen, the bidirectional
marks and embeddings, tag characters) and the other default-ignorable code
points (variation selectors, the combining grapheme joiner, Hangul
fillers, Mongolian free variation selectors). So `Who\x00 met ecole?` gives
`Who met ecole ?`, a string of only invisible characters has no token, and
an emoji sequence joined by zero-width joiners gives its emoji one by one.
These characters are replaced by spaces before splitting, one code point
for one, so the offsets still count the original string's code points.

The same graph ops run eagerly from Python (`tokenize`, `tokenize_many`), in
tf.data, and inside a SavedModel signature (`tokenize_batch_tf` works in graph
mode with an unknown batch size), so training features and serving inputs are
tokenized identically. Offsets are Unicode code points, the convention of
SQuAD's `answer_start`, so `text[token.start:token.end] == token.text` holds
for Python strings; the byte offsets of the regex op are converted in-graph.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import tensorflow as tf
import tensorflow_text as tf_text

# Characters that show nothing (see the module docstring), each replaced by
# one space before splitting: whitespace, separators, controls, format
# characters and the default-ignorable code points outside Cf.
INVISIBLE_PATTERN = (
  r"[\s\p{Z}\p{Cc}\p{Cf}\x{034F}\x{115F}\x{1160}\x{17B4}\x{17B5}"
  r"\x{180B}-\x{180F}\x{3164}\x{FE00}-\x{FE0F}\x{FFA0}\x{E0100}-\x{E01EF}]"
)
# Runs of whitespace are dropped; each punctuation/symbol character is a
# delimiter that is kept as a token of its own.
_DELIM_PATTERN = r"[\s\p{Z}]+|[\p{P}\p{S}]"
_KEEP_PATTERN = r"[\p{P}\p{S}]"

# Strings tokenized per eager call of `tokenize_many`.
_EAGER_CHUNK = 1024


@dataclasses.dataclass(frozen=True)
class Token:
  """One token.

  Attributes:
    text: The token text, equal to `text[start:end]` of the source string.
    start: Code-point offset of the first character.
    end: Code-point offset one past the last character.
  """

  text: str
  start: int
  end: int


def _byte_to_char_offsets(
  strings: tf.Tensor, byte_offsets: tf.RaggedTensor
) -> tf.RaggedTensor:
  """Maps byte offsets into UTF-8 strings to code-point offsets.

  A byte offset `b` into string `i` becomes the number of characters of
  string `i` that start before byte `b`. All strings are laid end to end so
  one `searchsorted` over the concatenated character starts does the batch.

  Args:
    strings: tf.string `[batch]`.
    byte_offsets: int64 ragged `[batch, (tokens)]`, offsets into `strings`.

  Returns:
    int64 ragged `[batch, (tokens)]` code-point offsets.
  """
  _, char_starts = tf.strings.unicode_decode_with_offsets(
    strings, "UTF-8", errors="replace"
  )
  char_starts = tf.cast(char_starts, tf.int64)
  byte_lengths = tf.strings.length(strings, unit="BYTE")
  byte_bases = tf.cumsum(tf.cast(byte_lengths, tf.int64), exclusive=True)
  char_bases = tf.cast(char_starts.row_starts(), tf.int64)

  global_starts = char_starts + tf.expand_dims(byte_bases, 1)
  global_offsets = byte_offsets + tf.expand_dims(byte_bases, 1)
  counts = tf.searchsorted(
    tf.expand_dims(global_starts.flat_values, 0),
    tf.expand_dims(global_offsets.flat_values, 0),
    side="left",
    out_type=tf.int64,
  )[0]
  counts = byte_offsets.with_flat_values(counts)
  return counts - tf.expand_dims(char_bases, 1)


def tokenize_batch_tf(
  strings: tf.Tensor,
) -> tuple[tf.RaggedTensor, tf.RaggedTensor, tf.RaggedTensor]:
  """Tokenizes a batch of strings in-graph.

  Works eagerly, in tf.data and inside a `tf.function` whose input signature
  has an unknown batch size.

  Args:
    strings: tf.string `[batch]` (UTF-8).

  Returns:
    A tuple `(tokens, starts, ends)`: tf.string ragged `[batch, (tokens)]`
    and int64 ragged `[batch, (tokens)]` code-point start and end (exclusive)
    offsets of each token into the input strings. Bytes that are not
    UTF-8 stay inside tokens (`a2d_tf.serving` answers such rows with a
    status instead).
  """
  strings = tf.convert_to_tensor(strings, dtype=tf.string)
  # One space per invisible character keeps every code-point offset.
  strings = tf.strings.regex_replace(strings, INVISIBLE_PATTERN, " ")
  tokens, byte_starts, byte_ends = tf_text.regex_split_with_offsets(
    strings, _DELIM_PATTERN, _KEEP_PATTERN
  )
  byte_starts = tf.cast(byte_starts, tf.int64)
  byte_ends = tf.cast(byte_ends, tf.int64)
  starts = _byte_to_char_offsets(strings, byte_starts)
  ends = _byte_to_char_offsets(strings, byte_ends)
  return tokens, starts, ends


def tokenize_many(texts: Sequence[str]) -> list[list[Token]]:
  """Tokenizes Python strings eagerly with `tokenize_batch_tf`.

  Args:
    texts: Strings to tokenize; run through the TF op in chunks.

  Returns:
    One token list per input string.
  """
  result = []
  for begin in range(0, len(texts), _EAGER_CHUNK):
    chunk = list(texts[begin : begin + _EAGER_CHUNK])
    tokens, starts, ends = tokenize_batch_tf(tf.constant(chunk, tf.string))
    for row_tokens, row_starts, row_ends in zip(
      tokens.to_list(), starts.to_list(), ends.to_list(), strict=True
    ):
      result.append(
        [
          Token(text.decode("utf-8"), int(start), int(end))
          for text, start, end in zip(
            row_tokens, row_starts, row_ends, strict=True
          )
        ]
      )
  return result


def tokenize(text: str) -> list[Token]:
  """Tokenizes one Python string; identical to `tokenize_batch_tf`.

  Args:
    text: The string.

  Returns:
    Its tokens with code-point offsets (`text[t.start:t.end] == t.text`).
  """
  return tokenize_many([text])[0]
