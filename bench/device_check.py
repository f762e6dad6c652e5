"""One short check that training is ready for a GPU, and what it costs there.

  python bench/device_check.py                  # full on a GPU, reduced on CPU
  python bench/device_check.py --mode=reduced   # the CPU version anywhere (CI)
  python bench/device_check.py --mode=full --settings=float32/xla=off/det=off

Full mode (the default with a GPU) checks the `paper` preset in at most
`--budget_s` seconds (420: under 8 minutes with start-up); reduced mode (the
default without one) runs the same code on a smaller `tiny` model with few
batches and two settings (`mixed_float16` with XLA, whose compile count
is taken over the timing batches, and float32 with determinism), in under
a minute on 2 CPU cores, and marks what needs a GPU `{"skipped": "no
GPU"}`. Its figures are not GPU figures (the
output says so). A section started after the budget ran out is
`{"skipped": "time budget"}`; `section_s` gives each section's seconds.

Sections, in this order:

1. `cudnn_in_graph`: the training step of the preset's reader under the
   default runtime is traced (`RMRReader.train_step`, what Keras compiles),
   and its graph searched for cuDNN's `CudnnRNNV3` (and the backward op);
   `graph` also counts `Assert` ops (host round trips) and `While` loops.
2. `cudnn_vs_loop`: a reader with `use_cudnn=True` and the same weights with
   `use_cudnn=False` on a masked batch with an empty row: max abs difference
   of the logits and attention at valid positions, of the loss and of every
   gradient (GPU only).
3. `examples_per_s`: CE training examples/s at SQuAD lengths, keyed
   `<precision>/xla=<on|off>/det=<on|off>`, for float32, mixed_bfloat16 and
   mixed_float16, with and without XLA, op determinism off and on; settings
   with determinism run last (it is process-wide and cannot be turned off)
   and XLA with determinism is skipped (Keras does not compile with XLA under
   op determinism). Each setting builds the model with `training.build_model`
   (its runtime: cuDNN unless XLA), runs one pass over the timing batches
   (tracing, XLA compiles) and then a timed pass over the same batches.
4. `xla_compiles`: the float32 XLA step over `--compile_batches` batches
   (50) at SQuAD lengths padded onto the length grid: the programs XLA
   compiles (distinct batch shapes; without padding, `unpadded_shapes`
   would be compiled) and the compile seconds (per new shape, its step in
   the first pass minus the same batch's step in the second).
5. `float16`: non-finite losses, skipped (non-finite gradient) steps and the
   final dynamic loss scale of each `mixed_float16` setting.
6. `peak_memory`: peak GPU memory of one float32 training step at passage
   length 400, question length 50, batch 32 (GPU only).
7. `inference`: forward seconds of an ensemble of K readers (12) vs one
   student over dev-like batches (`inference.time_forward`), the speedup and
   the seconds extrapolated to SQuAD v1.1 dev (10,570 questions).
8. `pipeline_estimate` (full mode): hours of the whole `paper` pipeline on
   this device from its measured training and inference examples/s (see
   `pipeline_estimate`).

Inputs are synthetic (random ids; speed does not depend on them) with
SQuAD v1.1-like lengths: passages log-normal with median 125 tokens (mean
about 135), clipped to [20, data.max_passage_len]; questions median 11,
clipped to [3, data.max_question_len]; batched by passage-length bucket
and padded onto the runtime's length grid, as the pipeline's input is. The
word embedding is frozen, as with GloVe. The reduced mode scales lengths to
the `tiny` preset (median passage 60, question 8).

Output: a `context` line, then ONE JSON object as the last line with at
least `device`, `cudnn_in_graph`, `examples_per_s` and `xla_compiles`.
"""

from __future__ import annotations

import dataclasses
import math
import os
import sys
import time

from absl import app, flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench import common  # noqa: E402

