"""train_student: one reader trained on the materialized teacher knowledge."""

from a2d_tf import kit, model_artifacts, training
from a2d_tf.config import ExperimentConfig
from a2d_tf.data import dataset as dataset_lib
from a2d_tf.data import knowledge as knowledge_lib


@kit.component(
  inputs={
    "examples": "RawExamples",
    "vocab": "Vocabulary",
    "features": "Features",
    "knowledge": "Knowledge",
    "validation_knowledge": "Knowledge*",
  },
  outputs={"model": "Model"},
  runtime_params=("runtime", "tensorboard_dir"),
  resumable=True,
)
def train_student(
  examples: kit.Artifact,
  vocab: kit.Artifact,
  features: kit.Artifact,
  knowledge: kit.Artifact,
  validation_knowledge: list,
  model: kit.OutputArtifact,
  config: dict,
  runtime: dict,
  seed: int,
  tensorboard_dir: str,
):
  """Trains the A2D student; never loads a teacher.

  Every loss term is a TensorBoard scalar; validation EM/F1 is logged per
  epoch (the best epoch is kept) and the loss terms on the validation
  knowledge (a list of none or one artifact: none when the run holds out
  no validation split) as `val_*`. Trains `distill.epochs` epochs when set.
  Resumes after a kill as `train_teacher` does.
  """
  received = {**config, "runtime": runtime}
  cfg = ExperimentConfig.from_dict(received)
  epoch = dataset_lib.epoch_variable()

  def batches(artifact: kit.Artifact, training_input: bool):
    return knowledge_lib.make_knowledge_dataset(
      knowledge_lib.knowledge_pattern(artifact.uri),
      cfg,
      cfg.train.batch_size,
      training=training_input,
      seed=seed if training_input else None,
      epoch=epoch if training_input else None,
    )

  model_artifacts.train_model(
    model,
    training.A2D,
    cfg,
    examples,
    vocab,
    features,
    batches(knowledge, True),
    seed,
    tensorboard_dir,
    validation_dataset=(
      batches(validation_knowledge[0], False) if validation_knowledge else None
    ),
    train_epoch=epoch,
    config_record=received,
  )
