"""evaluate: single teacher, K-teacher ensemble and student on every set."""

import json
import os

import keras

from a2d_tf import artifacts, inference, kit, report
from a2d_tf.config import ExperimentConfig
from a2d_tf.models import reader as reader_lib


@kit.component(
  inputs={
    "examples": "RawExamples",
    "features": "Features",
    "teachers": "Model*",
    "student": "Model",
  },
  outputs={"evaluation": "Evaluation"},
)
def evaluate(
  examples: kit.Artifact,
  features: kit.Artifact,
  teachers: list,
  student: kit.Artifact,
  evaluation: kit.OutputArtifact,
  config: dict,
  timing_repeats: int,
):
  """Writes `report.json`, `report.md` and `predictions/<system>_<set>.json`.

  `timing_repeats` passes over dev time the single teacher, the ensemble
  and the student (the speedup); 0 skips the timing (the ablation's extra
  variants, whose student has the same architecture as the full one's).
  """
  cfg = ExperimentConfig.from_dict(config)
  teacher_models = [
    keras.saving.load_model(artifacts.model_path(t)) for t in teachers
  ]
  student_model = keras.saving.load_model(artifacts.model_path(student))
  systems = {
    "single": teacher_models[:1],
    "ensemble": teacher_models,
    "student": [student_model],
  }
  # Each model is traced once for all sets and the timing.
  cache = inference.PredictFnCache()
  os.makedirs(evaluation.path(artifacts.PREDICTIONS_DIR), exist_ok=True)
  sets = {}
  for name in artifacts.eval_sets(examples):
    dataset = artifacts.eval_dataset(features, name, cfg).cache()
    records = {r.id: r for r in artifacts.read_split(examples, name)}
    scores, predictions = report.evaluate_systems(
      systems,
      dataset,
      records,
      artifacts.squad_data(examples, name),
      cfg.model.max_answer_len,
      cache,
    )
    sets[name] = scores
    for system, answers in predictions.items():
      path = artifacts.predictions_path(evaluation, system, name)
      with open(path, "w", encoding="utf-8") as f:
        json.dump(answers, f, indent=1, ensure_ascii=False)
    evaluation.counts[f"{name}_student_f1"] = round(scores["student"]["f1"], 2)
  timing = {"k": len(teacher_models), "repeats": timing_repeats}
  if timing_repeats > 0:
    # Read into memory only when timed: no file reads inside the passes.
    timing_batches = list(
      artifacts.eval_dataset(features, "dev", cfg, with_metadata=False)
    )
    seconds = inference.time_forward(
      systems, timing_batches, timing_repeats, cache
    )
    timing.update(
      examples=sum(int(b["passage_len"].shape[0]) for b in timing_batches),
      single_s=seconds["single"],
      ensemble_s=seconds["ensemble"],
      student_s=seconds["student"],
      speedup=seconds["ensemble"] / seconds["student"],
    )
  result = {
    "sets": sets,
    "parameters": {
      "teacher": reader_lib.count_params(teacher_models[0])["trainable"],
      "student": reader_lib.count_params(student_model)["trainable"],
    },
    "inference": timing,
    # What the scores were computed with; how the runs executed (the
    # runtime section) is in no cache key, so a cached report cannot say.
    "config": {k: v for k, v in cfg.to_dict().items() if k != "runtime"},
  }
  with open(evaluation.path("report.json"), "w", encoding="utf-8") as f:
    json.dump(result, f, indent=2, sort_keys=True)
  with open(evaluation.path("report.md"), "w", encoding="utf-8") as f:
    f.write(report.render_markdown(result))
  if "speedup" in timing:
    evaluation.counts["speedup"] = round(timing["speedup"], 2)