_MODE = flags.DEFINE_enum(
  "mode", "auto", ["auto", "full", "reduced"], "auto: full with a GPU."
)
_PRESET = flags.DEFINE_enum(
  "preset", None, common.PRESETS, "Preset; default paper (full), tiny."
)
_BUDGET_S = flags.DEFINE_float(
  "budget_s", 420.0, "Seconds after which sections are skipped."
)
_SETTINGS = flags.DEFINE_list(
  "settings", [], "Only these examples_per_s settings (default: all)."
)
_TIMING_BATCHES = flags.DEFINE_integer(
  "timing_batches", None, "Batches per timed pass; default 20 (full), 2."
)
_COMPILE_BATCHES = flags.DEFINE_integer(
  "compile_batches", None, "Batches of the XLA compile count; 50 / 6."
)
_ENSEMBLE_SIZE = flags.DEFINE_integer(
  "ensemble_size", None, "K for the inference section; 12 (full) / 2."
)
_SEED = flags.DEFINE_integer("seed", 1, "Lengths, ids and weight seed.")

PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")
NO_GPU = "no GPU"
BUDGET = "time budget"
REDUCED = "reduced run"
# SQuAD v1.1: training questions, dev questions (the pipeline's work).
SQUAD_TRAIN, SQUAD_DEV = 87599, 10570
# The student's A2D step costs about this much more than the CE step
# (bench/train_step.py, README "Performance").
A2D_STEP_COST = 1.08
# Timed passes over dev in the evaluate step (`pipeline.timing_repeats`).
TIMING_REPEATS = 3


def setting_name(precision: str, xla: bool, deterministic: bool) -> str:
  return (
    f"{precision}/xla={'on' if xla else 'off'}/"
    f"det={'on' if deterministic else 'off'}"
  )


def all_settings() -> list[tuple[str, bool, bool]]:
  """Every (precision, xla, deterministic), determinism last."""
  return [
    (precision, xla, det)
    for det in (False, True)
    for xla in (False, True)
    for precision in PRECISIONS
  ]


@dataclasses.dataclass(frozen=True)
class Plan:
  """What one run measures.

  Attributes:
    full: Full (paper, GPU) or reduced mode.
    gpu: Whether TF sees a GPU.
    preset: The preset measured.
    batch_size: Examples per batch.
    timing_batches: Batches per timed pass.
    compile_batches: Batches of the XLA compile count.
    ensemble_size: K of the inference section.
    passage_median: Median passage length of the synthetic inputs.
    question_median: Median question length.
    settings: The examples_per_s settings to run (names).
    overrides: Config overrides applied to the preset.
  """

  full: bool
  gpu: bool
  preset: str
  batch_size: int
  timing_batches: int
  compile_batches: int
  ensemble_size: int
  passage_median: int
  question_median: int
  settings: tuple[str, ...]
  overrides: tuple[str, ...] = ()


# The reduced run's model: the tiny preset with one hop each and narrower
# layers, so tracing and XLA compiles take seconds on 2 CPU cores.
REDUCED_MODEL = (
  "model.aligner_hops=1",
  "model.pointer_hops=1",
  "model.hidden=8",
  "model.word_dim=16",
  "model.char_hidden=8",
)


def make_plan(
  gpu: bool,
  mode: str = "auto",
  preset: str | None = None,
  settings: tuple[str, ...] = (),
  timing_batches: int | None = None,
  compile_batches: int | None = None,
  ensemble_size: int | None = None,
) -> Plan:
  """The plan for `mode` ("auto": full with a GPU, else reduced)."""
  full = mode == "full" or (mode == "auto" and gpu)
  known = [setting_name(*s) for s in all_settings()]
  unknown = sorted(set(settings) - set(known))
  if unknown:
    raise ValueError(f"Unknown settings {unknown}; choose from {known}.")
  if not settings:
    if full:
      settings = tuple(known)
    else:
      # Reduced: the code paths, not every figure.
      settings = tuple(
        setting_name(*s)
        for s in (("mixed_float16", True, False), ("float32", False, True))
      )
  return Plan(
    full=full,
    gpu=gpu,
    preset=preset or ("paper" if full else "tiny"),
    batch_size=32 if full else 8,
    timing_batches=timing_batches or (20 if full else 2),
    compile_batches=compile_batches or (50 if full else 3),
    ensemble_size=ensemble_size or (12 if full else 2),
    passage_median=125 if full else 60,
    question_median=11 if full else 8,
    settings=tuple(settings),
    overrides=() if full else REDUCED_MODEL,
  )


