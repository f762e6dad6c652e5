"""The evaluation report: single teacher / ensemble / student on every set.

`report.json` and `report.md` have the shape of the paper's Tables 1, 2 and
4: EM/F1 of the single model (teacher 0, the baseline), the K-teacher
ensemble and the A2D student on dev and on every extra evaluation set
(worst case over adversarial variants where a set has them), parameter
counts, and the inference wall time of ensemble and student over the same
examples with the speedup.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import keras
import tensorflow as tf

from a2d_tf import inference
from a2d_tf.data.records import Record
from a2d_tf.metrics import adversarial
from a2d_tf.metrics import squad as squad_metrics

SYSTEMS = ("single", "ensemble", "student")


def is_adversarial(squad_data: list) -> bool:
  """True when some question is an adversarial variant of another."""
  ids = [q.id for q in squad_metrics.iter_questions(squad_data)]
  groups = adversarial.group_by_original(ids)
  return any(len(members) > 1 for members in groups.values())


def score(squad_data: list, predictions: Mapping[str, str]) -> dict[str, Any]:
  """EM/F1 in percent; the worst case over variants for adversarial sets."""
  if is_adversarial(squad_data):
    result = adversarial.evaluate_adversarial(squad_data, predictions)
    result["worst_case"] = True
    return result
  result = squad_metrics.evaluate(squad_data, predictions)
  result["worst_case"] = False
  return result


def evaluate_systems(
  systems: Mapping[str, Sequence[keras.Model]],
  dataset: tf.data.Dataset,
  records: Mapping[str, Record],
  squad_data: list,
  max_answer_len: int,
  cache: inference.PredictFnCache | None = None,
) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, str]]]:
  """Scores each system (a list of models, averaged) on one set.

  `cache` shares each model's traced forward pass between systems (teacher
  0 is the single system and an ensemble member) and between calls.

  Returns:
    Scores by system, and the official-format predictions by system.
  """
  scores, predictions = {}, {}
  for name, models in systems.items():
    decoded, _ = inference.predict(
      models, dataset, records, max_answer_len, cache
    )
    predictions[name] = inference.predictions_to_json(decoded)
    scores[name] = score(squad_data, predictions[name])
  return scores, predictions


def render_markdown(report: Mapping[str, Any]) -> str:
  """The report as Markdown tables."""
  sets = list(report["sets"])
  lines = ["# a2d report", ""]
  header = "| system | " + " | ".join(f"{s} EM | {s} F1" for s in sets)
  lines += [header + " |", "|---" * (1 + 2 * len(sets)) + "|"]
  for system in SYSTEMS:
    cells = []
    for name in sets:
      result = report["sets"][name][system]
      cells += [f"{result['exact_match']:.1f}", f"{result['f1']:.1f}"]
    label = system
    if system == "ensemble":
      label = f"ensemble (K={report['inference']['k']})"
    lines.append(f"| {label} | " + " | ".join(cells) + " |")
  worst = [s for s in sets if report["sets"][s]["student"].get("worst_case")]
  if worst:
    lines += [
      "",
      f"Adversarial sets ({', '.join(worst)}): per original question the "
      "worst score over the original and all its adversarial variants.",
    ]
  timing = report["inference"]
  params = report["parameters"]
  k = timing["k"]
  rows = [
    ("single teacher", f"{params['teacher']:,}", "single_s"),
    (f"ensemble (K={k})", f"{params['teacher']:,} x {k}", "ensemble_s"),
    ("student", f"{params['student']:,}", "student_s"),
  ]
  if "speedup" in timing:
    lines += ["", "| | parameters (trainable) | inference time (s) |"]
    lines.append("|---|---|---|")
    lines += [f"| {a} | {b} | {timing[c]:.3f} |" for a, b, c in rows]
    footer = (
      f"Student speedup over the ensemble: **{timing['speedup']:.2f}x** "
      f"({timing['examples']} examples, {timing['repeats']} passes)."
    )
  else:
    lines += ["", "| | parameters (trainable) |", "|---|---|"]
    lines += [f"| {a} | {b} |" for a, b, _ in rows]
    footer = "Inference not timed (timing_repeats=0)."
  lines += ["", footer, ""]
  return "\n".join(lines)
