"""Batch inference with one reader or an ensemble of readers.

The ensemble output is the arithmetic mean of the members' probabilities
(`ensemble.ensemble_probs` at temperature 1), never a mean of logits.
Every prediction goes through the one span decoder of `a2d_tf.decoding`.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf

from a2d_tf import decoding, ensemble, masking
from a2d_tf.data.records import Record
from a2d_tf.metrics import squad as squad_metrics
from a2d_tf.models import reader as reader_lib


def make_predict_fn(model: keras.Model, jit_compile: bool = False):
  """A compiled forward pass returning float32 outputs (inference mode).

  Traced once for every batch and length (dynamic-shape signature); takes
  a full batch dict and passes the model inputs only.
  """

  @tf.function(
    input_signature=[reader_lib.input_specs()], jit_compile=jit_compile
  )
  def forward(inputs):
    return model(inputs, training=False)

  return lambda batch: forward(reader_lib.model_inputs(batch))


class PredictFnCache:
  """One `make_predict_fn` per model, shared by every pass that asks.

  Tracing a reader's forward pass costs about as much as a pass over a
  small dev set on a CPU; scoring the single teacher, the ensemble and the
  student on several sets and then timing them asks for the same models
  again and again. Call the cache with a model to get its function; the
  cache holds the models it has seen, so keep it only as long as them.
  """

  def __init__(self, jit_compile: bool = False):
    self._jit_compile = jit_compile
    self._fns: dict[int, tuple[keras.Model, object]] = {}

  def __call__(self, model: keras.Model):
    entry = self._fns.get(id(model))
    if entry is None or entry[0] is not model:
      entry = (model, make_predict_fn(model, self._jit_compile))
      self._fns[id(model)] = entry
    return entry[1]

  def __len__(self) -> int:
    return len(self._fns)


@dataclasses.dataclass
class Prediction:
  """A decoded answer.

  Attributes:
    text: Answer text, a substring of the context.
    start_char: Code-point offset of its first character.
    end_char: Code-point offset just past its last character.
    score: p_start * p_end of the span.
  """

  text: str
  start_char: int
  end_char: int
  score: float


def predict(
  models: Sequence[keras.Model],
  dataset: tf.data.Dataset,
  records: dict[str, Record],
  max_answer_len: int,
  cache: PredictFnCache | None = None,
) -> tuple[dict[str, Prediction], float]:
  """Answers every example of `dataset` with one model or an ensemble.

  Args:
    models: One reader, or the K members of an ensemble.
    dataset: Batches made with `with_metadata=True` (ids and char offsets).
    records: The raw records by id (for the context text).
    max_answer_len: Longest span in tokens.
    cache: Traced forward passes to reuse (and fill); None traces anew.

  Returns:
    Predictions by id, and the seconds spent in the models' forward passes
    (the inference wall time compared between ensemble and student).
  """
  make = make_predict_fn if cache is None else cache
  return _predict_with(
    [make(m) for m in models], dataset, records, max_answer_len
  )


def _predict_with(
  predict_fns: Sequence,
  dataset: tf.data.Dataset,
  records: dict[str, Record],
  max_answer_len: int,
) -> tuple[dict[str, Prediction], float]:
  """`predict` with already made `make_predict_fn` functions."""
  predictions = {}
  model_seconds = 0.0
  for batch in dataset:
    began = time.perf_counter()
    outputs = [fn(batch) for fn in predict_fns]
    mask = masking.sequence_mask(
      batch["passage_len"], tf.shape(outputs[0]["start_logits"])[1]
    )
    start_probs = ensemble.ensemble_probs(
      [o["start_logits"] for o in outputs], mask, 1.0
    )
    end_probs = ensemble.ensemble_probs(
      [o["end_logits"] for o in outputs], mask, 1.0
    )
    start_probs = start_probs.numpy()
    model_seconds += time.perf_counter() - began
    end_probs = end_probs.numpy()
    predictions.update(
      _decode_batch(batch, records, start_probs, end_probs, max_answer_len)
    )
  return predictions, model_seconds


def predict_members(
  models: Sequence[keras.Model],
  dataset: tf.data.Dataset,
  records: dict[str, Record],
  max_answer_len: int,
  cache: PredictFnCache | None = None,
  diagnostics=None,
  temperature: float = 1.0,
) -> tuple[list[dict[str, Prediction]], dict[str, Prediction]]:
  """Answers with every member of an ensemble and with the ensemble.

  One forward pass per member and batch serves both: each member's answer
  is decoded from its own probabilities, the ensemble's from their mean
  (as `predict` with all the members does).

  Args:
    models: The K members.
    dataset: Batches made with `with_metadata=True`.
    records: The raw records by id.
    max_answer_len: Longest span in tokens.
    cache: Traced forward passes to reuse (and fill).
    diagnostics: Optional `diagnostics.KnowledgeDiagnostics(K)`, fed with
      every example: the members' and the ensemble's answers, the gold
      answers, and the ensemble's soft distributions at `temperature`.
    temperature: tau of the soft distributions given to `diagnostics`.

  Returns:
    One prediction dict per member, and the ensemble's.
  """
  make = make_predict_fn if cache is None else cache
  predict_fns = [make(m) for m in models]
  members: list[dict[str, Prediction]] = [{} for _ in models]
  combined: dict[str, Prediction] = {}
  for batch in dataset:
    outputs = [fn(batch) for fn in predict_fns]
    mask = masking.sequence_mask(
      batch["passage_len"], tf.shape(outputs[0]["start_logits"])[1]
    )
    starts = [o["start_logits"] for o in outputs]
    ends = [o["end_logits"] for o in outputs]
    member_probs = [
      (
        masking.masked_softmax(s, mask).numpy(),
        masking.masked_softmax(e, mask).numpy(),
      )
      for s, e in zip(starts, ends, strict=True)
    ]
    mean_start = ensemble.ensemble_probs(starts, mask, 1.0).numpy()
    mean_end = ensemble.ensemble_probs(ends, mask, 1.0).numpy()
    decoded = [
      _decode_batch(batch, records, start, end, max_answer_len)
      for start, end in [*member_probs, (mean_start, mean_end)]
    ]
    for member, answers in zip(members, decoded[:-1], strict=True):
      member.update(answers)
    combined.update(decoded[-1])
    if diagnostics is not None:
      soft_start = ensemble.ensemble_probs(starts, mask, temperature).numpy()
      soft_end = ensemble.ensemble_probs(ends, mask, temperature).numpy()
      lengths = batch["passage_len"].numpy()
      for row, example_id in enumerate(decoded[-1]):
        n = lengths[row]
        diagnostics.add(
          [answers[example_id].text for answers in decoded[:-1]],
          decoded[-1][example_id].text,
          [a.text for a in records[example_id].answers],
          soft_start[row, :n],
          soft_end[row, :n],
          int(batch["start"][row]),
          int(batch["end"][row]),
        )
  return members, combined


def _decode_batch(
  batch: dict[str, tf.Tensor],
  records: dict[str, Record],
  start_probs: np.ndarray,
  end_probs: np.ndarray,
  max_answer_len: int,
) -> dict[str, Prediction]:
  """The best span of every example of a batch, as `Prediction`s by id."""
  lengths = batch["passage_len"].numpy()
  spans, scores = decoding.best_spans(
    start_probs, end_probs, lengths, max_answer_len
  )
  ids = [i.decode("utf-8") for i in batch["id"].numpy()]
  starts = batch["passage_char_starts"].numpy()
  ends = batch["passage_char_ends"].numpy()
  predictions = {}
  for row, example_id in enumerate(ids):
    n = lengths[row]
    text, start_char, end_char = decoding.span_text(
      records[example_id].context,
      starts[row, :n],
      ends[row, :n],
      spans[row, 0],
      spans[row, 1],
    )
    predictions[example_id] = Prediction(
      text, start_char, end_char, float(scores[row])
    )
  return predictions


def time_forward(
  systems: dict[str, Sequence[keras.Model]],
  batches: Sequence[dict[str, tf.Tensor]],
  repeats: int = 3,
  cache: PredictFnCache | None = None,
) -> dict[str, float]:
  """Seconds of one forward pass over `batches`, per system.

  Every system is traced on every batch shape before timing starts, so the
  figures measure steady-state inference, not tracing. The systems are
  timed in turn within each repeat (so a slow spell of the machine hits all
  of them alike) and each keeps its fastest pass.

  Args:
    systems: Name -> models whose forward passes make one prediction (one
      reader, or the K members of an ensemble).
    batches: The same input batches for every system.
    repeats: Timed passes per system.
    cache: Traced forward passes to reuse (and fill); None traces anew.

  Returns:
    Name -> seconds of the fastest pass.
  """
  make = make_predict_fn if cache is None else cache
  fns = {name: [make(m) for m in ms] for name, ms in systems.items()}

  def one_pass(predict_fns) -> float:
    began = time.perf_counter()
    for batch in batches:
      for result in [fn(batch) for fn in predict_fns]:
        result["start_logits"].numpy()
    return time.perf_counter() - began

  for predict_fns in fns.values():
    one_pass(predict_fns)
  best = {name: float("inf") for name in fns}
  for _ in range(repeats):
    for name, predict_fns in fns.items():
      best[name] = min(best[name], one_pass(predict_fns))
  return best


def predictions_to_json(predictions: dict[str, Prediction]) -> dict[str, str]:
  """The official prediction-file format: id -> answer text."""
  return {k: p.text for k, p in sorted(predictions.items())}


def evaluate_predictions(
  squad_data: list, predictions: dict[str, Prediction]
) -> dict[str, float]:
  """Official SQuAD EM/F1 (percent) of decoded predictions."""
  return squad_metrics.evaluate(squad_data, predictions_to_json(predictions))


def make_dev_eval_fn(
  dataset: tf.data.Dataset,
  records: dict[str, Record],
  squad_data: list,
  max_answer_len: int,
  jit_compile: bool = False,
):
  """`model -> {"exact_match", "f1"}` on a dev set, for per-epoch logging.

  The forward pass is a compiled `tf.function` (`make_predict_fn`; XLA with
  `jit_compile`, for a model built without cuDNN kernels and a dataset
  padded onto a length grid). The pass of the model last evaluated is kept,
  so evaluating the same model after every epoch traces it once, not once
  per epoch (about as long as a pass over a small dev set on a CPU).
  """
  last: dict[str, object] = {}

  def eval_fn(model: keras.Model) -> dict[str, float]:
    if last.get("model") is not model:
      last.update(model=model, predict_fn=make_predict_fn(model, jit_compile))
    predictions, _ = _predict_with(
      [last["predict_fn"]], dataset, records, max_answer_len
    )
    return evaluate_predictions(squad_data, predictions)

  return eval_fn
