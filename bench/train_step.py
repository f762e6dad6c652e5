"""Teacher CE train step vs student A2D train step, on the same batches.

  python -m bench.train_step --preset=small
  python -m bench.train_step --preset=paper --steps=3 --repeats=2
  python -m bench.train_step --preset=small --jit_compile

A2D's promise is that distillation costs the student almost nothing over
plain training: the teachers' knowledge is precomputed, so the A2D step adds
only the KD, ANS and ATT terms (and reads the knowledge tensors) on top of
the reader's forward and backward pass. This measures that overhead.

`--steps` training batches of the synthetic corpus (the real input
function: shuffled, bucketed by passage length) get random knowledge of the
right shapes and are held in memory, so no input cost is timed (padded
onto the length grid when the runtime asks, as under XLA). A
random-weight reader (`training.build_model(training.CE, ...)`, the
teacher's CE step) and an `A2DStudent` of the same size
(`training.A2D`) train on them with `train_on_batch` (the
compiled Keras train step): one untimed pass each (tracing; under XLA,
compiling every batch shape), then `--repeats` passes in which the two
step on each batch back to back; per batch each keeps its fastest step.
Step-by-step alternation keeps the ratio fair on a shared machine, whose
load changes over seconds.

Output, last line: `ce_examples_per_s`, `a2d_examples_per_s` and `ratio`
(A2D step time / CE step time; target <= 1.10).
"""

from __future__ import annotations

import dataclasses
import os
import sys

from absl import app, flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench import common  # noqa: E402

_PRESET = flags.DEFINE_enum("preset", "small", common.PRESETS, "Preset.")
_OVERRIDE = flags.DEFINE_multi_string(
  "override", [], "Config override section.field=value; repeatable."
)
_STEPS = flags.DEFINE_integer("steps", 8, "Batches per pass.", lower_bound=1)
_REPEATS = flags.DEFINE_integer(
  "repeats", 3, "Timed passes per step.", lower_bound=1
)
_BATCH_SIZE = flags.DEFINE_integer(
  "batch_size", 0, "Examples per batch; 0 takes train.batch_size."
)
_JIT_COMPILE = flags.DEFINE_boolean(
  "jit_compile",
  None,
  "Compile the steps with XLA; default runtime.jit_compile.",
)
_SEED = flags.DEFINE_integer("seed", 1, "Data order and weight seed.")


def _step_seconds(models, batches, repeats: int) -> dict[str, float]:
  """Per model, the sum over batches of its fastest step on that batch.

  The models step on each batch back to back (their order alternating from
  batch to batch), so a busy spell of a shared machine hits them alike;
  the fastest of `repeats` steps per batch is the least disturbed.
  """
  import time

  best = {name: [float("inf")] * len(batches) for name in models}
  for _ in range(repeats):
    for i, batch in enumerate(batches):
      names = list(models)
      for name in names if i % 2 == 0 else reversed(names):
        began = time.perf_counter()
        models[name].train_on_batch(batch)
        best[name][i] = min(best[name][i], time.perf_counter() - began)
  return {name: sum(times) for name, times in best.items()}


def main(argv: list[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  import tempfile

  import keras
  import numpy as np
  import tensorflow as tf

  from a2d_tf import config as config_lib
  from a2d_tf import training
  from a2d_tf.data import dataset as dataset_lib
  from a2d_tf.models.reader import count_params

  config = config_lib.check(
    config_lib.get_config(_PRESET.value, _OVERRIDE.value)
  )
  if _JIT_COMPILE.value is not None:
    runtime = dataclasses.replace(
      config.runtime, jit_compile=_JIT_COMPILE.value
    )
    config = dataclasses.replace(config, runtime=runtime)
  runtime = config.runtime
  batch_size = _BATCH_SIZE.value or config.train.batch_size
  rng = np.random.default_rng(_SEED.value)

  with tempfile.TemporaryDirectory() as tmp:
    data = common.corpus_features(config, tmp)
    batches = []
    for batch in dataset_lib.make_dataset(
      data.pattern,
      config.data,
      batch_size,
      training=True,
      seed=_SEED.value,
      pad_to=dataset_lib.length_grid(config),
    ).take(_STEPS.value):
      batch = {k: v.numpy() for k, v in batch.items()}
      batch.update(
        common.random_knowledge(
          batch["passage_len"],
          batch["question_len"],
          config.model.aligner_hops,
          rng,
        )
      )
      batches.append(batch)
  batches = [{k: tf.constant(v) for k, v in b.items()} for b in batches]
  examples = sum(int(b["passage_len"].shape[0]) for b in batches)

  keras.utils.set_random_seed(_SEED.value)
  reader, student = (
    training.build_model(
      objective, config, data.vocab.num_words, data.vocab.num_chars
    )
    for objective in (training.CE, training.A2D)
  )

  params = count_params(reader)["trainable"]
  # Untimed: traces each step (twice: Keras relaxes the shapes on the
  # second) and under XLA compiles every batch shape.
  for model in (reader, student):
    for batch in batches:
      model.train_on_batch(batch)
  seconds = _step_seconds(
    {"ce": reader, "a2d": student}, batches, _REPEATS.value
  )
  lengths = np.concatenate([b["passage_len"] for b in batches])
  common.report(
    common.context(
      _PRESET.value,
      steps=len(batches),
      examples=examples,
      batch_size=batch_size,
      mean_passage_len=float(np.mean(lengths)),
      jit_compile=runtime.jit_compile,
      mixed_precision=runtime.mixed_precision,
      trainable_params=params,
      ce_s=seconds["ce"],
      a2d_s=seconds["a2d"],
      repeats=_REPEATS.value,
    ),
    {
      "ce_examples_per_s": examples / seconds["ce"],
      "a2d_examples_per_s": examples / seconds["a2d"],
      "ratio": seconds["a2d"] / seconds["ce"],
    },
  )


if __name__ == "__main__":
  app.run(main)