class Deadline:
  """Seconds left of the budget; sections ask before they start."""

  def __init__(self, budget_s: float):
    self.start = time.perf_counter()
    self.budget_s = budget_s

  def left(self) -> float:
    return self.budget_s - (time.perf_counter() - self.start)

  def passed(self) -> bool:
    return self.left() <= 0


def squad_like_lengths(
  rng, count: int, median: int, low: int, high: int, sigma: float = 0.4
):
  """`count` log-normal lengths with `median`, clipped to [low, high]."""
  import numpy as np

  values = rng.lognormal(math.log(median), sigma, count)
  return np.clip(np.round(values), low, high).astype(np.int32)


def make_batches(
  config, plan: Plan, rng, num_batches: int, grid=None, shape=None
):
  """Bucketed synthetic batches at SQuAD-like lengths.

  Examples are drawn until `num_batches` full batches fill, bucket by
  bucket as `bucket_by_sequence_length` fills them; each batch is padded to
  its longest passage and question, or onto `grid` when given (and then
  kept only if its shape is `shape`, when given).

  Returns:
    `(batches, unpadded_shapes)`: dicts of NumPy arrays (model inputs,
    `start`, `end`) and the `(batch, passage, question)` shape each batch
    would have without the grid.
  """
  import numpy as np

  from a2d_tf.data import dataset as dataset_lib

  data = config.data
  boundaries = list(data.bucket_boundaries)
  buckets: dict[int, list[tuple[int, int]]] = {}
  batches, shapes = [], []
  while len(batches) < num_batches:
    (p,) = squad_like_lengths(
      rng, 1, plan.passage_median, 20, data.max_passage_len
    )
    (q,) = squad_like_lengths(
      rng, 1, plan.question_median, 3, data.max_question_len, 0.3
    )
    p, q = int(p), int(q)
    bucket = sum(p >= b for b in boundaries)
    members = buckets.setdefault(bucket, [])
    members.append((p, q))
    if len(members) < plan.batch_size:
      continue
    buckets[bucket] = []
    p_len = np.array([m[0] for m in members], np.int32)
    q_len = np.array([m[1] for m in members], np.int32)
    lp, lq = int(p_len.max()), int(q_len.max())
    batch = _random_batch(rng, p_len, q_len, lp, lq, data.max_word_len)
    if grid is not None:
      batch = {
        k: np.asarray(v) for k, v in dataset_lib.pad_batch(batch, grid).items()
      }
    if shape is not None and padded_shape(batch) != tuple(shape):
      continue
    shapes.append((plan.batch_size, lp, lq))
    batches.append(batch)
  return batches, shapes


# Word and character vocabulary sizes of the synthetic inputs.
WORDS, CHARS = 20000, 100


