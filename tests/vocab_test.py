"""Tests of the vocabulary, its files and GloVe loading."""

import numpy as np
import pytest

from a2d_tf.data import vocab as vocab_lib
from a2d_tf.data.records import Answer, DataError, Record
from a2d_tf.data.vocab import Vocabulary


def _record(rid, context, question):
  return Record(rid, "t", context, question, (Answer(context[:1], 0),))


@pytest.fixture(name="records")
def fixture_records():
  context = "The cat sat. The cat ran."
  return [
    _record("q1", context, "Where the Cat?"),
    _record("q2", context, "Why did it run?"),
  ]


def test_build_vocabulary_specials_and_count_order(records):
  vocab = vocab_lib.build_vocabulary(
    records, min_word_count=1, min_char_count=1, lowercase=True
  )
  assert vocab.words[:2] == ["[PAD]", "[UNK]"]
  assert vocab.chars[:2] == ["[PAD]", "[UNK]"]
  # "cat", "the": 2 in the context (counted once) + 1 in q1; ".", "?": 2.
  # Ties are broken alphabetically.
  assert vocab.words[2:6] == ["cat", "the", ".", "?"]
  assert vocab.word_id("THE") == vocab.words.index("the")
  assert vocab.word_id("zebra") == vocab_lib.UNK_ID


def test_build_vocabulary_min_counts_drop_rare_entries(records):
  vocab = vocab_lib.build_vocabulary(
    records, min_word_count=2, min_char_count=4, lowercase=False
  )
  assert set(vocab.words[2:]) == {"The", "cat", ".", "?"}
  assert "W" not in vocab.chars
  assert vocab.word_id("the") == vocab_lib.UNK_ID
  assert vocab.char_ids("W", 1) == [vocab_lib.UNK_ID]


def test_char_ids_truncate_and_pad():
  vocab = Vocabulary(["ab"], ["a", "b", "é"], lowercase=False)
  assert vocab.char_ids("abé", 5) == [2, 3, 4, 0, 0]
  assert vocab.char_ids("abéa", 2) == [2, 3]
  assert vocab.char_ids("aZ", 3) == [2, 1, 0]


def test_vocabulary_accepts_lists_with_specials_once():
  vocab = Vocabulary(["x", "y"], ["x"], lowercase=True)
  again = Vocabulary(vocab.words, vocab.chars, lowercase=True)
  assert again == vocab
  assert again.num_words == 4


@pytest.mark.parametrize("words", [["a", "a"], ["a", "[UNK]"], ["a\nb"], [""]])
def test_vocabulary_rejects_bad_words(words):
  with pytest.raises(ValueError):
    Vocabulary(words, [], lowercase=False)


def test_save_load_round_trip(tmp_path, records):
  vocab = vocab_lib.build_vocabulary(records, 1, 1, lowercase=False)
  vocab.save(str(tmp_path))
  assert (tmp_path / "words.txt").read_text().split("\n")[:2] == [
    "[PAD]",
    "[UNK]",
  ]
  loaded = Vocabulary.load(str(tmp_path))
  assert loaded == vocab
  assert loaded.lowercase is False


def test_load_missing_file_names_it(tmp_path):
  Vocabulary(["a"], ["a"], lowercase=True).save(str(tmp_path))
  (tmp_path / "chars.txt").unlink()
  with pytest.raises(DataError, match="chars.txt"):
    Vocabulary.load(str(tmp_path))


def test_load_size_mismatch_is_data_error(tmp_path):
  Vocabulary(["a", "b"], ["a"], lowercase=True).save(str(tmp_path))
  (tmp_path / "words.txt").write_text("[PAD]\n[UNK]\na\n")
  with pytest.raises(DataError, match="words.txt"):
    Vocabulary.load(str(tmp_path))


def _write(tmp_path, lines):
  path = tmp_path / "glove.txt"
  path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
  return str(path)


def test_load_glove_fills_found_rows_and_zero_pad(tmp_path):
  vocab = Vocabulary(["cat", "dog", "emu"], [], lowercase=True)
  path = _write(
    tmp_path, ["Cat 9 9 9", "cat 1 2 3", "dog 4 5 6", "zebra 7 8 9"]
  )
  matrix, found = vocab_lib.load_glove(path, vocab, dim=3, seed=0)
  assert matrix.shape == (5, 3) and matrix.dtype == np.float32
  assert found == 2
  np.testing.assert_array_equal(matrix[0], [0, 0, 0])
  # The exact lowercase line wins over the earlier cased one.
  np.testing.assert_array_equal(matrix[vocab.word_id("cat")], [1, 2, 3])
  np.testing.assert_array_equal(matrix[vocab.word_id("dog")], [4, 5, 6])
  emu = matrix[vocab.word_id("emu")]
  assert np.all(np.abs(emu) < 1.0) and np.any(emu != 0)


def test_load_glove_cased_word_fills_lowercase_vocab(tmp_path):
  vocab = Vocabulary(["paris"], [], lowercase=True)
  path = _write(tmp_path, ["Paris 1 2"])
  matrix, found = vocab_lib.load_glove(path, vocab, dim=2, seed=0)
  assert found == 1
  np.testing.assert_array_equal(matrix[2], [1, 2])


