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

  Training examples whose answer cannot be used are skipped and counted by
  reason in `<split>_stats.json`; evaluation splits keep every question.
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
  vocabulary.save(vocab.uri)
  vocab.counts.update(words=vocabulary.num_words, chars=vocabulary.num_chars)
  if glove_file:
    matrix, found = vocab_lib.load_glove(
      glove_file, vocabulary, cfg.model.word_dim, cfg.train.seed
    )
    np.save(vocab.path(artifacts.EMBEDDING_FILE), matrix)
    vocab.counts["pretrained_found"] = found
  splits = ["train"] + artifacts.eval_sets(examples)
  for split in splits:
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
