"""analyze: the paper's per-question-type F1 and attention case study."""

import json

import keras

from a2d_tf import analysis as analysis_lib
from a2d_tf import artifacts, figures, kit
from a2d_tf.config import ExperimentConfig

QUESTION_TYPES = "question_types"
CASE_STUDY = "case_study"


@kit.component(
  inputs={
    "examples": "RawExamples",
    "features": "Features",
    "teachers": "Model*",
    "student": "Model",
    "evaluation": "Evaluation",
  },
  outputs={"analysis": "Analysis"},
  runtime_params=("tensorboard_dir",),
)
def analyze(
  examples: kit.Artifact,
  features: kit.Artifact,
  teachers: list,
  student: kit.Artifact,
  evaluation: kit.Artifact,
  analysis: kit.OutputArtifact,
  config: dict,
  split: str,
  case_id: str,
  tensorboard_dir: str,
):
  """Writes `question_types.{json,md,png}` and `case_study.{json,png}`.

  Per-type F1 of the single teacher and the student comes from the
  evaluation's predictions on `split`; the case study (`case_id`, or by
  default the first question the student answers exactly) runs the teachers
  and the student on one example. Both figures also go to `tensorboard_dir`
  as images when it is given.
  """
  cfg = ExperimentConfig.from_dict(config)
  squad_data = artifacts.squad_data(examples, split)
  predictions = {}
  for system in analysis_lib.TYPE_SYSTEMS:
    path = artifacts.predictions_path(evaluation, system, split)
    with open(path, encoding="utf-8") as f:
      predictions[system] = json.load(f)
  types = analysis_lib.f1_by_question_type(squad_data, predictions)
  with open(analysis.path(f"{QUESTION_TYPES}.json"), "w") as f:
    json.dump({"split": split, **types}, f, indent=2)
  with open(analysis.path(f"{QUESTION_TYPES}.md"), "w") as f:
    f.write(analysis_lib.render_question_types_markdown(types))
  figures.plot_question_types(
    types,
    analysis.path(f"{QUESTION_TYPES}.png"),
    title=f"F1 by question type ({split})",
  )

  example_id = case_id or analysis_lib.choose_case_id(
    squad_data, predictions["student"]
  )
  records = {r.id: r for r in artifacts.read_split(examples, split)}
  dataset = artifacts.eval_dataset(features, split, cfg)
  case = analysis_lib.case_study(
    [keras.saving.load_model(artifacts.model_path(t)) for t in teachers],
    keras.saving.load_model(artifacts.model_path(student)),
    analysis_lib.find_example(dataset, example_id),
    records[example_id],
    cfg.model.max_answer_len,
  )
  with open(analysis.path(f"{CASE_STUDY}.json"), "w") as f:
    json.dump(case.to_json(), f)
  figures.plot_case_study(case, analysis.path(f"{CASE_STUDY}.png"))
  if tensorboard_dir:
    figures.log_images(
      tensorboard_dir,
      {
        QUESTION_TYPES: analysis.path(f"{QUESTION_TYPES}.png"),
        CASE_STUDY: analysis.path(f"{CASE_STUDY}.png"),
      },
      descriptions={
        QUESTION_TYPES: f"F1 by question type on {split}: single teacher "
        "vs A2D student.",
        CASE_STUDY: f"Question {example_id}: attention and start/end "
        "probabilities of the teachers (mean) and the student.",
      },
    )
  analysis.counts.update(
    case_id=example_id,
    student_f1=round(types["overall"]["student"], 2),
  )