def _random_batch(rng, p_len, q_len, lp, lq, word_len):
  import numpy as np

  def tokens(lengths, width):
    mask = np.arange(width)[None] < lengths[:, None]
    ids = np.where(mask, rng.integers(2, WORDS, mask.shape), 0)
    chars_per_word = rng.integers(2, word_len + 1, mask.shape)
    char_mask = (
      np.arange(word_len)[None, None] < chars_per_word[..., None]
    ) & (mask[..., None])
    chars = np.where(char_mask, rng.integers(1, CHARS, char_mask.shape), 0)
    return ids.astype(np.int32), chars.astype(np.int32), mask

  passage_ids, passage_chars, p_mask = tokens(p_len, lp)
  question_ids, question_chars, q_mask = tokens(q_len, lq)

  def flags(mask):
    values = rng.integers(0, 2, (*mask.shape, 2))
    return np.where(mask[..., None], values, 0).astype(np.float32)

  start = rng.integers(0, p_len)
  end = np.minimum(start + rng.integers(0, 4, len(p_len)), p_len - 1)
  return {
    "question_ids": question_ids,
    "passage_ids": passage_ids,
    "question_chars": question_chars,
    "passage_chars": passage_chars,
    "question_em": flags(q_mask),
    "passage_em": flags(p_mask),
    "question_len": q_len,
    "passage_len": p_len,
    "start": start.astype(np.int32),
    "end": end.astype(np.int32),
  }


def padded_shape(batch) -> tuple[int, int, int]:
  """`(batch, passage, question)` sizes of a batch dict."""
  return (*batch["passage_ids"].shape, batch["question_ids"].shape[1])


def _with_runtime(config, **runtime):
  return dataclasses.replace(
    config, runtime=dataclasses.replace(config.runtime, **runtime)
  )


def _tensors(batch):
  import tensorflow as tf

  return {k: tf.constant(v) for k, v in batch.items()}


def _embedding(config, rng):
  import numpy as np

  return rng.normal(0, 0.1, (WORDS, config.model.word_dim)).astype(np.float32)


def check_cudnn_graph(config, matrix, batch) -> dict:
  """Traces the reader's train step; which kernels its graph holds."""
  import tensorflow as tf

  from a2d_tf import training

  model = training.build_model(
    training.CE, config, WORDS, CHARS, embedding_matrix=matrix
  )
  model.optimizer.build(model.trainable_variables)
  specs = {
    k: tf.TensorSpec((None,) * v.ndim, tf.as_dtype(v.dtype))
    for k, v in batch.items()
  }
  specs["passage_chars"] = tf.TensorSpec(
    (None, None, batch["passage_chars"].shape[-1]), tf.int32
  )
  specs["question_chars"] = tf.TensorSpec(
    (None, None, batch["question_chars"].shape[-1]), tf.int32
  )
  concrete = tf.function(model.train_step).get_concrete_function(specs)
  ops = graph_op_types(concrete)
  return {
    "value": "CudnnRNNV3" in ops,
    "graph": {
      "cudnn_ops": ops.count("CudnnRNNV3"),
      "cudnn_backprop_ops": ops.count("CudnnRNNBackpropV3"),
      "assert_ops": ops.count("Assert"),
      "while_loops": ops.count("While") + ops.count("StatelessWhile"),
      "top_level_ops": len(concrete.graph.get_operations()),
      "use_cudnn": model.use_cudnn,
    },
  }


def graph_op_types(concrete_function) -> list[str]:
  """Op types of a traced function, nested functions (loops) included."""
  graph_def = concrete_function.graph.as_graph_def()
  types = [node.op for node in graph_def.node]
  for function in graph_def.library.function:
    types.extend(node.op for node in function.node_def)
  return types


