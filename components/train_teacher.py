"""train_teacher: one member of the teacher ensemble (plain CE training)."""

from a2d_tf import artifacts, kit, training
from a2d_tf.config import ExperimentConfig
from a2d_tf.data import dataset as dataset_lib


@kit.component(
  inputs={
    "examples": "RawExamples",
    "vocab": "Vocabulary",
    "features": "Features",
  },
  outputs={"model": "Model"},
  runtime_params=("tensorboard_dir",),
)
def train_teacher(
  examples: kit.Artifact,
  vocab: kit.Artifact,
  features: kit.Artifact,
  model: kit.OutputArtifact,
  config: dict,
  seed: int,
  tensorboard_dir: str,
):
  """Trains one reader with its own seed; resumes after a kill.

  Keras' BackupAndRestore state lives in this step's work directory, which
  the runner keeps across runs, so re-running a killed pipeline continues
  from the last finished epoch.
  """
  cfg = ExperimentConfig.from_dict(config)
  vocabulary, matrix = artifacts.load_vocab(vocab)
  train_ds = dataset_lib.make_dataset(
    artifacts.feature_pattern(features, "train"),
    cfg.data,
    cfg.train.batch_size,
    training=True,
    seed=seed,
  )
  eval_fn = artifacts.dev_eval_fn(examples, features, cfg)
  reader = training.train_reader(
    cfg,
    vocabulary.num_words,
    vocabulary.num_chars,
    train_ds,
    None,
    model.uri,
    seed=seed,
    embedding_matrix=matrix,
    dev_eval_fn=eval_fn,
    tensorboard_dir=tensorboard_dir or None,
    name=f"teacher_{seed}",
  )
  artifacts.finish_model(model, seed, eval_fn, reader)
