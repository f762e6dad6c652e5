"""evaluate: the K teachers, their ensemble and the student on every set."""

import json
import os

import keras

from a2d_tf import artifacts, diagnostics, inference, kit, report
from a2d_tf import config as config_lib
from a2d_tf.config import ExperimentConfig
from a2d_tf.models import reader as reader_lib


@kit.component(
  inputs={
    "examples": "RawExamples",
    "features": "Features",
    "teachers": "Model*",
    "student": "Model",
    "knowledge": "Knowledge",
  },
  outputs={"evaluation": "Evaluation"},
)
def evaluate(
  examples: kit.Artifact,
  features: kit.Artifact,
  teachers: list,
  student: kit.Artifact,
  knowledge: kit.Artifact,
  evaluation: kit.OutputArtifact,
  config: dict,
  timing_repeats: int,
):
  """Writes `report.json`, `report.md` and `predictions/<system>_<set>.json`.

  Every teacher, the ensemble (one forward pass per teacher serves both)
  and the student answer every reported set, scored as its task says
  (SQuAD EM/F1; NarrativeQA BLEU-1, BLEU-4, ROUGE-L against the split's
  references, `artifacts.split_task`); the report gives the single
  teachers' mean and spread, the gain the student keeps and paired
  bootstrap intervals (`report`), the knowledge diagnostics of the training
  split (from `knowledge`) and of dev (computed here), and how each model
  was selected. Prediction files: `teacher_<k>`, `single` (teacher 0, the
  single model of per-question analyses), `ensemble`, `student`.

  `report.json`'s `config` holds exactly the config sections this step
  receives (`config_sections`: data, model, train, teacher, distill), not
  the whole run's config, which the runners write beside the report.

  `timing_repeats` passes over dev time a single teacher, the ensemble and
  the student (the student's speedup over each); 0 skips the timing (the
  ablation's extra variants, whose student has the same architecture as the
  full one's). The parameters of every system and the student's
  architecture (its `student_model` changes) are reported beside them.
  """
  cfg = ExperimentConfig.from_dict(config)
  teacher_models = [
    keras.saving.load_model(artifacts.model_path(t)) for t in teachers
  ]
  student_model = keras.saving.load_model(artifacts.model_path(student))
  # Each model is traced once for all sets and the timing.
  cache = inference.PredictFnCache()
  os.makedirs(evaluation.path(artifacts.PREDICTIONS_DIR), exist_ok=True)
  dev_diagnostics = diagnostics.KnowledgeDiagnostics(len(teacher_models))
  sets = {}
  for name in artifacts.eval_sets(examples):
    dataset = artifacts.eval_dataset(features, name, cfg).cache()
    records = {r.id: r for r in artifacts.read_split(examples, name)}
    members, combined = inference.predict_members(
      teacher_models,
      dataset,
      records,
      cfg.model.max_answer_len,
      cache,
      diagnostics=dev_diagnostics if name == "dev" else None,
      temperature=cfg.distill.temperature,
    )
    solo, _ = inference.predict(
      [student_model], dataset, records, cfg.model.max_answer_len, cache
    )
    answers = {
      **{
        f"teacher_{k}": inference.predictions_to_json(p)
        for k, p in enumerate(members)
      },
      "ensemble": inference.predictions_to_json(combined),
      "student": inference.predictions_to_json(solo),
    }
    answers["single"] = answers["teacher_0"]
    sets[name] = _score(examples, name, answers, len(members), cfg.train.seed)
    for system, predicted in answers.items():
      path = artifacts.predictions_path(evaluation, system, name)
      with open(path, "w", encoding="utf-8") as f:
        json.dump(predicted, f, indent=1, ensure_ascii=False)
    primary = sets[name]["primary"]
    evaluation.counts[f"{name}_student_{primary}"] = round(
      sets[name]["student"][primary], 2
    )
    if sets[name]["gain_kept"] is not None:
      evaluation.counts[f"{name}_gain_kept"] = round(sets[name]["gain_kept"], 2)
  systems = {
    "single": teacher_models[:1],
    "ensemble": teacher_models,
    "student": [student_model],
  }
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
      # `speedup` (over the ensemble) is kept under its first name.
      speedup=seconds["ensemble"] / seconds["student"],
      speedup_over_ensemble=seconds["ensemble"] / seconds["student"],
      speedup_over_single=seconds["single"] / seconds["student"],
    )
  with open(
    knowledge.path(diagnostics.DIAGNOSTICS_FILE), encoding="utf-8"
  ) as f:
    train_diagnostics = json.load(f)
  models = {
    **{f"teacher_{k}": t.counts for k, t in enumerate(teachers)},
    "student": student.counts,
  }
  result = {
    "sets": sets,
    "knowledge_diagnostics": {
      "train": train_diagnostics,
      "dev": dev_diagnostics.result(),
    },
    "training": {
      "teacher_epochs": cfg.train.epochs,
      "student_epochs": (cfg.distill.epochs or cfg.train.epochs)
      + (cfg.distill.warmup_epochs if cfg.distill.stagewise else 0),
      "selected_on": artifacts.validation_split(examples),
      "models": models,
    },
    "parameters": report.parameters(
      reader_lib.count_params(teacher_models[0])["trainable"],
      reader_lib.count_params(student_model)["trainable"],
      len(teacher_models),
      config_lib.student_model_changes(cfg),
    ),
    "inference": timing,
    # Exactly the config sections this step received (its cache key), no
    # class defaults for the rest: the run's whole resolved config is the
    # output folder's config.json. How the runs executed (the runtime
    # section) is in no cache key, so a cached report cannot say.
    "config_sections": sorted(config),
    "config": config,
  }
  with open(evaluation.path("report.json"), "w", encoding="utf-8") as f:
    json.dump(result, f, indent=2, sort_keys=True)
  with open(evaluation.path("report.md"), "w", encoding="utf-8") as f:
    f.write(report.render_markdown(result))
  if "speedup" in timing:
    evaluation.counts["speedup"] = round(timing["speedup"], 2)


def _score(
  examples: kit.Artifact, name: str, answers: dict, k: int, seed: int
) -> dict:
  """The report of one set, by the split's task, with its source."""
  scorer, truth = report.score_set, artifacts.squad_data
  if artifacts.split_task(examples, name) == artifacts.NARRATIVEQA_TASK:
    scorer, truth = report.score_narrativeqa_set, artifacts.read_references
  scored = scorer(
    truth(examples, name),
    [answers[f"teacher_{t}"] for t in range(k)],
    answers["ensemble"],
    answers["student"],
    seed=seed,
  )
  source = artifacts.split_source(examples, name)
  if source:
    scored["source"] = source
  return scored
