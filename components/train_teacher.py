"""train_teacher: one member of the teacher ensemble (plain CE training)."""

from a2d_tf import artifacts, kit, model_artifacts, training
from a2d_tf.config import ExperimentConfig
from a2d_tf.data import dataset as dataset_lib


@kit.component(
  inputs={
    "examples": "RawExamples",
    "vocab": "Vocabulary",
    "features": "Features",
  },
  outputs={"model": "Model"},
  runtime_params=("runtime", "tensorboard_dir"),
  resumable=True,
)
def train_teacher(
  examples: kit.Artifact,
  vocab: kit.Artifact,
  features: kit.Artifact,
  model: kit.OutputArtifact,
  config: dict,
  runtime: dict,
  seed: int,
  tensorboard_dir: str,
):
  """Trains one reader with its own seed; resumes after a kill.

  The backup (`training.BackupAndRestore`) lives in this step's work
  directory, which the runner keeps across runs (`resumable`), so
  re-running a killed pipeline continues from the last finished epoch and
  ends with the weights of an uninterrupted run. `runtime` (the config's
  runtime section) says how to execute, outside the cache key.
  """
  received = {**config, "runtime": runtime}
  cfg = ExperimentConfig.from_dict(received)
  epoch = dataset_lib.epoch_variable()
  train_ds = dataset_lib.make_dataset(
    artifacts.feature_pattern(features, "train"),
    cfg.data,
    cfg.train.batch_size,
    training=True,
    seed=seed,
    pad_to=dataset_lib.length_grid(cfg),
    epoch=epoch,
  )
  model_artifacts.train_model(
    model,
    training.CE,
    cfg,
    examples,
    vocab,
    features,
    train_ds,
    seed,
    tensorboard_dir,
    name=f"teacher_{seed}",
    train_epoch=epoch,
    config_record=received,
  )