def compare_cudnn_with_loop(config, matrix, batch) -> dict:
  """cuDNN vs while-loop kernels, same weights, a batch with an empty row."""
  import keras
  import numpy as np
  import tensorflow as tf

  from a2d_tf.models.reader import build_reader

  batch = {k: v.copy() for k, v in batch.items()}
  for key in ("passage_len", "question_len", "start", "end"):
    batch[key][-1] = 0  # an empty row, as an uneven replica split leaves
  x = _tensors(batch)
  readers = {}
  for use_cudnn in (True, False):
    keras.utils.set_random_seed(3)
    readers[use_cudnn] = build_reader(
      config.model, WORDS, CHARS, matrix, use_cudnn=use_cudnn
    )
  readers[True].set_weights(readers[False].get_weights())

  def run(model):
    with tf.GradientTape() as tape:
      out = model(x, training=False)
      loss = model.compute_loss(x=x, y_pred=out)
    grads = tape.gradient(loss, model.trainable_variables)
    return out, loss, [tf.convert_to_tensor(g).numpy() for g in grads]

  (cudnn, cudnn_loss, cudnn_grads), (loop, loop_loss, loop_grads) = (
    run(readers[True]),
    run(readers[False]),
  )
  p_mask = (
    np.arange(batch["passage_ids"].shape[1]) < batch["passage_len"][:, None]
  )
  q_mask = (
    np.arange(batch["question_ids"].shape[1]) < batch["question_len"][:, None]
  )

  def diff(key, mask):
    a, b = np.asarray(cudnn[key]), np.asarray(loop[key])
    return float(np.max(np.abs(np.where(mask, a - b, 0.0)), initial=0.0))

  att_mask = p_mask[:, None, :, None] & q_mask[:, None, None, :]
  return {
    "start_logits": diff("start_logits", p_mask),
    "end_logits": diff("end_logits", p_mask),
    "attention": diff("attention", att_mask),
    "loss": abs(float(cudnn_loss) - float(loop_loss)),
    "gradients": max(
      float(np.max(np.abs(a - b)))
      for a, b in zip(cudnn_grads, loop_grads, strict=True)
    ),
    "largest_gradient": max(float(np.max(np.abs(g))) for g in loop_grads),
    "finite": bool(
      np.all(np.isfinite(cudnn["start_logits"]))
      and all(np.all(np.isfinite(g)) for g in cudnn_grads)
    ),
  }


def train_pass(model, batches, counts: dict) -> list[float]:
  """One pass of `train_on_batch`; the seconds of each step.

  Each step ends when its loss is on the host. `counts` accumulates
  `steps` and `nonfinite_losses`.
  """
  import numpy as np

  seconds = []
  for batch in batches:
    began = time.perf_counter()
    logs = model.train_on_batch(batch, return_dict=True)
    loss = float(logs["loss"])
    seconds.append(time.perf_counter() - began)
    counts["steps"] = counts.get("steps", 0) + 1
    counts["nonfinite_losses"] = counts.get("nonfinite_losses", 0) + (
      not np.isfinite(loss)
    )
  return seconds


def compile_stats(shapes, first, second) -> dict:
  """Programs and compile seconds from two passes over the same batches.

  A new shape's first step compiles its program: its extra time over the
  same batch's step in the second pass is the compile time.
  """
  seen, compile_s = set(), 0.0
  for shape, a, b in zip(shapes, first, second, strict=True):
    if shape not in seen:
      seen.add(shape)
      compile_s += max(0.0, a - b)
  return {"programs": len(seen), "compile_s": compile_s}


