"""distill_knowledge: materialize the teacher ensemble's knowledge (Beam)."""

from a2d_tf import artifacts, diagnostics, kit, materialize
from a2d_tf.config import ExperimentConfig
from a2d_tf.data import knowledge as knowledge_lib


@kit.component(
  inputs={
    "examples": "RawExamples",
    "features": "Features",
    "teachers": "Model*",
  },
  outputs={"knowledge": "Knowledge"},
  runtime_params=("beam_pipeline_args",),
)
def distill_knowledge(
  examples: kit.Artifact,
  features: kit.Artifact,
  teachers: list,
  knowledge: kit.OutputArtifact,
  config: dict,
  split: str,
  beam_pipeline_args: list,
):
  """Runs the K teachers over a split's features in an Apache Beam pipeline.

  Writes the original features plus the ensemble's soft span distributions,
  mean attention and confusing span per example (`data.knowledge`), and
  `diagnostics.json`: each teacher's and the ensemble's F1 against gold on
  this split and the sharpness of the soft distributions (`diagnostics`).
  """
  cfg = ExperimentConfig.from_dict(config)
  # Beam workers read the gold answers from a file beside the knowledge,
  # so a large split does not travel inside the pipeline graph.
  gold = knowledge_lib.write_gold_file(
    knowledge_lib.gold_answers_from_records(
      artifacts.read_split(examples, split)
    ),
    knowledge.path(knowledge_lib.GOLD_FILE),
  )
  stats = materialize.materialize_knowledge(
    artifacts.feature_pattern(features, split),
    [artifacts.model_path(t) for t in teachers],
    knowledge.uri,
    cfg,
    gold_answers=gold,
    beam_pipeline_args=beam_pipeline_args,
  )
  for key in (
    "num_examples",
    "with_confusing",
    "without_confusing",
    "knowledge_bytes_per_example",
    "file_bytes_per_example",
  ):
    if key in stats:
      knowledge.counts[key] = stats[key]
  summary = diagnostics.write_diagnostics(knowledge.uri)
  knowledge.counts["ensemble_f1"] = round(summary["ensemble"]["f1"] or 0.0, 2)
  knowledge.counts["mean_argmax_prob"] = round(summary["mean_argmax_prob"], 3)