def test_load_glove_random_rows_depend_only_on_seed(tmp_path):
  vocab = Vocabulary([f"w{i}" for i in range(200)], [], lowercase=True)
  path = _write(tmp_path, ["w0 1 1 1 1"])
  first, _ = vocab_lib.load_glove(path, vocab, dim=4, seed=3)
  second, _ = vocab_lib.load_glove(path, vocab, dim=4, seed=3)
  other, _ = vocab_lib.load_glove(path, vocab, dim=4, seed=4)
  np.testing.assert_array_equal(first, second)
  assert not np.array_equal(first, other)
  assert 0.08 < first[3:].std() < 0.12


def test_load_glove_word_with_spaces(tmp_path):
  vocab = Vocabulary([". . ."], [], lowercase=False)
  path = _write(tmp_path, [". . . 0.5 -1e-2"])
  matrix, found = vocab_lib.load_glove(path, vocab, dim=2, seed=0)
  assert found == 1
  np.testing.assert_allclose(matrix[2], [0.5, -0.01])


@pytest.mark.parametrize(
  "bad_line",
  ["dog 1 2", "dog 1 2 3 4", "dog 1 x 3", "dog 1 nan 3", "1 2 3"],
)
def test_load_glove_malformed_line_names_file_and_line(tmp_path, bad_line):
  vocab = Vocabulary(["cat", "dog"], [], lowercase=True)
  path = _write(tmp_path, ["cat 1 2 3", bad_line])
  with pytest.raises(DataError, match=r"glove\.txt.*line 2"):
    vocab_lib.load_glove(path, vocab, dim=3, seed=0)


# Id layout for pretrained vectors (load_pretrained).

LAYOUT_WORDS = ["the", "cat", "emu", "dog", "yak", "owl"]
LAYOUT_GLOVE = ["the 1 1", "cat 2 2", "dog 3 3", "owl 4 4"]


def test_load_pretrained_lays_out_missing_words_before_frozen(tmp_path):
  vocab = Vocabulary(LAYOUT_WORDS, ["a"], lowercase=True)
  path = _write(tmp_path, LAYOUT_GLOVE)
  laid_out, vectors = vocab_lib.load_pretrained(path, vocab, dim=2, seed=0)
  # Specials, then the words GloVe lacks (emu, yak), then the found ones,
  # each block in the original (count) order.
  assert laid_out.words == [
    "[PAD]",
    "[UNK]",
    "emu",
    "yak",
    "the",
    "cat",
    "dog",
    "owl",
  ]
  assert laid_out.num_trainable_words == vectors.num_trainable == 4
  assert laid_out.num_tuned_words == 0
  assert laid_out.chars == vocab.chars
  old, _ = vocab_lib.load_glove(path, vocab, dim=2, seed=0)
  for word in LAYOUT_WORDS:
    np.testing.assert_array_equal(
      vectors.matrix[laid_out.word_id(word)], old[vocab.word_id(word)]
    )
  np.testing.assert_array_equal(vectors.matrix[0], [0, 0])
  np.testing.assert_array_equal(
    vectors.matrix[4:], [[1, 1], [2, 2], [3, 3], [4, 4]]
  )


def test_load_pretrained_tunes_top_question_words_first(tmp_path):
  vocab = Vocabulary(LAYOUT_WORDS, ["a"], lowercase=True)
  path = _write(tmp_path, LAYOUT_GLOVE)
  questions = ["Owl or dog?", "The owl, the yak.", "owl dog zebra"]
  laid_out, vectors = vocab_lib.load_pretrained(
    path, vocab, dim=2, seed=0, questions=questions, tune_top_words=2
  )
  # owl (3 times), then "the" and dog (2 each; the tie goes to the earlier
  # id, "the"): the two most frequent question words.
  assert laid_out.words[2:4] == ["owl", "the"]
  assert laid_out.num_tuned_words == 2
  assert laid_out.words[4:6] == ["emu", "yak"]
  assert laid_out.num_trainable_words == vectors.num_trainable == 6
  assert laid_out.words[6:] == ["cat", "dog"]
  np.testing.assert_array_equal(vectors.matrix[2], [4, 4])
  with pytest.raises(ValueError, match="tune_top_words"):
    vocab_lib.load_pretrained(path, vocab, dim=2, seed=0, tune_top_words=-1)


def test_load_pretrained_layout_survives_save_and_load(tmp_path):
  vocab = Vocabulary(LAYOUT_WORDS, ["a"], lowercase=True)
  path = _write(tmp_path, LAYOUT_GLOVE)
  laid_out, _ = vocab_lib.load_pretrained(
    path, vocab, dim=2, seed=0, questions=["owl"], tune_top_words=5
  )
  assert laid_out.num_tuned_words == 1
  out = tmp_path / "vocab"
  laid_out.save(str(out))
  again = Vocabulary.load(str(out))
  assert again == laid_out
  assert again.num_trainable_words == 5 and again.num_tuned_words == 1
  assert Vocabulary.load(str(out)) != vocab


def test_vocabulary_checks_the_layout():
  with pytest.raises(ValueError, match="num_trainable_words"):
    Vocabulary(["a", "b"], [], lowercase=True, num_trainable_words=5)
  with pytest.raises(ValueError, match="num_tuned_words"):
    Vocabulary(
      ["a", "b"], [], lowercase=True, num_trainable_words=3, num_tuned_words=2
    )
  plain = Vocabulary(["a"], [], lowercase=True)
  assert plain.num_trainable_words is None and plain.num_tuned_words == 0