def measure_setting(
  config, matrix, timing, precision, xla, det, study=None
) -> dict:
  """Training examples/s of one setting over the `timing` batches.

  A warm-up pass (tracing; XLA compiles each new shape) precedes the timed
  pass. With `study` (`(batches, shapes)`), the warm-up is two passes over
  those batches instead, whose compile figures are returned too.

  Returns:
    `examples_per_s`, and `compiles` (with `study`) and `float16` (under a
    loss-scale optimizer) where they apply; or `{"skipped": why}` for a
    setting the config rejects.
  """
  import keras
  import numpy as np

  from a2d_tf import config as config_lib
  from a2d_tf import training

  config = _with_runtime(
    config,
    mixed_precision="" if precision == "float32" else precision,
    jit_compile=xla,
    deterministic=det,
  )
  problems = config_lib.validate(config)
  if problems:
    return {"skipped": problems[0]}
  keras.utils.set_random_seed(1)
  model = training.build_model(
    training.CE, config, WORDS, CHARS, embedding_matrix=matrix
  )
  counts: dict = {}
  iterations = int(model.optimizer.iterations)
  out = {}
  timing = [_tensors(b) for b in timing]
  if study is not None:
    batches, shapes = study
    batches = [_tensors(b) for b in batches]
    first = train_pass(model, batches, counts)
    second = train_pass(model, batches, counts)
    out["compiles"] = compile_stats(shapes, first, second)
  else:
    train_pass(model, timing, counts)
  seconds = sum(train_pass(model, timing, counts))
  out["examples_per_s"] = (
    sum(int(b["passage_len"].shape[0]) for b in timing) / seconds
  )
  scale = getattr(model.optimizer, "dynamic_scale", None)
  if scale is not None:
    applied = int(model.optimizer.iterations) - iterations
    out["float16"] = {
      **counts,
      "skipped_steps": counts["steps"] - applied,
      "loss_scale": float(np.asarray(scale)),
    }
  return out


def peak_memory(config, matrix, rng) -> dict:
  """Peak GPU memory of one float32 step at passage 400, batch 32."""
  import keras
  import numpy as np
  import tensorflow as tf

  from a2d_tf import training

  keras.utils.set_random_seed(1)
  model = training.build_model(
    training.CE, config, WORDS, CHARS, embedding_matrix=matrix
  )
  lp, lq = config.data.max_passage_len, config.data.max_question_len
  batch = _random_batch(
    rng,
    np.full(32, lp, np.int32),
    np.full(32, lq, np.int32),
    lp,
    lq,
    config.data.max_word_len,
  )
  tf.config.experimental.reset_memory_stats("GPU:0")
  model.train_on_batch(_tensors(batch))
  info = tf.config.experimental.get_memory_info("GPU:0")
  return {
    "peak_gib": info["peak"] / 2**30,
    "passage_len": lp,
    "question_len": lq,
    "batch_size": 32,
  }


def inference_time(config, matrix, batches, ensemble_size) -> dict:
  """Ensemble of K readers vs one student, forward seconds."""
  import keras

  from a2d_tf import inference
  from a2d_tf.models.reader import build_reader

  readers = []
  for k in range(ensemble_size):
    keras.utils.set_random_seed(10 + k)
    readers.append(build_reader(config.model, WORDS, CHARS, matrix))
  inputs = [_tensors(b) for b in batches]
  # The student has a teacher's architecture: one member stands in for it
  # (its traced forward pass is shared).
  seconds = inference.time_forward(
    {"ensemble": readers, "student": readers[:1]},
    inputs,
    repeats=2,
    cache=inference.PredictFnCache(),
  )
  examples = sum(len(b["passage_len"]) for b in batches)
  return {
    "ensemble_size": ensemble_size,
    "examples": examples,
    "ensemble_s": seconds["ensemble"],
    "student_s": seconds["student"],
    "speedup": seconds["ensemble"] / seconds["student"],
    "student_examples_per_s": examples / seconds["student"],
    "dev_ensemble_s": seconds["ensemble"] * SQUAD_DEV / examples,
    "dev_student_s": seconds["student"] * SQUAD_DEV / examples,
  }


