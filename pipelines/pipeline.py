"""The a2d pipeline: a pure factory that wires components together.

example_gen -> transform -> train_teacher x K -> distill_knowledge (train,
and validation when one is held out) -> train_student -> evaluate, export ->
validate_model (the blessing: the student against the thresholds of the
export section, and the SavedModel answering canaries in a fresh process)
-> push (publishes only a blessed model); optionally analyze (per-type F1
and the attention case study, after evaluate). Models are selected on the
validation split only; dev and the other evaluation sets are only scored
by evaluate.

Each step receives only the config sections (or fields) it reads, so a
change re-runs just the steps that depend on it: a new tau re-runs the
knowledge step and everything after it, a new loss weight or ablation switch
only the student, its evaluation and export, and a larger K only trains the
new teachers. The `runtime` section (how training executes) reaches the
train steps as a runtime parameter, outside every fingerprint. A student of
another architecture (`student_model`) re-runs only the student and what
reads it: teachers and knowledge stay cached.
"""

from __future__ import annotations

import os

from a2d_tf import config as config_lib
from a2d_tf import kit
from a2d_tf.config import ExperimentConfig
from components.analyze import analyze
from components.distill_knowledge import distill_knowledge
from components.evaluate import evaluate
from components.example_gen import example_gen
from components.export import export
from components.push import push
from components.train_student import train_student
from components.train_teacher import train_teacher
from components.transform import transform
from components.validate_model import validate_model

PIPELINE_NAME = "a2d"


