"""validate_model: the model and infra blessings in front of the push."""

import json

from a2d_tf import blessing as blessing_lib
from a2d_tf import infra_validation, kit


@kit.component(
  inputs={"evaluation": "Evaluation", "serving": "ServingModel"},
  outputs={"blessing": "Blessing"},
)
def validate_model(
  evaluation: kit.Artifact,
  serving: kit.Artifact,
  blessing: kit.OutputArtifact,
  min_f1_vs_single: float,
  min_f1_vs_ensemble: float,
):
  """Writes `blessing.json` and the report with its blessing section.

  The model half compares the student with the single teachers' mean and
  the ensemble on every set of the evaluation's `report.json`; the infra
  half loads the exported version folder in a fresh process with only
  TensorFlow and tensorflow-text and sends it canaries
  (`a2d_tf.blessing`, `a2d_tf.infra_validation`). `report.json` and
  `report.md` here are the evaluation's plus the blessing, which the
  local runner copies to the output folder. Counts: `blessed`,
  `model_blessed`, `infra_blessed`, `reason`.
  """
  with open(evaluation.path("report.json"), encoding="utf-8") as f:
    report = json.load(f)
  with open(evaluation.path("report.md"), encoding="utf-8") as f:
    markdown = f.read()
  model = blessing_lib.model_blessing(
    report, min_f1_vs_single, min_f1_vs_ensemble
  )
  version = serving.counts["version"]
  infra = infra_validation.check_serving_model(serving.path(str(version)))
  result = blessing_lib.combine(model, infra)
  blessing_lib.write(blessing.uri, result)
  with open(blessing.path("report.json"), "w", encoding="utf-8") as f:
    json.dump({**report, "blessing": result}, f, indent=2, sort_keys=True)
  with open(blessing.path("report.md"), "w", encoding="utf-8") as f:
    f.write(
      markdown.rstrip("\n") + "\n\n" + blessing_lib.render_markdown(result)
    )
  blessing.counts.update(
    blessed=result["blessed"],
    model_blessed=model["blessed"],
    infra_blessed=infra["blessed"],
    reason=result["reason"],
  )
