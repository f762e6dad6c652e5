"""Model artifacts: what the two train steps share around `training.train`.

`train_model` loads the vocabulary, scores the validation split (held out
from training by article) after every epoch, trains a teacher
(`training.CE`) or the student (`training.A2D`) into the Model artifact's
directory, keeping the best epoch on validation, and finishes it
(`finish_model`: seed, best epoch and validation scores in the counts, only
`model.keras` kept). The dev and evaluation sets are never read here: they
are scored by the evaluate step only. `components/train_teacher.py` and
`components/train_student.py` differ only in their input batches.
"""

from __future__ import annotations

import json
import os
import shutil

from a2d_tf import artifacts, inference, kit, training
from a2d_tf.config import ExperimentConfig


def validation_eval_fn(
  examples: kit.Artifact, features: kit.Artifact, config: ExperimentConfig
):
  """`model -> {"exact_match", "f1"}` on the validation split, or None.

  None when the run holds out no validation split
  (`data.validation_fraction=0`); training then keeps the last epoch. A
  NarrativeQA validation split is scored against its reference answers
  (`artifacts.selection_data`).
  """
  split = artifacts.validation_split(examples)
  if split is None:
    return None
  return inference.make_dev_eval_fn(
    artifacts.eval_dataset(features, split, config),
    {r.id: r for r in artifacts.read_split(examples, split)},
    artifacts.selection_data(examples, split),
    config.model.max_answer_len,
    jit_compile=config.runtime.jit_compile and not config.runtime.run_eagerly,
  )


def train_model(
  model: kit.OutputArtifact,
  objective: str,
  config: ExperimentConfig,
  examples: kit.Artifact,
  vocab: kit.Artifact,
  features: kit.Artifact,
  train_dataset,
  seed: int,
  tensorboard_dir: str = "",
  validation_dataset=None,
  name: str | None = None,
  train_epoch=None,
  config_record: dict | None = None,
) -> None:
  """What a train step does around `training.train`, teacher or student.

  Loads the vocabulary (and pretrained vectors), scores the validation
  split after every epoch, trains into `model` (resuming from a backup left
  there by a killed run), keeps the best epoch and finishes the artifact
  with `finish_model`.

  Args:
    model: The Model output; training writes into its directory.
    objective: `training.CE` or `training.A2D`.
    config: The experiment config, runtime section included.
    examples: RawExamples (the validation split's answers).
    vocab: Vocabulary.
    features: Features (the validation split's inputs).
    train_dataset: Training batches for `objective`.
    seed: The model's seed.
    tensorboard_dir: TensorBoard run ("" keeps it inside `model`).
    validation_dataset: Optional validation batches for the `val_*` terms.
    name: Reader name under `CE`.
    train_epoch: The `epoch_variable()` `train_dataset` reads its epoch
      from (`training.train`), so a resumed run reads each epoch's order.
    config_record: The config sections the step received, recorded in the
      model's `config.json` (default: all of `config`).
  """
  vocabulary, matrix = artifacts.load_vocab(vocab)
  training.train(
    config,
    objective,
    vocabulary.num_words,
    vocabulary.num_chars,
    train_dataset,
    model.uri,
    validation_dataset=validation_dataset,
    validation_eval_fn=validation_eval_fn(examples, features, config),
    seed=seed,
    embedding_matrix=matrix,
    tensorboard_dir=tensorboard_dir or None,
    name=name,
    train_epoch=train_epoch,
    config_record=config_record,
  )
  finish_model(model, seed)


def finish_model(model: kit.OutputArtifact, seed: int) -> None:
  """Records seed and the selection in the counts; keeps `model.keras`.

  Counts: `seed`, and with a validation split `best_epoch`, `epochs_run`
  and `validation_f1` (of the kept epoch). The best-epoch weights training
  leaves beside the model are already in `model.keras` and are removed.
  """
  model.counts["seed"] = seed
  best_dir = model.path(training.BEST_DIR)
  record = os.path.join(best_dir, training.BestEpoch.RECORD)
  if os.path.exists(record):
    with open(record, encoding="utf-8") as f:
      best = json.load(f)
    model.counts.update(
      best_epoch=best["best_epoch"],
      epochs_run=best["epochs_run"],
      validation_f1=round(best["best_value"], 2),
    )
  shutil.rmtree(best_dir, ignore_errors=True)
