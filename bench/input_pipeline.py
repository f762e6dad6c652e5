"""Training fed by the real TFRecord pipeline vs the same batches in memory.

  python -m bench.input_pipeline --preset=small
  python -m bench.input_pipeline --preset=paper --steps=3 --repeats=2
  python -m bench.input_pipeline --preset=small --model=teacher

The input pipeline must not be the bottleneck: reading GZIP TFRecords,
parsing, bucketing and batching run in tf.data's background threads while
the model trains, so training fed by it should be as fast as training on
batches already in memory.

`--model=student` (the default) trains an `A2DStudent` on knowledge records
(`knowledge.make_knowledge_dataset`: the feature parse plus the float16
teacher distributions and the `[hops, passage_len, question_len]` attention
block per example, the heaviest input a2d has). The knowledge is random, in
the stored format (`knowledge.add_knowledge`); its values do not change the
cost. `--model=teacher` trains a reader with CE on the feature records
(`dataset.make_dataset`).

Both arms `fit` one pass over the first `--steps` batches of the same
seeded training pipeline, so they see the same batches in the same order:
one arm reads a freshly built pipeline in every pass, the other reads the
batches from an in-memory `cache()` filled before timing. One untimed pass
(tracing), then `--repeats` passes per arm in turn. Every step is timed
(including the wait for its batch) and each arm's time is the sum over
batches of its fastest step on that batch, which shuts out most of a shared
machine's bursts of load while keeping any wait for input, which recurs.
The pipeline arm's datasets are built before timing (a run builds its
pipeline once), so each pass pays what every epoch pays: a new iterator,
whose shuffle buffer fills before the first batch (`pipeline_first_batch_s`
in the context line). With few `--steps` that start-up weighs more than
over a whole epoch.

Output, last line: `ratio`, in-memory time / pipeline time (= pipeline
throughput / in-memory throughput; target >= 0.95).
"""

from __future__ import annotations

import os
import sys

from absl import app, flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench import common  # noqa: E402

_PRESET = flags.DEFINE_enum("preset", "small", common.PRESETS, "Preset.")
_OVERRIDE = flags.DEFINE_multi_string(
  "override", [], "Config override section.field=value; repeatable."
)
_MODEL = flags.DEFINE_enum(
  "model", "student", ["student", "teacher"], "What trains on the input."
)
_STEPS = flags.DEFINE_integer("steps", 16, "Batches per pass.", lower_bound=1)
_REPEATS = flags.DEFINE_integer(
  "repeats", 3, "Timed passes per arm.", lower_bound=1
)
_BATCH_SIZE = flags.DEFINE_integer(
  "batch_size", 0, "Examples per batch; 0 takes train.batch_size."
)
_SEED = flags.DEFINE_integer("seed", 1, "Data order and weight seed.")


def main(argv: list[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  import tempfile
  import time
  import warnings

  import keras
  import numpy as np

  from a2d_tf import config as config_lib
  from a2d_tf import training
  from a2d_tf.data import dataset as dataset_lib
  from a2d_tf.data import knowledge

  # The pipeline's batch count is unknown to Keras until it ends.
  warnings.filterwarnings("ignore", "Your input ran out of data")
  config = config_lib.check(
    config_lib.get_config(_PRESET.value, _OVERRIDE.value)
  )
  batch_size = _BATCH_SIZE.value or config.train.batch_size
  objective = training.A2D if _MODEL.value == "student" else training.CE

  with tempfile.TemporaryDirectory() as tmp:
    data = common.corpus_features(config, os.path.join(tmp, "features"))
    keras.utils.set_random_seed(_SEED.value)
    model = training.build_model(
      objective, config, data.vocab.num_words, data.vocab.num_chars
    )
    if objective == training.A2D:
      pattern = common.write_random_knowledge(
        data.pattern,
        os.path.join(tmp, "knowledge"),
        config.model.aligner_hops,
        config.data.num_shards,
        _SEED.value,
      )

      def pipeline():
        return knowledge.make_knowledge_dataset(
          pattern, config, batch_size, training=True, seed=_SEED.value
        ).take(_STEPS.value)

    else:

      def pipeline():
        return dataset_lib.make_dataset(
          data.pattern,
          config.data,
          batch_size,
          training=True,
          seed=_SEED.value,
        ).take(_STEPS.value)

    in_memory = pipeline().cache()
    examples = common.fill(in_memory)
    want = [b["passage_len"].numpy().tolist() for b in in_memory]
    got = [b["passage_len"].numpy().tolist() for b in pipeline()]
    assert got == want, "the seeded pipeline must repeat its batches"
    # Built before timing: a training run builds its pipeline once, while
    # every epoch pays for a new iterator (shuffle buffer fill included).
    fresh = [pipeline() for _ in range(_REPEATS.value)]
    began = time.perf_counter()
    next(iter(pipeline()))
    startup = time.perf_counter() - began

    # Untimed: traces the step (twice: Keras relaxes the shapes on the
    # second batch shape) and, under XLA, compiles every batch shape.
    model.fit(in_memory, epochs=1, verbose=0, shuffle=False)
    best = {"memory": [np.inf] * len(want), "pipeline": [np.inf] * len(want)}
    for _ in range(_REPEATS.value):
      for name, dataset in (("memory", in_memory), ("pipeline", fresh.pop())):
        steps = common.fit_step_seconds(model, dataset)
        best[name] = np.minimum(best[name], steps).tolist()
    seconds = {name: sum(times) for name, times in best.items()}
    lengths = np.concatenate([b["passage_len"].numpy() for b in in_memory])

  common.report(
    common.context(
      _PRESET.value,
      model=_MODEL.value,
      steps=_STEPS.value,
      examples=examples,
      batch_size=batch_size,
      mean_passage_len=float(np.mean(lengths)),
      jit_compile=config.runtime.jit_compile,
      memory_s=seconds["memory"],
      pipeline_s=seconds["pipeline"],
      pipeline_first_batch_s=startup,
      memory_steps_s=[round(t, 3) for t in best["memory"]],
      pipeline_steps_s=[round(t, 3) for t in best["pipeline"]],
      pipeline_examples_per_s=examples / seconds["pipeline"],
      memory_examples_per_s=examples / seconds["memory"],
      repeats=_REPEATS.value,
    ),
    {"ratio": seconds["memory"] / seconds["pipeline"]},
  )


if __name__ == "__main__":
  app.run(main)
