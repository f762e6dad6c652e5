"""Model artifacts: what the two train steps share around `training.train`.

`train_model` loads the vocabulary, scores dev EM/F1 after every epoch
(`dev_eval_fn`, remembered by `DevEval`), trains a teacher (`training.CE`)
or the student (`training.A2D`) into the Model artifact's directory and
finishes it (`finish_model`: seed and dev scores in the counts, only
`model.keras` kept). `components/train_teacher.py` and
`components/train_student.py` differ only in their input batches.
"""

from __future__ import annotations

import os

from a2d_tf import artifacts, inference, kit, training
from a2d_tf.config import ExperimentConfig


class DevEval:
  """`model -> {"exact_match", "f1"}` on dev that remembers its last scores.

  Training calls it after every epoch; the last call scored the final
  weights, so `final_scores` reuses that pass instead of decoding the
  whole dev set once more (minutes on full SQuAD dev on a CPU).
  """

  def __init__(self, eval_fn):
    self._eval_fn = eval_fn
    self.last: dict[str, float] | None = None

  def __call__(self, model) -> dict[str, float]:
    self.last = self._eval_fn(model)
    return self.last

  def final_scores(self, model) -> dict[str, float]:
    """The last epoch's scores, or a fresh pass when no epoch ran here."""
    return self.last if self.last is not None else self(model)


def dev_eval_fn(
  examples: kit.Artifact, features: kit.Artifact, config: ExperimentConfig
) -> DevEval:
  """`model -> {"exact_match", "f1"}` on the run's dev split, per epoch."""
  return DevEval(
    inference.make_dev_eval_fn(
      artifacts.eval_dataset(features, "dev", config),
      {r.id: r for r in artifacts.read_split(examples, "dev")},
      artifacts.squad_data(examples, "dev"),
      config.model.max_answer_len,
      jit_compile=config.runtime.jit_compile and not config.runtime.run_eagerly,
    )
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
  dev_dataset=None,
  name: str | None = None,
) -> None:
  """What a train step does around `training.train`, teacher or student.

  Loads the vocabulary (and pretrained vectors), scores dev EM/F1 after
  every epoch, trains into `model` (resuming from a backup left there by a
  killed run) and finishes the artifact with `finish_model`.

  Args:
    model: The Model output; training writes into its directory.
    objective: `training.CE` or `training.A2D`.
    config: The experiment config, runtime section included.
    examples: RawExamples (the dev split's answers).
    vocab: Vocabulary.
    features: Features (the dev split's inputs).
    train_dataset: Training batches for `objective`.
    seed: The model's seed.
    tensorboard_dir: TensorBoard run ("" keeps it inside `model`).
    dev_dataset: Optional dev batches for the `val_*` terms.
    name: Reader name under `CE`.
  """
  vocabulary, matrix = artifacts.load_vocab(vocab)
  eval_fn = dev_eval_fn(examples, features, config)
  reader = training.train(
    config,
    objective,
    vocabulary.num_words,
    vocabulary.num_chars,
    train_dataset,
    model.uri,
    dev_dataset=dev_dataset,
    dev_eval_fn=eval_fn,
    seed=seed,
    embedding_matrix=matrix,
    tensorboard_dir=tensorboard_dir or None,
    name=name,
  )
  finish_model(model, seed, eval_fn, reader)


def finish_model(
  model: kit.OutputArtifact, seed: int, dev_eval: DevEval, reader
) -> None:
  """Records seed and dev EM/F1 in the counts; keeps only `model.keras`.

  The best-epoch checkpoint training leaves beside it is not part of the
  artifact (the pipeline uses the final weights).
  """
  scores = dev_eval.final_scores(reader)
  model.counts.update(
    seed=seed,
    dev_exact_match=round(scores["exact_match"], 2),
    dev_f1=round(scores["f1"], 2),
  )
  best = model.path(training.BEST_MODEL)
  if os.path.exists(best):
    os.remove(best)
