"""example_gen: read the chosen dataset into raw SQuAD-format splits."""

from a2d_tf import artifacts, kit
from a2d_tf.data import sources


@kit.component(outputs={"examples": "RawExamples"})
def example_gen(
  examples: kit.OutputArtifact,
  dataset: str,
  train_file: str,
  dev_file: str,
  eval_files: dict,
  synthetic_train_size: int,
  synthetic_dev_size: int,
  synthetic_seed: int,
  max_train_examples: int,
  max_dev_examples: int,
  validation_fraction: float,
  split_seed: int,
  adversarial_questions: int,
  input_digest: str,
):
  """Writes `train`, `validation`, `dev` and every extra evaluation set.

  The validation split is held out from the training questions by article
  (model selection only); `adversarial_questions` dev questions of real
  SQuAD data get a generated AddSent-style variant (`adversarial`).

  `input_digest` (a digest of the input files' contents) only keys the
  cache: editing a data file re-runs the pipeline from here.
  """
  del input_digest
  splits = sources.load_splits(
    dataset,
    train_file=train_file,
    dev_file=dev_file,
    eval_files=eval_files,
    synthetic_train_size=synthetic_train_size,
    synthetic_dev_size=synthetic_dev_size,
    synthetic_seed=synthetic_seed,
    max_train_examples=max_train_examples,
    max_dev_examples=max_dev_examples,
    validation_fraction=validation_fraction,
    split_seed=split_seed,
    adversarial_questions=adversarial_questions,
  )
  artifacts.write_splits(examples, splits)
