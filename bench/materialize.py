"""Teacher-knowledge materialization: examples per second, bytes per example.

  python -m bench.materialize --preset=small
  python -m bench.materialize --preset=paper --examples=64

Runs `a2d_tf.materialize.materialize_knowledge`, the Apache Beam pipeline of
the knowledge step (in-process FnApiRunner here), with K random-weight
teachers saved as `.keras` files over the feature records of the first
`--examples` training records of the synthetic corpus. The time is the
whole step as a pipeline run pays it: Beam start-up, loading and tracing the
K teachers, their forward passes, top-K span search, encoding and writing
the GZIP TFRecords. Fixed costs weigh more the fewer the examples.

Output, last line: `examples_per_s` and `bytes_per_example` (knowledge
records on disk, GZIP, per example). The context line also gives the
serialized record size and the share the knowledge adds to it.
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
  "k", 0, "Teachers; 0 takes teacher.num_teachers.", lower_bound=0
)
_EXAMPLES = flags.DEFINE_integer(
  "examples", 512, "Training records featurized and distilled.", lower_bound=1
)
_SEED = flags.DEFINE_integer("seed", 1, "Weight seed.")


def main(argv: list[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  import tempfile
  import time

  import keras

  from a2d_tf import config as config_lib
  from a2d_tf import materialize
  from a2d_tf.data import knowledge
  from a2d_tf.models.reader import build_reader

  config = config_lib.check(
    config_lib.get_config(_PRESET.value, _OVERRIDE.value)
  )
  k = _K.value or config.teacher.num_teachers

  with tempfile.TemporaryDirectory() as tmp:
    data = common.corpus_features(
      config, os.path.join(tmp, "features"), max_records=_EXAMPLES.value
    )
    paths = []
    for i in range(k):
      keras.utils.set_random_seed(_SEED.value + i)
      teacher = build_reader(
        config.model,
        data.vocab.num_words,
        data.vocab.num_chars,
        name=f"teacher_{i}",
      )
      paths.append(os.path.join(tmp, f"teacher_{i}.keras"))
      teacher.save(paths[-1])
    began = time.perf_counter()
    stats = materialize.materialize_knowledge(
      data.pattern,
      paths,
      os.path.join(tmp, "knowledge"),
      config,
      knowledge.gold_answers_from_records(data.records),
    )
    seconds = time.perf_counter() - began

  common.report(
    common.context(
      _PRESET.value,
      k=k,
      examples=stats["num_examples"],
      batch_size=config.train.batch_size,
      seconds=seconds,
      record_bytes_per_example=stats["record_bytes_per_example"],
      knowledge_bytes_per_example=stats["knowledge_bytes_per_example"],
      with_confusing=stats["with_confusing"],
    ),
    {
      "examples_per_s": stats["num_examples"] / seconds,
      "bytes_per_example": stats["file_bytes_per_example"],
    },
  )


if __name__ == "__main__":
  app.run(main)