def create_pipeline(
  config: ExperimentConfig,
  dataset: str = "synthetic",
  train_file: str = "",
  dev_file: str = "",
  eval_files: dict[str, str] | None = None,
  glove_file: str = "",
  input_digest: str = "",
  glove_digest: str = "",
  max_train_examples: int = 0,
  max_dev_examples: int = 0,
  tensorboard_root: str = "",
  beam_pipeline_args: list[str] | None = None,
  timing_repeats: int = 3,
  with_export: bool = True,
  push_destination: str = "",
  with_analysis: bool = False,
  case_id: str = "",
  narrativeqa_dir: str = "",
) -> kit.Pipeline:
  """Returns the pipeline for one experiment.

  Args:
    config: The resolved experiment config.
    dataset: "synthetic", "tfds", "json" or "narrativeqa".
    train_file: SQuAD-format train file ("json").
    dev_file: SQuAD-format dev file ("json").
    eval_files: Extra evaluation sets, name -> SQuAD-format file.
    glove_file: Optional GloVe-format word vectors.
    input_digest: Digest of the data files' contents (cache key).
    glove_digest: Digest of the GloVe file (cache key).
    max_train_examples: Keep the first N training questions (0 = all).
    max_dev_examples: Keep the first N dev questions (0 = all).
    tensorboard_root: TensorBoard log root; one run per teacher and one for
      the student beneath it ("" keeps logs inside the artifacts).
    beam_pipeline_args: Beam runner and options for the knowledge step.
    timing_repeats: Passes over dev when timing ensemble vs student (0
      skips the timing).
    with_export: Include the serving export step and its blessing
      (`validate_model`).
    push_destination: With the export, publish the serving model to
      `<push_destination>/<version>/` in a push step when it is blessed
      ("" leaves it in the export artifact, e.g. for Kubeflow, where it and
      the blessing are run outputs).
    with_analysis: Include the analyze step (F1 by question type of teacher
      vs student, and the attention case study, on dev).
    case_id: Question id of the case study ("" picks one).
    narrativeqa_dir: The NarrativeQA repository root ("narrativeqa").

  Returns:
    The pipeline.
  """
  _check_word_vectors(config, glove_file)
  full = config.to_dict()
  runtime = full.pop("runtime")
  # The student's architecture enters a key only where it differs from the
  # teachers', and the ATT hop mapping only where the hop counts differ:
  # a default run keeps the keys it had before either existed.
  full.pop("student_model")
  student_changes = config_lib.student_model_changes(config)
  if student_changes:
    full["student_model"] = student_changes
  if "aligner_hops" not in student_changes:
    del full["distill"]["attention_hops_map"]

  def params(*sections: str, **partial: dict) -> dict:
    """Only the config a step reads, so other changes keep its cache.

    The runtime section is not among them: it goes to the train steps as
    the runtime parameter `runtime`.
    """
    chosen = {name: full[name] for name in sections if name in full}
    for name, fields in partial.items():
      chosen[name] = {field: full[name][field] for field in fields}
    return chosen

  def board(run: str) -> str:
    return os.path.join(tensorboard_root, run) if tensorboard_root else ""

  gen = example_gen(
    dataset=dataset,
    train_file=train_file,
    dev_file=dev_file,
    eval_files=dict(eval_files or {}),
    synthetic_train_size=config.data.synthetic_train_size,
    synthetic_dev_size=config.data.synthetic_dev_size,
    synthetic_seed=config.data.synthetic_seed,
    max_train_examples=max_train_examples,
    max_dev_examples=max_dev_examples,
    validation_fraction=config.data.validation_fraction,
    split_seed=config.data.split_seed,
    adversarial_questions=config.data.adversarial_questions,
    input_digest=input_digest,
    narrativeqa_dir=narrativeqa_dir,
    max_passage_words=config.data.max_passage_words,
    length_limits={
      "max_passage_len": config.data.max_passage_len,
      "max_question_len": config.data.max_question_len,
      "max_answer_len": config.model.max_answer_len,
    },
  )
  data = transform(
    examples=gen.outputs["examples"],
    config=params("data", model=["word_dim"], train=["seed"]),
    glove_file=glove_file,
    glove_digest=glove_digest,
  )
  teachers = [
    train_teacher(
      examples=gen.outputs["examples"],
      vocab=data.outputs["vocab"],
      features=data.outputs["features"],
      config=params("data", "model", "train"),
      runtime=runtime,
      seed=config.train.seed + k,
      tensorboard_dir=board(f"teacher_{k}"),
    ).with_id(f"train_teacher_{k}")
    for k in range(config.teacher.num_teachers)
  ]
  teacher_models = [t.outputs["model"] for t in teachers]
  # The student learns from the training split's knowledge; the validation
  # split's gives its `val_*` loss terms. Dev is only ever reported.
  knowledge_splits = ["train"]
  if config.data.validation_fraction > 0:
    knowledge_splits.append("validation")
  knowledge = {
    split: distill_knowledge(
      examples=gen.outputs["examples"],
      features=data.outputs["features"],
      teachers=teacher_models,
      config=params(
        "data", "model", "train", "teacher", distill=["temperature"]
      ),
      split=split,
      beam_pipeline_args=list(beam_pipeline_args or []),
    ).with_id(f"distill_knowledge_{split}")
    for split in knowledge_splits
  }
  student = train_student(
    examples=gen.outputs["examples"],
    vocab=data.outputs["vocab"],
    features=data.outputs["features"],
    knowledge=knowledge["train"].outputs["knowledge"],
    validation_knowledge=[
      knowledge[s].outputs["knowledge"] for s in knowledge_splits[1:]
    ],
    config=params("data", "model", "student_model", "train", "distill"),
    runtime=runtime,
    seed=config.train.seed + config.teacher.num_teachers,
    tensorboard_dir=board("student"),
  )
  report = evaluate(
    examples=gen.outputs["examples"],
    features=data.outputs["features"],
    teachers=teacher_models,
    student=student.outputs["model"],
    knowledge=knowledge["train"].outputs["knowledge"],
    config=params(
      "data", "model", "student_model", "train", "teacher", "distill"
    ),
    timing_repeats=timing_repeats,
  )
  serving = export(
    student=student.outputs["model"],
    vocab=data.outputs["vocab"],
    config=params("data", "model", export=["version"]),
  )
  # A new threshold re-judges the blessing only.
  gate = validate_model(
    evaluation=report.outputs["evaluation"],
    serving=serving.outputs["serving"],
    min_f1_vs_single=config.export.min_f1_vs_single,
    min_f1_vs_ensemble=config.export.min_f1_vs_ensemble,
  )
  nodes = [gen, data, *teachers, *knowledge.values(), student, report]
  # The run's results, also where a later step reads them (for Kubeflow,
  # which lists a run's outputs).
  outputs = [report.outputs["evaluation"]]
  if with_export:
    nodes += [serving, gate]
    outputs += [serving.outputs["serving"], gate.outputs["blessing"]]
    if push_destination:
      nodes.append(
        push(
          serving=serving.outputs["serving"],
          blessing=gate.outputs["blessing"],
          push_destination=push_destination,
        )
      )
  if with_analysis:
    nodes.append(
      analyze(
        examples=gen.outputs["examples"],
        features=data.outputs["features"],
        teachers=teacher_models,
        student=student.outputs["model"],
        evaluation=report.outputs["evaluation"],
        config=params("data", "model", train=["batch_size"]),
        split="dev",
        case_id=case_id,
        tensorboard_dir=board("analysis"),
      )
    )
  return kit.Pipeline(PIPELINE_NAME, nodes, outputs)


def _check_word_vectors(config: ExperimentConfig, glove_file: str) -> None:
  """Refuses pretrained vectors for a student of another `word_dim`.

  The transform lays out one vocabulary for teachers and student, with
  vectors of the teachers' `model.word_dim`; a student of another size
  learns its own (the ids are shared), and with `--glove_file` it would get
  vectors it cannot take. Checked before any step runs.

  Raises:
    ValueError: Naming both sizes and what to change.
  """
  student = config_lib.resolve_student_model(config).word_dim
  if glove_file and student != config.model.word_dim:
    raise ValueError(
      f"student_model.word_dim={student} with --glove_file: the pretrained "
      f"vectors are {config.model.word_dim}-dimensional (model.word_dim, the "
      "teachers'), and a student of another word_dim learns its own; run "
      "without --glove_file or keep the teachers' word_dim."
    )