def pipeline_estimate(
  config,
  train_per_s: float,
  forward_per_s: float,
  timing_repeats: int = TIMING_REPEATS,
) -> dict:
  """Hours of the full pipeline from training and forward examples/s.

  Work, in examples, on full SQuAD v1.1 (87,599 train, 10,570 dev
  questions) with K teachers, E epochs and a validation split of
  `data.validation_fraction` of the training questions (at least that
  share; whole articles are held out): K teachers train E epochs on the
  rest and score the validation split after each; the knowledge step runs
  every teacher over the training and validation splits; the student trains
  E epochs (A2D steps cost `A2D_STEP_COST` CE steps) with a validation
  score and a validation loss pass per epoch; evaluation runs every teacher
  (one pass serves the single teachers and the ensemble) and the student
  over dev, and times a single teacher, the ensemble and the student over
  dev `timing_repeats` times. Fixed costs (tracing, XLA compiles, Beam
  start-up, file I/O) are left out.
  """
  k, epochs = config.teacher.num_teachers, config.train.epochs
  validation = math.ceil(config.data.validation_fraction * SQUAD_TRAIN)
  fit = SQUAD_TRAIN - validation
  train = k * epochs * fit + A2D_STEP_COST * epochs * fit
  forward = (
    k * epochs * validation  # teachers' per-epoch validation scores
    + k * SQUAD_TRAIN  # knowledge over the training and validation splits
    + 2 * epochs * validation  # student validation score and loss
    + (k + 1) * SQUAD_DEV  # evaluation
    + timing_repeats * (1 + k + 1) * SQUAD_DEV  # the speedup's timing
  )
  hours = (train / train_per_s + forward / forward_per_s) / 3600
  return {
    "hours": hours,
    "train_examples": int(train),
    "forward_examples": int(forward),
    "train_examples_per_s": train_per_s,
    "forward_examples_per_s": forward_per_s,
  }


def device_name(gpu: bool) -> str:
  import tensorflow as tf

  if not gpu:
    return f"CPU ({os.cpu_count()} cores)"
  details = tf.config.experimental.get_device_details(
    tf.config.list_physical_devices("GPU")[0]
  )
  return details.get("device_name", "GPU") + (
    f" (compute capability {details['compute_capability']})"
    if "compute_capability" in details
    else ""
  )


