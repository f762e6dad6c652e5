"""Word and character vocabularies, and GloVe embedding loading.

Id 0 is `[PAD]` and id 1 is `[UNK]` in both vocabularies. Word lookups use
lowercased tokens when the vocabulary is lowercased; character lookups are
always case-sensitive, one id per Unicode code point.

On disk a vocabulary is a directory with `words.txt` and `chars.txt` (one
entry per line, line number = id, specials included) and `vocab.json`
(lowercase flag, sizes and the word-id layout below). Tokens never contain
whitespace, so one entry per line is unambiguous.

Word-id layout. `build_vocabulary` orders words by descending training
count. `load_pretrained` (GloVe) then re-lays the ids out so that every
row that trains comes first and every frozen pretrained row after:

| ids                                   | rows                                |
|---------------------------------------|-------------------------------------|
| 0, 1                                  | `[PAD]`, `[UNK]` (train)            |
| 2 .. 2 + num_tuned_words - 1          | the `data.tune_top_words` most      |
|                                       | frequent training-question words,   |
|                                       | from their vectors (train)          |
| .. num_trainable_words - 1            | words without a pretrained vector,  |
|                                       | random N(0, 0.1^2) (train)          |
| num_trainable_words .. num_words - 1  | words with a pretrained vector      |
|                                       | (frozen)                            |

Within each block words keep their count order. The reader's word
embedding holds the first `num_trainable_words` rows in a trainable weight
and the rest in a frozen one (`a2d_tf.layers.PartlyFrozenEmbedding`).
Without pretrained vectors `num_trainable_words` is None: the count order
is kept and every row trains.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import os
from collections.abc import Iterable, Sequence

import numpy as np
import tensorflow as tf

from a2d_tf.data import tokenization
from a2d_tf.data.records import DataError, Record

PAD = "[PAD]"
UNK = "[UNK]"
PAD_ID = 0
UNK_ID = 1
_SPECIALS = (PAD, UNK)

WORDS_FILE = "words.txt"
CHARS_FILE = "chars.txt"
META_FILE = "vocab.json"


def _with_specials(entries: Sequence[str], kind: str) -> list[str]:
  entries = list(entries)
  if tuple(entries[:2]) == _SPECIALS:
    entries = entries[2:]
  seen = set()
  for entry in entries:
    if entry in _SPECIALS:
      raise ValueError(
        f"{kind} entry {entry!r} is reserved; specials come first only."
      )
    if not entry or any(c in entry for c in "\n\r"):
      raise ValueError(f"Bad {kind} entry {entry!r}: empty or has a newline.")
    if entry in seen:
      raise ValueError(f"Duplicate {kind} entry {entry!r}.")
    seen.add(entry)
  return [*_SPECIALS, *entries]


class Vocabulary:
  """Word and character vocabularies with `[PAD]`=0 and `[UNK]`=1.

  Args:
    words: Words in id order. The specials are prepended unless the list
      already starts with them (so `Vocabulary(v.words, v.chars, ...)`
      round-trips).
    chars: Characters (single code points) in id order, same convention.
    lowercase: Whether `word_id` lowercases tokens before the lookup.
    num_trainable_words: For a vocabulary laid out for pretrained vectors
      (module docstring): ids below it train, the others are frozen
      pretrained rows. None: no such layout, every row trains.
    num_tuned_words: How many of the trainable ids, from id 2 on, are tuned
      frequent question words.
  """

  def __init__(
    self,
    words: Sequence[str],
    chars: Sequence[str],
    lowercase: bool,
    num_trainable_words: int | None = None,
    num_tuned_words: int = 0,
  ):
    self._words = _with_specials(words, "word")
    self._chars = _with_specials(chars, "char")
    for char in self._chars[2:]:
      if len(char) != 1:
        raise ValueError(f"Char entry {char!r} is not one code point.")
    self.lowercase = bool(lowercase)
    if num_trainable_words is not None and not (
      len(_SPECIALS) <= num_trainable_words <= len(self._words)
    ):
      raise ValueError(
        f"num_trainable_words must be in [{len(_SPECIALS)}, "
        f"{len(self._words)}], received: {num_trainable_words}"
      )
    limit = (num_trainable_words or len(_SPECIALS)) - len(_SPECIALS)
    if not 0 <= num_tuned_words <= limit:
      raise ValueError(
        f"num_tuned_words must be in [0, {limit}] (the trainable ids after "
        f"the specials), received: {num_tuned_words}"
      )
    self.num_trainable_words = num_trainable_words
    self.num_tuned_words = num_tuned_words
    self._word_ids = {w: i for i, w in enumerate(self._words)}
    self._char_ids = {c: i for i, c in enumerate(self._chars)}

  @property
  def words(self) -> list[str]:
    """All words in id order, specials included."""
    return list(self._words)

  @property
  def chars(self) -> list[str]:
    """All characters in id order, specials included."""
    return list(self._chars)

  @property
  def num_words(self) -> int:
    return len(self._words)

  @property
  def num_chars(self) -> int:
    return len(self._chars)

  def normalize(self, token: str) -> str:
    """The form of `token` used for word lookups."""
    return token.lower() if self.lowercase else token

  def word_id(self, token: str) -> int:
    """Id of `token` (lowercased if the vocabulary is), else `UNK_ID`."""
    return self._word_ids.get(self.normalize(token), UNK_ID)

  def has_word(self, token: str) -> bool:
    return self.normalize(token) in self._word_ids

  def char_ids(self, token: str, max_word_len: int) -> list[int]:
    """Character ids of `token`, truncated and 0-padded to `max_word_len`."""
    ids = [self._char_ids.get(c, UNK_ID) for c in token[:max_word_len]]
    return ids + [PAD_ID] * (max_word_len - len(ids))

  def __eq__(self, other) -> bool:
    return (
      isinstance(other, Vocabulary)
      and self._words == other._words
      and self._chars == other._chars
      and self.lowercase == other.lowercase
      and self.num_trainable_words == other.num_trainable_words
      and self.num_tuned_words == other.num_tuned_words
    )

  def __repr__(self) -> str:
    return (
      f"Vocabulary(num_words={self.num_words}, num_chars={self.num_chars}, "
      f"lowercase={self.lowercase}, "
      f"num_trainable_words={self.num_trainable_words}, "
      f"num_tuned_words={self.num_tuned_words})"
    )

  def save(self, directory: str) -> None:
    """Writes `words.txt`, `chars.txt` and `vocab.json` into `directory`."""
    tf.io.gfile.makedirs(directory)
    for name, entries in ((WORDS_FILE, self._words), (CHARS_FILE, self._chars)):
      with tf.io.gfile.GFile(os.path.join(directory, name), "w") as f:
        f.write("".join(e + "\n" for e in entries))
    meta = {
      "lowercase": self.lowercase,
      "num_words": self.num_words,
      "num_chars": self.num_chars,
      "pad": PAD,
      "unk": UNK,
    }
    if self.num_trainable_words is not None:
      meta["num_trainable_words"] = self.num_trainable_words
      meta["num_tuned_words"] = self.num_tuned_words
    with tf.io.gfile.GFile(os.path.join(directory, META_FILE), "w") as f:
      f.write(json.dumps(meta, indent=2, sort_keys=True) + "\n")

  @classmethod
  def load(cls, directory: str) -> Vocabulary:
    """Reads a vocabulary written by `save`.

    Raises:
      DataError: If a file is missing or sizes disagree with `vocab.json`.
    """
    entries = {}
    for name in (WORDS_FILE, CHARS_FILE, META_FILE):
      path = os.path.join(directory, name)
      if not tf.io.gfile.exists(path):
        raise DataError("vocabulary file is missing", path=path)
      with tf.io.gfile.GFile(path, "r") as f:
        entries[name] = f.read()
    meta_path = os.path.join(directory, META_FILE)
    try:
      meta = json.loads(entries[META_FILE])
    except json.JSONDecodeError as e:
      raise DataError(f"not valid JSON ({e})", path=meta_path) from None
    words = entries[WORDS_FILE].split("\n")[:-1]
    chars = entries[CHARS_FILE].split("\n")[:-1]
    for name, items, key in (
      (WORDS_FILE, words, "num_words"),
      (CHARS_FILE, chars, "num_chars"),
    ):
      if len(items) != meta.get(key) or tuple(items[:2]) != _SPECIALS:
        raise DataError(
          f"has {len(items)} entries (expected {meta.get(key)} starting "
          f"with {PAD} and {UNK})",
          path=os.path.join(directory, name),
        )
    try:
      return cls(
        words,
        chars,
        lowercase=meta["lowercase"],
        num_trainable_words=meta.get("num_trainable_words"),
        num_tuned_words=meta.get("num_tuned_words", 0),
      )
    except ValueError as e:
      raise DataError(str(e), path=meta_path) from None


def _count_sorted(counter: collections.Counter, min_count: int) -> list[str]:
  kept = [(k, n) for k, n in counter.items() if n >= min_count]
  kept.sort(key=lambda item: (-item[1], item[0]))
  return [k for k, _ in kept]


def build_vocabulary(
  records: Iterable[Record],
  min_word_count: int,
  min_char_count: int,
  lowercase: bool,
) -> Vocabulary:
  """Builds the vocabularies from questions and contexts of `records`.

  Pass the training split only. Each distinct context is counted once
  (SQuAD repeats a passage for each of its questions). Entries are ordered
  by descending count, ties alphabetically, so the result is deterministic.

  Args:
    records: Training records.
    min_word_count: Minimum count for a (normalized) word.
    min_char_count: Minimum count for a character.
    lowercase: Whether words are lowercased.

  Returns:
    The vocabulary.
  """
  texts = []
  seen_contexts = set()
  for record in records:
    texts.append(record.question)
    if record.context not in seen_contexts:
      seen_contexts.add(record.context)
      texts.append(record.context)
  word_counts = collections.Counter()
  char_counts = collections.Counter()
  for tokens in tokenization.tokenize_many(texts):
    for token in tokens:
      word_counts[token.text.lower() if lowercase else token.text] += 1
      char_counts.update(token.text)
  return Vocabulary(
    _count_sorted(word_counts, min_word_count),
    _count_sorted(char_counts, min_char_count),
    lowercase=lowercase,
  )


def _looks_like_float(text: str) -> bool:
  try:
    float(text)
  except ValueError:
    return False
  return True


@dataclasses.dataclass(frozen=True)
class WordVectors:
  """Pretrained word vectors laid out for a reader's word embedding.

  Attributes:
    matrix: float32 `[num_words, dim]`, row i the vector of word id i.
    num_trainable: Rows `[0, num_trainable)` keep training; the others are
      frozen (the vocabulary's `num_trainable_words`).
  """

  matrix: np.ndarray
  num_trainable: int


def question_word_counts(
  questions: Iterable[str], vocab: Vocabulary
) -> collections.Counter:
  """Counts of the vocabulary's (normalized) words over `questions`."""
  counts = collections.Counter()
  for tokens in tokenization.tokenize_many(list(questions)):
    for token in tokens:
      if vocab.has_word(token.text):
        counts[vocab.normalize(token.text)] += 1
  return counts


def load_pretrained(
  path: str,
  vocab: Vocabulary,
  dim: int,
  seed: int,
  questions: Iterable[str] = (),
  tune_top_words: int = 0,
) -> tuple[Vocabulary, WordVectors]:
  """Reads GloVe vectors and lays the word ids out for partial training.

  The returned vocabulary has the same words and characters as `vocab` in
  the id layout of the module docstring: specials, then the
  `tune_top_words` most frequent words of `questions` (ties in `vocab`
  order), then the words the file lacks, then the words it has. The
  matrix rows follow the new ids (`load_glove` fills them).

  Args:
    path: The GloVe file.
    vocab: A vocabulary from `build_vocabulary`.
    dim: Vector size.
    seed: Seed of the random rows.
    questions: Training questions, for the tuned words.
    tune_top_words: N, how many frequent question words keep training.

  Returns:
    `(vocabulary, vectors)`; `vectors.num_trainable` equals the new
    vocabulary's `num_trainable_words`.

  Raises:
    ValueError: If `tune_top_words` is negative.
    DataError: As `load_glove`.
  """
  if tune_top_words < 0:
    raise ValueError(
      f"tune_top_words must be >= 0, received: tune_top_words={tune_top_words}"
    )
  matrix, found = _read_glove(path, vocab, dim, seed)
  tuned_ids = []
  if tune_top_words:
    counts = question_word_counts(questions, vocab)
    ranked = sorted(counts, key=lambda w: (-counts[w], vocab.word_id(w)))
    tuned_ids = [vocab.word_id(w) for w in ranked[:tune_top_words]]
  tuned = set(tuned_ids)
  rest = [i for i in range(len(_SPECIALS), vocab.num_words) if i not in tuned]
  missing = [i for i in rest if i not in found]
  frozen = [i for i in rest if i in found]
  order = [PAD_ID, UNK_ID, *tuned_ids, *missing, *frozen]
  words = vocab.words
  laid_out = Vocabulary(
    [words[i] for i in order],
    vocab.chars,
    lowercase=vocab.lowercase,
    num_trainable_words=len(_SPECIALS) + len(tuned_ids) + len(missing),
    num_tuned_words=len(tuned_ids),
  )
  vectors = WordVectors(matrix[order], laid_out.num_trainable_words)
  return laid_out, vectors


def load_glove(
  path: str, vocab: Vocabulary, dim: int, seed: int
) -> tuple[np.ndarray, int]:
  """Builds a word embedding matrix from a GloVe text file.

  Each line is `word v1 ... v<dim>` separated by single spaces. A few GloVe
  840B words contain spaces (". . ."), so the word is everything before the
  last `dim` fields. For a lowercased vocabulary a cased GloVe word fills
  its lowercased entry unless the exact lowercase word also appears. Rows of
  words not in the file are drawn from N(0, 0.1^2) with `seed`; the `[PAD]`
  row is zero.

  Args:
    path: The GloVe file.
    vocab: The vocabulary whose rows to fill.
    dim: Vector size.
    seed: Seed of the random rows.

  Returns:
    A tuple `(matrix, num_found)`: float32 `[num_words, dim]` and the number
    of vocabulary words (specials excluded) found in the file.

  Raises:
    DataError: Naming the file and line number of a malformed line (too few
      or too many values, a value that is not a finite float, bad UTF-8).
  """
  matrix, found = _read_glove(path, vocab, dim, seed)
  return matrix, len(found)


def _read_glove(
  path: str, vocab: Vocabulary, dim: int, seed: int
) -> tuple[np.ndarray, set[int]]:
  """`load_glove`'s matrix and the set of word ids found in the file."""
  rng = np.random.default_rng(seed)
  matrix = rng.normal(0.0, 0.1, size=(vocab.num_words, dim)).astype(np.float32)
  matrix[PAD_ID] = 0.0
  exact = set()
  found = set()
  with tf.io.gfile.GFile(path, "rb") as f:
    for line_number, raw in enumerate(f, start=1):
      try:
        line = raw.decode("utf-8").rstrip("\r\n")
        if line_number == 1:
          # A byte order mark is skipped, as in every a2d reader.
          line = line.removeprefix("\ufeff")
      except UnicodeDecodeError as e:
        raise DataError(
          f"line {line_number}: not UTF-8 ({e})", path=path
        ) from None
      if not line.strip():
        continue
      fields = line.rstrip(" ").split(" ")
      word_fields = fields[:-dim] if len(fields) > dim else []
      if not word_fields or not "".join(word_fields):
        raise DataError(
          f"line {line_number}: expected a word and {dim} values, got "
          f"{len(fields)} fields",
          path=path,
        )
      if len(word_fields) > 1 and _looks_like_float(word_fields[-1]):
        raise DataError(
          f"line {line_number}: expected {dim} values, got more "
          f"({len(fields) - 1} fields after the first)",
          path=path,
        )
      try:
        values = np.asarray(fields[-dim:], dtype=np.float32)
      except ValueError as e:
        raise DataError(
          f"line {line_number}: a value is not a float ({e})", path=path
        ) from None
      if not np.all(np.isfinite(values)):
        raise DataError(f"line {line_number}: a value is not finite", path=path)
      word = " ".join(word_fields)
      key = vocab.normalize(word)
      word_id = vocab.word_id(key)
      if word_id < 2 or key in exact:
        continue
      matrix[word_id] = values
      found.add(word_id)
      if word == key:
        exact.add(key)
  return matrix, found
