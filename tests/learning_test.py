"""The tiny preset's reader learns the embedded synthetic corpus.

Runs the pipeline's first steps (example_gen, transform, train_teacher_0) on
the `tiny` preset as `python -m pipelines.local_runner --preset=tiny` would,
then compares the teacher's dev F1 with the corpus' type-matching baselines
on the same dev split.

Why the threshold: `synthetic_baseline.type_matching_baseline` knows every
entity's type and the question's entities (or, with `anchors="words"`,
every question word) but no relation, so a reader that learned only answer types
and nearness to the question scores about as well as it. On the tiny dev
split the two baselines score about 33 and 38 F1. The teacher must beat the
stronger one by `MARGIN` F1 points (about 50 F1), half of the gap to what
it reaches: the tiny teacher scored 62 to 65 dev F1 with seeds 1 to 4
(about 65 s of training on 2 cores), so the test is not within seed noise
of failing, and a reader that stopped learning relations (or a broken
feature, label or decoder) falls far below it.
"""

import keras
import pytest

from a2d_tf import artifacts, inference, kit
from a2d_tf import config as config_lib
from a2d_tf.data import synthetic_baseline
from a2d_tf.metrics import squad as squad_metrics
from pipelines import pipeline

MARGIN = 12.0
STEPS = ("example_gen", "transform", "train_teacher_0")


@pytest.mark.slow
def test_tiny_teacher_beats_type_matching_baselines(tmp_path):
  config = config_lib.get_config("tiny")
  full = pipeline.create_pipeline(config)
  steps = kit.Pipeline("learning", [full.node(step) for step in STEPS])

  results = kit.LocalDagRunner(str(tmp_path)).run(steps)

  examples = results["example_gen"]["examples"]
  features = results["transform"]["features"]
  # Every training question keeps its gold span (no truncated answers).
  assert features.counts["train"] == examples.counts["train"]
  dev = artifacts.read_split(examples, "dev")
  squad_dev = artifacts.squad_data(examples, "dev")
  baselines = {
    anchors: squad_metrics.evaluate(
      squad_dev, synthetic_baseline.type_matching_baseline(dev, anchors)
    )["f1"]
    for anchors in ("entities", "words")
  }
  # Training selects on the validation split and never reads dev.
  assert results["train_teacher_0"]["model"].counts["best_epoch"] >= 1
  teacher = keras.saving.load_model(
    artifacts.model_path(results["train_teacher_0"]["model"])
  )
  predictions, _ = inference.predict(
    [teacher],
    artifacts.eval_dataset(features, "dev", config),
    {r.id: r for r in dev},
    config.model.max_answer_len,
  )
  teacher_f1 = inference.evaluate_predictions(squad_dev, predictions)["f1"]
  threshold = max(baselines.values()) + MARGIN
  assert teacher_f1 >= threshold, (
    f"tiny teacher dev F1 {teacher_f1:.1f} < {threshold:.1f} "
    f"(type-matching baselines {baselines})"
  )
