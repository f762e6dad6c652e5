"""Latency and throughput of the serving SavedModel's `serving_default`.

  python -m bench.serving --preset=tiny
  python -m bench.serving --preset=small --requests=500
  python -m bench.serving --saved_model=a2d_output/serving/1

Without `--saved_model` a reader of the preset's size is built with random
weights (speed does not depend on their values) over the vocabulary of the
embedded corpus' training split and exported with
`a2d_tf.serving.export_serving_model`. The SavedModel is then loaded with
`tf.saved_model.load` and called in this process, the way TF Serving runs
the signature, without the server's HTTP/gRPC layer: the figures are the
model's share of a request (tokenization, lookups, reader, decoding).

Questions and contexts are the embedded corpus' dev split, cycled. Single
requests (batch 1) give p50/p95 latency; batches of `--batch_size` give
throughput in questions per second. The last line printed is one JSON
object with every figure.
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time

import numpy as np
from absl import app, flags

from a2d_tf.config import PRESETS

_PRESET = flags.DEFINE_enum("preset", "small", list(PRESETS), "Config preset.")
_OVERRIDE = flags.DEFINE_multi_string(
  "override", [], "Config override section.field=value; repeatable."
)
_SAVED_MODEL = flags.DEFINE_string(
  "saved_model",
  "",
  "An exported version folder to measure instead of a fresh random export.",
)
_REQUESTS = flags.DEFINE_integer(
  "requests", 200, "Timed single requests.", lower_bound=1
)
_BATCH_SIZE = flags.DEFINE_integer(
  "batch_size", 32, "Questions per request for throughput.", lower_bound=1
)
_BATCHES = flags.DEFINE_integer(
  "batches", 20, "Timed batched requests.", lower_bound=1
)
_WARMUP = flags.DEFINE_integer(
  "warmup", 5, "Untimed calls of each shape first.", lower_bound=1
)


def _percentile(values: list[float], q: float) -> float:
  return float(np.percentile(np.asarray(values), q))


def _export(config, out_dir: str) -> tuple[str, int]:
  """Exports a random-weight reader of `config`'s size; returns path, size."""
  from a2d_tf import serving
  from a2d_tf.data import synthetic
  from a2d_tf.data import vocab as vocab_lib
  from a2d_tf.models.reader import build_reader, count_params

  corpus = synthetic.generate_corpus(
    config.data.synthetic_train_size, 0, config.data.synthetic_seed
  )
  vocab = vocab_lib.build_vocabulary(
    corpus["train"],
    config.data.min_word_count,
    config.data.min_char_count,
    config.data.lowercase_words,
  )
  reader = build_reader(config.model, vocab.num_words, vocab.num_chars)
  path = serving.export_serving_model(reader, vocab, config, out_dir, 1)
  return path, count_params(reader)["total"]


def _time_calls(serve, batches) -> list[float]:
  import tensorflow as tf

  seconds = []
  for questions, contexts in batches:
    question = tf.constant(questions)
    context = tf.constant(contexts)
    began = time.perf_counter()
    serve(question=question, context=context)["answer"].numpy()
    seconds.append(time.perf_counter() - began)
  return seconds


def main(argv: list[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  import tensorflow as tf
  import tensorflow_text  # noqa: F401  (registers the tokenizer op)

  from a2d_tf import config as config_lib
  from a2d_tf.data import synthetic, tokenization

  config = config_lib.check(
    config_lib.get_config(_PRESET.value, _OVERRIDE.value)
  )
  with tempfile.TemporaryDirectory() as tmp:
    num_params = None
    path = _SAVED_MODEL.value
    if not path:
      began = time.perf_counter()
      path, num_params = _export(config, tmp)
      export_seconds = time.perf_counter() - began
    else:
      export_seconds = None
    serve = tf.saved_model.load(path).signatures["serving_default"]

    dev = synthetic.generate_corpus(
      0,
      max(config.data.synthetic_dev_size, 8),
      config.data.synthetic_seed,
    )["dev"]
    pairs = [(r.question, r.context) for r in dev]
    singles = [
      ([q], [c])
      for q, c in (
        pairs[i % len(pairs)] for i in range(_WARMUP.value + _REQUESTS.value)
      )
    ]
    size = _BATCH_SIZE.value
    batched = []
    for b in range(_WARMUP.value + _BATCHES.value):
      rows = [pairs[(b * size + i) % len(pairs)] for i in range(size)]
      batched.append(([q for q, _ in rows], [c for _, c in rows]))

    _time_calls(serve, singles[: _WARMUP.value])
    single = _time_calls(serve, singles[_WARMUP.value :])
    _time_calls(serve, batched[: _WARMUP.value])
    batch = _time_calls(serve, batched[_WARMUP.value :])

  context_tokens = [
    len(t) for t in tokenization.tokenize_many([c for _, c in pairs])
  ]
  result = {
    "preset": _PRESET.value,
    "saved_model": _SAVED_MODEL.value or "random-weight export",
    "num_params": num_params,
    "export_seconds": export_seconds,
    "device": "GPU" if tf.config.list_physical_devices("GPU") else "CPU",
    "cpu_count": os.cpu_count(),
    "tf_version": tf.__version__,
    "mean_context_tokens": statistics.fmean(context_tokens),
    "max_passage_len": config.data.max_passage_len,
    "single_requests": len(single),
    "latency_ms_p50": 1000 * _percentile(single, 50),
    "latency_ms_p95": 1000 * _percentile(single, 95),
    "batch_size": size,
    "batches": len(batch),
    "batch_latency_ms_p50": 1000 * _percentile(batch, 50),
    "throughput_questions_per_s": size * len(batch) / sum(batch),
  }
  for key, value in result.items():
    if isinstance(value, float):
      result[key] = round(value, 3)
  print(json.dumps(result, sort_keys=True))


if __name__ == "__main__":
  app.run(main)