def run(plan: Plan, deadline: Deadline, seed: int) -> dict:
  """Every section of the plan; the result dict (see module docstring)."""
  import numpy as np
  import tensorflow as tf

  from a2d_tf import config as config_lib
  from a2d_tf.data import dataset as dataset_lib

  rng = np.random.default_rng(seed)
  config = config_lib.get_config(plan.preset, plan.overrides)
  matrix = _embedding(config, rng)
  grid = dataset_lib.length_grid(_with_runtime(config, pad_to_bucket=True))
  batches, unpadded = make_batches(
    config, plan, rng, plan.compile_batches, grid
  )
  shapes = [padded_shape(b) for b in batches]
  # The timing set: batches of the most common padded shape, so every
  # setting times the same batches, traces its step once and compiles one
  # XLA program for them.
  common_shape = max(set(shapes), key=shapes.count)
  timing, timing_unpadded = make_batches(
    config, plan, rng, plan.timing_batches, grid, shape=common_shape
  )
  # The compile count: over the compile batches (full), or over the
  # timing batches (reduced: one program, to keep it short).
  study = (
    (batches, shapes, unpadded)
    if plan.full
    else (timing, [common_shape] * len(timing), timing_unpadded)
  )
  result: dict = {
    "device": device_name(plan.gpu),
    "gpu": plan.gpu,
    "mode": "full" if plan.full else "reduced",
    "note": (
      "measured on a GPU"
      if plan.gpu
      else "not a GPU figure: a CPU run"
      + ("" if plan.full else " of the reduced check (tiny model)")
    ),
    "preset": plan.preset,
    "batch_size": plan.batch_size,
    "timing_batches": len(timing),
    "timing_shape": common_shape,
    "length_grid": {"passage": grid.passage, "question": grid.question},
  }

  section_s: dict[str, float] = {}

  def section(name, fn, needs_gpu=False, label=None):
    if needs_gpu and not plan.gpu:
      result[name] = {"skipped": NO_GPU}
    elif deadline.passed():
      result[name] = {"skipped": BUDGET}
    else:
      began = time.perf_counter()
      try:
        result[name] = fn()
      except Exception as e:  # noqa: BLE001 - recorded, the check goes on
        result[name] = {"error": f"{type(e).__name__}: {e}"[:500]}
      section_s[label or name] = time.perf_counter() - began
    return result[name]

  graph = section(
    "cudnn_graph", lambda: check_cudnn_graph(config, matrix, timing[0])
  )
  result["cudnn_in_graph"] = bool(graph.get("value", False))
  result["cudnn_graph"] = graph.get("graph", graph)
  section(
    "cudnn_vs_loop",
    lambda: compare_cudnn_with_loop(config, matrix, timing[0]),
    needs_gpu=True,
  )

  speeds, float16 = {}, {}
  # The compile count runs with the first XLA setting asked for (float32
  # in full mode).
  study_setting = next(
    (n for n in plan.settings if "/xla=on/" in n and "/det=off" in n), None
  )
  result["xla_compiles"] = {"skipped": "not asked"}

  def measure(precision, xla, det):
    name = setting_name(precision, xla, det)
    if name not in plan.settings:
      speeds[name] = {"skipped": "not asked" if plan.full else REDUCED}
      return
    measured = section(
      "setting",
      lambda: measure_setting(
        config,
        matrix,
        timing,
        precision,
        xla,
        det,
        study[:2] if name == study_setting else None,
      ),
      label=name,
    )
    del result["setting"]
    speeds[name] = measured.pop("examples_per_s", measured)
    if "float16" in measured:
      float16[name] = measured["float16"]
    if "compiles" in measured:
      result["xla_compiles"] = {
        "setting": name,
        "batches": len(study[0]),
        **measured["compiles"],
        "max_programs": grid.max_batch_shapes,
        "unpadded_shapes": len(set(study[2])),
      }

  settings = all_settings()
  for precision, xla, det in settings:
    if not det:
      measure(precision, xla, det)
  result["examples_per_s"] = speeds
  result["float16"] = float16 or {"skipped": "no mixed_float16 setting"}
  section("peak_memory", lambda: peak_memory(config, matrix, rng), True)
  inference_batches, _ = make_batches(
    config, plan, rng, plan.timing_batches, grid
  )
  section(
    "inference",
    lambda: inference_time(
      config, matrix, inference_batches, plan.ensemble_size
    ),
  )
  # Op determinism is process-wide and cannot be turned off: last.
  if any(setting_name(*s) in plan.settings for s in settings if s[2]):
    tf.config.experimental.enable_op_determinism()
  for precision, xla, det in settings:
    if det:
      measure(precision, xla, det)
  baseline = speeds.get(setting_name("float32", False, False))
  forward = result["inference"].get("student_examples_per_s")
  if not plan.full:
    result["pipeline_estimate"] = {"skipped": REDUCED}
  elif isinstance(baseline, float) and forward:
    result["pipeline_estimate"] = {
      "setting": setting_name("float32", False, False),
      **pipeline_estimate(config, baseline, forward),
    }
  else:
    result["pipeline_estimate"] = {
      "skipped": "no float32 and inference figures"
    }
  result["section_s"] = section_s
  result["seconds"] = deadline.budget_s - deadline.left()
  return result


_KEYS = ("device", "cudnn_in_graph", "examples_per_s", "xla_compiles")


def main(argv: list[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  import tensorflow as tf

  deadline = Deadline(_BUDGET_S.value)
  plan = make_plan(
    bool(tf.config.list_physical_devices("GPU")),
    _MODE.value,
    _PRESET.value,
    tuple(_SETTINGS.value),
    _TIMING_BATCHES.value,
    _COMPILE_BATCHES.value,
    _ENSEMBLE_SIZE.value,
  )
  result = run(plan, deadline, _SEED.value)
  common.report(
    common.context(
      plan.preset,
      mode=result["mode"],
      batch_size=plan.batch_size,
      budget_s=_BUDGET_S.value,
      seed=_SEED.value,
    ),
    result,
  )


if __name__ == "__main__":
  app.run(main)
