"""Reader variants side by side: dev F1 of single readers, same budget.

  python -m bench.reader_compare --preset=small --seeds=1,2 \\
      --variants=memory,rmr,rmr+qem
  python -m bench.reader_compare --dataset=json \\
      --train_file=../shared/data/squad/train-v1.1.json \\
      --dev_file=../shared/data/squad/dev-v1.1.json \\
      --max_train_examples=12000 --preset=small --seeds=1,2 \\
      --override=train.epochs=3

Trains one reader per (variant, seed) with plain span cross-entropy (no
teachers, no distillation), one after the other, on the same featurized
data with the same config apart from the variant, and scores the final
weights with the official SQuAD EM/F1 on the dev split.

A variant is an answer pointer (`model.pointer`: `memory` or `rmr`),
optionally followed by `+qem` (`model.question_em=true`); anything else in
the config comes from `--preset` and `--override`, so `memory` on the
`small` preset is the reader as it was before the IJCAI pointer and the
question flags existed. With `--glove_file` the word ids are laid out for
partial training as the pipeline's transform does (`data.tune_top_words`).

Output: a `context` line (preset, data, sizes, date, machine), one
`run` line per trained reader, and as the last line one JSON object with,
per variant, F1 and EM mean and standard deviation over the seeds, the
per-seed values and the training seconds. A data file that does not exist
is reported on one line and nothing is trained (exit status 0), so the
command can stand in a script that runs where the data may be absent.
"""

from __future__ import annotations

import dataclasses
import json
import os
import statistics
import sys
import tempfile
import time

from absl import app, flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

POINTERS = ("memory", "rmr")
MODIFIERS = {"qem": "model.question_em=true"}

_DATASET = flags.DEFINE_enum(
  "dataset", "synthetic", ["synthetic", "json"], "Data source."
)
_TRAIN_FILE = flags.DEFINE_string(
  "train_file", "", "SQuAD-format training file (--dataset=json)."
)
_DEV_FILE = flags.DEFINE_string(
  "dev_file", "", "SQuAD-format dev file (--dataset=json)."
)
_GLOVE_FILE = flags.DEFINE_string(
  "glove_file", "", "Optional GloVe-format word vectors."
)
_MAX_TRAIN = flags.DEFINE_integer(
  "max_train_examples",
  0,
  "Keep the first N training questions (0: all).",
  lower_bound=0,
)
_MAX_DEV = flags.DEFINE_integer(
  "max_dev_examples",
  0,
  "Keep the first N dev questions (0: all).",
  lower_bound=0,
)
_PRESET = flags.DEFINE_enum(
  "preset", "small", ["tiny", "small", "paper"], "Config preset."
)
_SEEDS = flags.DEFINE_list("seeds", ["1", "2"], "Training seeds.")
_VARIANTS = flags.DEFINE_list(
  "variants",
  ["memory", "rmr", "rmr+qem"],
  "Reader variants: memory|rmr, optionally +qem (question exact match).",
)
_OVERRIDE = flags.DEFINE_multi_string(
  "override", [], "Config override section.field=value; repeatable."
)
_RUN_EAGERLY = flags.DEFINE_boolean(
  "run_eagerly",
  None,
  "Run train steps eagerly (tiny runs); default from the config.",
)
_OUTPUT_DIR = flags.DEFINE_string(
  "output_dir", "", "Where features and models go; default a temp folder."
)


def variant_overrides(variant: str) -> list[str]:
  """Config overrides of one variant, e.g. `rmr+qem`.

  Raises:
    ValueError: On an unknown pointer or modifier.
  """
  pointer, *modifiers = variant.strip().split("+")
  if pointer not in POINTERS:
    raise ValueError(
      f"Bad variant {variant!r}: starts with a pointer, one of {POINTERS}."
    )
  unknown = sorted(set(modifiers) - set(MODIFIERS))
  if unknown:
    raise ValueError(
      f"Bad variant {variant!r}: unknown modifier(s) {unknown}; known: "
      f"{sorted(MODIFIERS)}."
    )
  return [f"model.pointer={pointer}", *(MODIFIERS[m] for m in modifiers)]


def _missing_file() -> str:
  """The first data file named by the flags that does not exist, or ""."""
  named = {"--glove_file": _GLOVE_FILE.value}
  if _DATASET.value == "json":
    named = {
      "--train_file": _TRAIN_FILE.value,
      "--dev_file": _DEV_FILE.value,
      **named,
    }
  for flag, path in named.items():
    if _DATASET.value == "json" and flag != "--glove_file" and not path:
      return f"{flag} (not given; --dataset=json needs it)"
    if path and not os.path.exists(path):
      return f"{flag}={path}"
  return ""


def _mean_std(values: list[float]) -> tuple[float, float]:
  std = statistics.stdev(values) if len(values) > 1 else 0.0
  return statistics.fmean(values), std


def with_run_eagerly(config, run_eagerly: bool | None):
  """`config` with `runtime.run_eagerly` set, or as it is for None."""
  if run_eagerly is None:
    return config
  return dataclasses.replace(
    config,
    runtime=dataclasses.replace(config.runtime, run_eagerly=run_eagerly),
  )


