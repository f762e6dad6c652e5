"""File layout of the pipeline's artifacts, and loaders for them.

Components write and read artifacts through these functions only, so the
layout is defined once:

* RawExamples: `<split>.json` per split (SQuAD v1.1 format) and
  `splits.json` (split names, the reported evaluation sets among them, the
  validation split used for model selection, if any, each split's task
  and, where known, its source); for NarrativeQA splits also
  `<split>_references.json` (question id -> the two reference answers,
  what the split is scored against).
* Vocabulary: the `Vocabulary` files, plus `embedding.npy` when pretrained
  vectors were given.
* Features: `<split>-*.tfrecord.gz` shards and `<split>_stats.json`.
* Model: `model.keras` (a reader; the student's reader for the student).
* Knowledge: `knowledge-*.tfrecord.gz` shards, `stats.json` and
  `gold.jsonl` (the gold answers the confusing spans were scored against).
* Evaluation: `report.{json,md}` and `predictions/<system>_<split>.json`
  (official v1.1 prediction files: question id -> answer text).
* ServingModel: `<version>/`, a SavedModel in TF Serving's layout.
* Blessing: `blessing.json` (`a2d_tf.blessing`: the model criteria and the
  infra check), and the evaluation's `report.{json,md}` with the blessing.
* PushedModel: nothing but its metadata: the version, where `push`
  published it and whether that changed anything (or, for a model that
  was not blessed, why nothing was published).

What the train steps do with a Model artifact is `model_artifacts`; this
module imports no model code, so a step that only reads data files keeps
its fingerprint when the model code changes.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping

import numpy as np

from a2d_tf import kit
from a2d_tf.config import ExperimentConfig
from a2d_tf.data import dataset as dataset_lib
from a2d_tf.data import features, squad
from a2d_tf.data.records import Record
from a2d_tf.data.vocab import Vocabulary, WordVectors

SPLITS_FILE = "splits.json"
REFERENCES_SUFFIX = "_references.json"
# Tasks of `splits.json` (`data.sources` defines them); a split without one,
# as in artifacts written before tasks were recorded, is SQuAD.
SQUAD_TASK = "squad"
NARRATIVEQA_TASK = "narrativeqa"
VALIDATION_SPLIT = "validation"
EMBEDDING_FILE = "embedding.npy"
MODEL_FILE = "model.keras"
PREDICTIONS_DIR = "predictions"


def write_splits(
  out: kit.OutputArtifact,
  splits: Mapping[str, list[Record]],
  tasks: Mapping[str, str] | None = None,
  references: Mapping[str, Mapping[str, list[str]]] | None = None,
  sources: Mapping[str, str] | None = None,
) -> None:
  """Writes every split as SQuAD JSON plus the split index.

  Args:
    out: The RawExamples output.
    splits: Split name -> records.
    tasks: Split name -> `SQUAD_TASK` (the default) or `NARRATIVEQA_TASK`.
    references: NarrativeQA split -> question id -> reference answers.
    sources: Split name -> where it comes from, in words.
  """
  for name, records in splits.items():
    squad.write_squad_json(records, out.path(f"{name}.json"))
    out.counts[name] = len(records)
  for name, refs in (references or {}).items():
    with open(out.path(name + REFERENCES_SUFFIX), "w", encoding="utf-8") as f:
      json.dump(refs, f, indent=1, ensure_ascii=False)
  eval_sets = [n for n in splits if n not in ("train", VALIDATION_SPLIT)]
  index = {
    "splits": list(splits),
    "eval_sets": eval_sets,
    "validation": VALIDATION_SPLIT if VALIDATION_SPLIT in splits else None,
    "tasks": {n: (tasks or {}).get(n, SQUAD_TASK) for n in splits},
  }
  if sources:
    index["sources"] = dict(sources)
  with open(out.path(SPLITS_FILE), "w", encoding="utf-8") as f:
    json.dump(index, f, indent=2)


def _split_index(examples: kit.Artifact) -> dict:
  with open(examples.path(SPLITS_FILE), encoding="utf-8") as f:
    return json.load(f)


def eval_sets(examples: kit.Artifact) -> list[str]:
  """Names of the reported evaluation splits (`dev` first, then extras)."""
  return _split_index(examples)["eval_sets"]


def validation_split(examples: kit.Artifact) -> str | None:
  """The split models are selected on, or None when none was held out."""
  return _split_index(examples).get("validation")


def split_task(examples: kit.Artifact, split: str) -> str:
  """What `split` is scored as: `SQUAD_TASK` or `NARRATIVEQA_TASK`."""
  return _split_index(examples).get("tasks", {}).get(split, SQUAD_TASK)


def split_source(examples: kit.Artifact, split: str) -> str | None:
  """Where `split` comes from, in words, when recorded."""
  return _split_index(examples).get("sources", {}).get(split)


def read_references(examples: kit.Artifact, split: str) -> dict[str, list]:
  """A NarrativeQA split's question id -> reference answers."""
  with open(examples.path(split + REFERENCES_SUFFIX), encoding="utf-8") as f:
    return json.load(f)


