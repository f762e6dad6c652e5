"""train_student: one reader trained on the materialized teacher knowledge."""

from a2d_tf import artifacts, kit, training
from a2d_tf import knowledge as knowledge_lib
from a2d_tf.config import ExperimentConfig


@kit.component(
  inputs={
    "examples": "RawExamples",
    "vocab": "Vocabulary",
    "features": "Features",
    "knowledge": "Knowledge",
    "dev_knowledge": "Knowledge",
  },
  outputs={"model": "Model"},
  runtime_params=("tensorboard_dir",),
)
def train_student(
  examples: kit.Artifact,
  vocab: kit.Artifact,
  features: kit.Artifact,
  knowledge: kit.Artifact,
  dev_knowledge: kit.Artifact,
  model: kit.OutputArtifact,
  config: dict,
  seed: int,
  tensorboard_dir: str,
):
  """Trains the A2D student; never loads a teacher.

  Every loss term is a TensorBoard scalar; dev EM/F1 is logged per epoch
  and the loss terms on the dev knowledge as `val_*`.
  """
  cfg = ExperimentConfig.from_dict(config)
  vocabulary, matrix = artifacts.load_vocab(vocab)
  batch = cfg.train.batch_size
  train_ds = knowledge_lib.make_knowledge_dataset(
    knowledge_lib.knowledge_pattern(knowledge.uri),
    cfg,
    batch,
    training=True,
    seed=seed,
  )
  val_ds = knowledge_lib.make_knowledge_dataset(
    knowledge_lib.knowledge_pattern(dev_knowledge.uri),
    cfg,
    batch,
    training=False,
  )
  eval_fn = artifacts.dev_eval_fn(examples, features, cfg)
  reader = training.train_student(
    cfg,
    vocabulary.num_words,
    vocabulary.num_chars,
    train_ds,
    val_ds,
    model.uri,
    seed=seed,
    embedding_matrix=matrix,
    dev_eval_fn=eval_fn,
    tensorboard_dir=tensorboard_dir or None,
  )
  artifacts.finish_model(model, seed, eval_fn, reader)
