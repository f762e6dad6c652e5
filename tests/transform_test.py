"""Tests of the transform step: vocabulary layout and pretrained rows."""

import numpy as np

from a2d_tf import artifacts, kit
from a2d_tf import config as config_lib
from a2d_tf.data import synthetic
from components.transform import transform


def test_transform_with_glove_lays_out_ids_and_load_vocab_splits_rows(
  tmp_path,
):
  corpus = synthetic.generate_corpus(5, 2, seed=3)
  examples_dir = tmp_path / "examples"
  examples_dir.mkdir()
  out = kit.OutputArtifact("RawExamples", str(examples_dir))
  artifacts.write_splits(out, {"train": corpus["train"], "dev": corpus["dev"]})
  examples = kit.Artifact("RawExamples", str(examples_dir), "fp", {})
  # Vectors for three words the corpus uses; every other word lacks one.
  glove = tmp_path / "glove.txt"
  glove.write_text("the 1 1\nwho 2 2\nof 3 3\n", encoding="utf-8")
  config = config_lib.get_config(
    "tiny", ["model.word_dim=2", "data.tune_top_words=1"]
  )
  vocab_out = kit.OutputArtifact("Vocabulary", str(tmp_path / "vocab"))
  features_out = kit.OutputArtifact("Features", str(tmp_path / "features"))
  (tmp_path / "vocab").mkdir()
  (tmp_path / "features").mkdir()
  transform.fn(
    examples=examples,
    vocab=vocab_out,
    features=features_out,
    config=config.to_dict(),
    glove_file=str(glove),
    glove_digest="",
  )
  vocab_artifact = kit.Artifact("Vocabulary", vocab_out.uri, "fp", {})
  vocabulary, vectors = artifacts.load_vocab(vocab_artifact)
  assert vocabulary.num_tuned_words == 1
  assert vectors.num_trainable == vocabulary.num_trainable_words
  assert vocab_out.counts["frozen_words"] == vocabulary.num_words - (
    vectors.num_trainable
  )
  # The frozen rows are exactly the GloVe words that are not tuned.
  glove_words = {w for w in ("the", "who", "of") if vocabulary.has_word(w)}
  assert len(glove_words) >= 2
  tuned = vocabulary.words[2]
  frozen = vocabulary.words[vectors.num_trainable :]
  assert set(frozen) == glove_words - {tuned}
  for word, value in (("the", 1), ("who", 2), ("of", 3)):
    if word in glove_words:
      np.testing.assert_array_equal(
        vectors.matrix[vocabulary.word_id(word)], [value, value]
      )
