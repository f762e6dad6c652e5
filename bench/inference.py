"""Inference wall time: a K-teacher ensemble vs the A2D student.

  python -m bench.inference --preset=small
  python -m bench.inference --preset=paper --examples=64 --repeats=2
  python -m bench.inference --preset=small --override=student_model.hidden=16

By default the student has one teacher's architecture, so answering with it
instead of the ensemble should be about K times faster (target >= 0.95 K;
the paper reports 12.3x at K = 12). With `student_model` overrides the
student is that smaller (or larger) reader, and `speedup_over_single` says
what the slimmer architecture adds on top.

The first `--examples` dev examples of the synthetic corpus (rounded up to
whole batches of the evaluation input function) go through K random-weight
readers (the ensemble) and one more (the student) with
`a2d_tf.inference.time_forward`: every model is traced on every batch shape
first, then the systems (one teacher, the ensemble, the student) are timed
in turn, `--repeats` passes each, keeping the fastest.

Output, last line: `k`, `single_s`, `ensemble_s`, `student_s`, `speedup`
(ensemble_s / student_s) and `speedup_over_single` (single_s / student_s).
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
_K = flags.DEFINE_integer(
  "k", 0, "Ensemble size; 0 takes teacher.num_teachers.", lower_bound=0
)
_EXAMPLES = flags.DEFINE_integer(
  "examples", 256, "Dev examples answered per pass.", lower_bound=1
)
_BATCH_SIZE = flags.DEFINE_integer(
  "batch_size", 0, "Examples per batch; 0 takes train.batch_size."
)
_REPEATS = flags.DEFINE_integer(
  "repeats", 3, "Timed passes per system.", lower_bound=1
)
_SEED = flags.DEFINE_integer("seed", 1, "Weight seed.")


def main(argv: list[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  import tempfile

  import keras
  import numpy as np

  from a2d_tf import config as config_lib
  from a2d_tf import inference
  from a2d_tf.data import dataset as dataset_lib
  from a2d_tf.models.reader import build_reader

  config = config_lib.check(
    config_lib.get_config(_PRESET.value, _OVERRIDE.value)
  )
  k = _K.value or config.teacher.num_teachers
  batch_size = _BATCH_SIZE.value or config.train.batch_size

  with tempfile.TemporaryDirectory() as tmp:
    data = common.corpus_features(config, tmp, split="dev")
    batches = list(
      dataset_lib.make_dataset(
        data.pattern, config.data, batch_size, training=False
      ).take(-(-_EXAMPLES.value // batch_size))
    )
  examples = sum(int(b["passage_len"].shape[0]) for b in batches)

  def reader(seed, model_config=config.model):
    keras.utils.set_random_seed(seed)
    return build_reader(
      model_config,
      data.vocab.num_words,
      data.vocab.num_chars,
      dtype=config.runtime.mixed_precision or None,
      name=f"reader_{seed}",
    )

  teachers = [reader(_SEED.value + i) for i in range(k)]
  student = reader(_SEED.value + k, config_lib.resolve_student_model(config))
  seconds = inference.time_forward(
    {"single": teachers[:1], "ensemble": teachers, "student": [student]},
    batches,
    _REPEATS.value,
  )
  lengths = np.concatenate([b["passage_len"].numpy() for b in batches])

  common.report(
    common.context(
      _PRESET.value,
      examples=examples,
      batch_size=batch_size,
      mean_passage_len=float(np.mean(lengths)),
      student_examples_per_s=examples / seconds["student"],
      repeats=_REPEATS.value,
    ),
    {
      "k": k,
      "student_model": config_lib.student_model_changes(config),
      "single_s": seconds["single"],
      "ensemble_s": seconds["ensemble"],
      "student_s": seconds["student"],
      "speedup": seconds["ensemble"] / seconds["student"],
      "speedup_over_single": seconds["single"] / seconds["student"],
    },
  )


if __name__ == "__main__":
  app.run(main)