def main(argv: list[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  try:
    seeds = [int(s) for s in _SEEDS.value]
    variants = {v: variant_overrides(v) for v in _VARIANTS.value}
  except ValueError as e:
    raise app.UsageError(str(e)) from None
  if not seeds or not variants:
    raise app.UsageError("--seeds and --variants must not be empty.")
  missing = _missing_file()
  if missing:
    print(f"skipped: data file absent: {missing}; nothing was trained.")
    return
  if _OUTPUT_DIR.value:
    _compare(_OUTPUT_DIR.value, seeds, variants)
  else:
    with tempfile.TemporaryDirectory(prefix="a2d_reader_compare_") as tmp:
      _compare(tmp, seeds, variants)


def _compare(out_dir: str, seeds: list[int], variants: dict) -> None:
  from a2d_tf import config as config_lib
  from a2d_tf import inference, training
  from a2d_tf.data import dataset as dataset_lib
  from a2d_tf.data import features, sources, squad
  from a2d_tf.data import vocab as vocab_lib
  from a2d_tf.models.reader import count_params
  from bench import common  # Imports TensorFlow: after the flag checks.

  try:
    base = config_lib.get_config(_PRESET.value, _OVERRIDE.value)
    configs = {
      name: config_lib.apply_overrides(base, overrides)
      for name, overrides in variants.items()
    }
  except ValueError as e:
    raise app.UsageError(str(e)) from None
  data = base.data
  splits = sources.load_splits(
    _DATASET.value,
    train_file=_TRAIN_FILE.value,
    dev_file=_DEV_FILE.value,
    synthetic_train_size=data.synthetic_train_size,
    synthetic_dev_size=data.synthetic_dev_size,
    synthetic_seed=data.synthetic_seed,
    max_train_examples=_MAX_TRAIN.value,
    max_dev_examples=_MAX_DEV.value,
  )
  train, dev = splits["train"], splits["dev"]
  vocab = vocab_lib.build_vocabulary(
    train, data.min_word_count, data.min_char_count, data.lowercase_words
  )
  vectors = None
  if _GLOVE_FILE.value:
    vocab, vectors = vocab_lib.load_pretrained(
      _GLOVE_FILE.value,
      vocab,
      base.model.word_dim,
      base.train.seed,
      questions=[r.question for r in train],
      tune_top_words=data.tune_top_words,
    )
  feature_dir = os.path.join(out_dir, "features")
  train_stats = features.write_split(
    train, vocab, data, feature_dir, "train", training=True
  )
  features.write_split(dev, vocab, data, feature_dir, "dev", training=False)
  dev_dataset = dataset_lib.make_dataset(
    features.file_pattern(feature_dir, "dev"),
    data,
    base.train.batch_size,
    training=False,
    with_metadata=True,
    cache=True,
  )
  dev_squad = squad.to_squad_json(dev)["data"]
  dev_records = {r.id: r for r in dev}

  print(
    "context "
    + json.dumps(
      common.context(
        _PRESET.value,
        dataset=_DATASET.value,
        train_questions=len(train),
        train_examples=train_stats["num_examples"],
        dev_questions=len(dev),
        vocab_words=vocab.num_words,
        glove=bool(_GLOVE_FILE.value),
        epochs=base.train.epochs,
        batch_size=base.train.batch_size,
        overrides=list(_OVERRIDE.value),
        seeds=seeds,
        variants=list(variants),
      ),
      sort_keys=True,
    ),
    flush=True,
  )
  began = time.monotonic()
  results = {}
  for name, config in configs.items():
    runs = []
    for seed in seeds:
      epoch = dataset_lib.epoch_variable()
      train_dataset = dataset_lib.make_dataset(
        features.file_pattern(feature_dir, "train"),
        data,
        config.train.batch_size,
        training=True,
        seed=seed,
        epoch=epoch,
      )
      run_began = time.monotonic()
      reader = training.train(
        with_run_eagerly(config, _RUN_EAGERLY.value),
        training.CE,
        vocab.num_words,
        vocab.num_chars,
        train_dataset,
        os.path.join(out_dir, name.replace("+", "_"), f"seed_{seed}"),
        seed=seed,
        embedding_matrix=vectors,
        name=f"reader_{name.replace('+', '_')}_{seed}",
        train_epoch=epoch,
      )
      train_s = time.monotonic() - run_began
      scores = inference.make_dev_eval_fn(
        dev_dataset, dev_records, dev_squad, config.model.max_answer_len
      )(reader)
      run = {
        "variant": name,
        "seed": seed,
        "f1": round(scores["f1"], 2),
        "exact_match": round(scores["exact_match"], 2),
        "train_s": round(train_s, 1),
        "trainable_params": count_params(reader)["trainable"],
      }
      print("run " + json.dumps(run, sort_keys=True), flush=True)
      runs.append(run)
    f1_mean, f1_std = _mean_std([r["f1"] for r in runs])
    em_mean, em_std = _mean_std([r["exact_match"] for r in runs])
    results[name] = {
      "f1_mean": round(f1_mean, 2),
      "f1_std": round(f1_std, 2),
      "exact_match_mean": round(em_mean, 2),
      "exact_match_std": round(em_std, 2),
      "f1": [r["f1"] for r in runs],
      "exact_match": [r["exact_match"] for r in runs],
      "seeds": seeds,
      "train_s": [r["train_s"] for r in runs],
      "trainable_params": runs[0]["trainable_params"],
    }
  print(
    json.dumps(
      {
        "preset": _PRESET.value,
        "dataset": _DATASET.value,
        "variants": results,
        "wall_s": round(time.monotonic() - began, 1),
      },
      sort_keys=True,
    )
  )


if __name__ == "__main__":
  app.run(main)