def featurized_splits(examples: kit.Artifact) -> list[str]:
  """Every split `transform` writes features for, `train` first."""
  validation = validation_split(examples)
  return ["train", *([validation] if validation else []), *eval_sets(examples)]


def read_split(examples: kit.Artifact, split: str) -> list[Record]:
  return squad.read_squad_json(
    examples.path(f"{split}.json"), require_answers=False
  )


def squad_data(examples: kit.Artifact, split: str) -> list:
  """The `data` list of a split's SQuAD JSON (what the metrics take)."""
  with open(examples.path(f"{split}.json"), encoding="utf-8") as f:
    return json.load(f)["data"]


def selection_data(examples: kit.Artifact, split: str) -> list:
  """The SQuAD `data` list models are selected by on `split`.

  A SQuAD split's own. A NarrativeQA split's questions are scored against
  its two reference answers, not the training span, so its answers are
  replaced by the references: the validation F1 is SQuAD token F1 (max over
  the two) against what NarrativeQA is scored against, and a question
  without a span counts too.
  """
  data = squad_data(examples, split)
  if split_task(examples, split) != NARRATIVEQA_TASK:
    return data
  references = read_references(examples, split)
  for article in data:
    for paragraph in article["paragraphs"]:
      for qa in paragraph["qas"]:
        qa["answers"] = [
          {"text": text, "answer_start": -1} for text in references[qa["id"]]
        ]
  return data


def load_vocab(vocab: kit.Artifact) -> tuple[Vocabulary, WordVectors | None]:
  """The vocabulary and its pretrained word vectors, if any.

  The vectors' trainable rows are the vocabulary's `num_trainable_words`
  (0, every row frozen, for a vocabulary saved without that layout).
  """
  vocabulary = Vocabulary.load(vocab.uri)
  vectors = None
  if os.path.exists(vocab.path(EMBEDDING_FILE)):
    vectors = WordVectors(
      np.load(vocab.path(EMBEDDING_FILE)),
      vocabulary.num_trainable_words or 0,
    )
  return vocabulary, vectors


def feature_pattern(features_artifact: kit.Artifact, split: str) -> str:
  return features.file_pattern(features_artifact.uri, split)


def model_path(model: kit.Artifact) -> str:
  return model.path(MODEL_FILE)


def predictions_path(evaluation: kit.Artifact, system: str, split: str) -> str:
  """The official-format prediction file of `system` on `split`."""
  return evaluation.path(PREDICTIONS_DIR, f"{system}_{split}.json")


def eval_dataset(
  features_artifact: kit.Artifact,
  split: str,
  config: ExperimentConfig,
  with_metadata: bool = True,
):
  """A split's features in file order, batched for inference and scoring.

  Padded onto `dataset.length_grid(config)` when the runtime asks for it,
  so a dev pass compiled by XLA compiles a bounded number of programs.
  """
  return dataset_lib.make_dataset(
    feature_pattern(features_artifact, split),
    config.data,
    config.train.batch_size,
    training=False,
    with_metadata=with_metadata,
    pad_to=dataset_lib.length_grid(config),
  )
