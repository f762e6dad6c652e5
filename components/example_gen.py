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
  narrativeqa_dir: str = "",
  max_passage_words: int = 800,
  length_limits: dict | None = None,
):
  """Writes `train`, `validation`, `dev` and every extra evaluation set.

  The validation split is held out from the training questions by article
  (model selection only); `adversarial_questions` dev questions of real
  SQuAD data get a generated AddSent-style variant (`adversarial`).

  `dataset="narrativeqa"` reads the official layout under
  `narrativeqa_dir` (summaries cut to `max_passage_words` words): `dev` is
  NarrativeQA's valid set, `test` its test set, each with its reference
  answers; the counts say how many questions of each split have no span
  and, against `length_limits` (the featurization and decoding limits), how
  the tokenized texts fit.

  `input_digest` (a digest of the input files' contents) only keys the
  cache: editing a data file re-runs the pipeline from here.
  """
  del input_digest
  if dataset == sources.NARRATIVEQA_TASK:
    sources.check_narrativeqa_args(narrativeqa_dir, adversarial_questions)
    loaded = sources.load_narrativeqa(
      narrativeqa_dir,
      eval_files=eval_files,
      max_passage_words=max_passage_words,
      max_train_examples=max_train_examples,
      max_dev_examples=max_dev_examples,
      validation_fraction=validation_fraction,
      split_seed=split_seed,
      length_limits=length_limits,
    )
    artifacts.write_splits(
      examples,
      loaded.splits,
      tasks=loaded.tasks,
      references=loaded.references,
      sources=loaded.sources,
    )
    examples.counts.update(loaded.counts)
    return
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
