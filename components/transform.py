"""transform: vocabularies, optional pretrained vectors, feature TFRecords."""

import numpy as np

from a2d_tf import artifacts, kit
from a2d_tf.config import ExperimentConfig
from a2d_tf.data import features as features_lib
from a2d_tf.data import vocab as vocab_lib


@kit.component(
  inputs={"examples": "RawExamples"},
  outputs={"vocab": "Vocabulary", "features": "Features"},
)
def transform(
  examples: kit.Artifact,
  vocab: kit.OutputArtifact,
  features: kit.OutputArtifact,
  config: dict,
  glove_file: str,
  glove_digest: str,
):
  """Builds the vocabulary on `train` and featurizes every split.

  With `glove_file` the word ids are laid out for partial training
  (`vocab_lib.load_pretrained`, `data.tune_top_words`) and the matrix is
  saved beside the vocabulary. Training examples whose answer cannot be
  used are skipped and counted by reason in `<split>_stats.json`;
  evaluation splits keep every question.
  """
  del glove_digest
  cfg = ExperimentConfig.from_dict(config)
  train = artifacts.read_split(examples, "train")
  vocabulary = vocab_lib.build_vocabulary(
    train,
    cfg.data.min_word_count,
    cfg.data.min_char_count,
    cfg.data.lowercase_words,
  )
  if glove_file:
    vocabulary, vectors = vocab_lib.load_pretrained(
      glove_file,
      vocabulary,
      cfg.model.word_dim,
      cfg.train.seed,
      questions=[record.question for record in train],
      tune_top_words=cfg.data.tune_top_words,
    )
    np.save(vocab.path(artifacts.EMBEDDING_FILE), vectors.matrix)
    vocab.counts.update(
      frozen_words=vocabulary.num_words - vectors.num_trainable,
      trainable_words=vectors.num_trainable,
      tuned_words=vocabulary.num_tuned_words,
    )
  vocabulary.save(vocab.uri)
  vocab.counts.update(words=vocabulary.num_words, chars=vocabulary.num_chars)
  for split in artifacts.featurized_splits(examples):
    records = (
      train if split == "train" else artifacts.read_split(examples, split)
    )
    stats = features_lib.write_split(
      records,
      vocabulary,
      cfg.data,
      features.uri,
      split,
      training=split == "train",
    )
    features.counts[split] = stats["num_examples"]
    if stats["num_skipped"]:
      features.counts[f"{split}_skipped"] = stats["num_skipped"]
