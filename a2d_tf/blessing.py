"""The gate in front of the push: is the student good enough, and can it serve?

As TFX's Evaluator blesses a model that meets its thresholds and its
InfraValidator blesses one that loads and answers in a model server, the
pipeline's `validate_model` step writes a blessing with two halves, and
`push` publishes the serving model only when both are positive:

* `model`: the student against the single teachers' mean and the ensemble
  on every reported evaluation set (`model_blessing`, from the evaluation's
  `report.json`), on the set's primary metric (F1 on SQuAD-style sets,
  ROUGE-L on NarrativeQA): student minus single mean at least
  `export.min_f1_vs_single` points, and student minus ensemble at least
  `export.min_f1_vs_ensemble` points. Each criterion records its metric,
  its figures, its paired bootstrap interval (from the report) and whether
  it passed.
* `infra`: the exported SavedModel loaded in a fresh process that imports
  only TensorFlow and tensorflow-text answers canary requests correctly
  (`infra_validation`).

`blessing.json` holds `{"blessed", "reason", "model", "infra"}`; `reason` is
one line saying why (every failed criterion, or what was checked).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

from a2d_tf import report as report_lib

BLESSING_FILE = "blessing.json"
# (criterion, the report's system it compares with, its threshold's name,
# how the Markdown names it)
CRITERIA = (
  ("student_minus_single", "single", "min_f1_vs_single", "single mean"),
  ("student_minus_ensemble", "ensemble", "min_f1_vs_ensemble", "ensemble"),
)


def model_blessing(
  report: Mapping[str, Any],
  min_f1_vs_single: float,
  min_f1_vs_ensemble: float,
) -> dict[str, Any]:
  """Whether the student meets the thresholds on every evaluation set.

  Each set is judged on its `primary` metric (`report.score_set`: "f1" for
  SQuAD-style sets, "rouge_l" for NarrativeQA; "f1" when a set names
  none), so a NarrativeQA run is blessed or not on ROUGE-L points.

  Args:
    report: The evaluation's `report.json` (`report.score_set` per set).
    min_f1_vs_single: Least student minus single-mean score, in points.
    min_f1_vs_ensemble: Least student minus ensemble score, in points.

  Returns:
    `{"blessed", "reason", "thresholds", "criteria"}`; `criteria` has one
    entry per set and criterion: `set`, `criterion`, `metric`,
    `student_score`, `reference_score`, `difference`, `threshold`,
    `interval` (the paired bootstrap interval of the difference, or None),
    `passed`. A set without the scores of its primary metric is listed with
    `passed` None and does not count.
  """
  thresholds = {
    "min_f1_vs_single": float(min_f1_vs_single),
    "min_f1_vs_ensemble": float(min_f1_vs_ensemble),
  }
  criteria = []
  for name, result in report.get("sets", {}).items():
    metric = result.get("primary", "f1")
    for criterion, system, threshold_name, _ in CRITERIA:
      student = result.get("student", {}).get(metric)
      reference = result.get(system, {}).get(metric)
      entry = {
        "set": name,
        "criterion": criterion,
        "metric": metric,
        "threshold": thresholds[threshold_name],
        "student_score": student,
        "reference_score": reference,
        "difference": None,
        "interval": None,
        "passed": None,
      }
      if student is not None and reference is not None:
        difference = student - reference
        interval = result.get("intervals", {}).get(criterion, {}).get(metric)
        entry.update(
          difference=difference,
          interval=list(interval) if interval is not None else None,
          passed=difference >= thresholds[threshold_name],
        )
      criteria.append(entry)
  judged = [c for c in criteria if c["passed"] is not None]
  failed = [c for c in judged if not c["passed"]]
  if not judged:
    reason = "no evaluation set has student and reference scores"
  elif failed:
    reason = "; ".join(_criterion_text(c) for c in failed)
  else:
    metrics = {}
    for c in judged:
      metrics.setdefault(c["metric"], set()).add(c["set"])
    reason = "; ".join(
      f"student {_metric(metric)} - single mean >= "
      f"{thresholds['min_f1_vs_single']:g} and student {_metric(metric)} - "
      f"ensemble >= {thresholds['min_f1_vs_ensemble']:g} on "
      f"{', '.join(sorted(sets))}"
      for metric, sets in sorted(metrics.items())
    )
  return {
    "blessed": bool(judged) and not failed,
    "reason": reason,
    "thresholds": thresholds,
    "criteria": criteria,
  }


def _label(criterion: str) -> str:
  return {c: label for c, _, _, label in CRITERIA}[criterion]


def _metric(metric: str) -> str:
  return report_lib.METRIC_LABELS.get(metric, metric)


def _criterion_text(entry: Mapping[str, Any]) -> str:
  relation = ">=" if entry["passed"] else "<"
  return (
    f"{entry['set']}: student {_metric(entry['metric'])} - "
    f"{_label(entry['criterion'])} = "
    f"{entry['difference']:+.1f} {relation} {entry['threshold']:g}"
  )


def combine(
  model: Mapping[str, Any], infra: Mapping[str, Any]
) -> dict[str, Any]:
  """The blessing: positive when the model and the infra check both are."""
  blessed = bool(model["blessed"]) and bool(infra["blessed"])
  if blessed:
    reason = f"model: {model['reason']}; infra: {infra['reason']}"
  else:
    parts = []
    if not model["blessed"]:
      parts.append(f"model not blessed ({model['reason']})")
    if not infra["blessed"]:
      parts.append(f"infra not blessed ({infra['reason']})")
    reason = "; ".join(parts)
  return {
    "blessed": blessed,
    "reason": reason,
    "model": dict(model),
    "infra": dict(infra),
  }


def write(directory: str, blessing: Mapping[str, Any]) -> str:
  """Writes `blessing.json` into `directory`; returns its path."""
  path = os.path.join(directory, BLESSING_FILE)
  with open(path, "w", encoding="utf-8") as f:
    json.dump(blessing, f, indent=2, sort_keys=True, ensure_ascii=False)
  return path


def read(directory: str) -> dict[str, Any]:
  """The blessing in `directory` (a Blessing artifact)."""
  with open(os.path.join(directory, BLESSING_FILE), encoding="utf-8") as f:
    return json.load(f)


def render_markdown(blessing: Mapping[str, Any]) -> str:
  """The blessing as a report section: verdict, criteria, canaries."""
  verdict = "blessed" if blessing["blessed"] else "**not blessed**"
  model, infra = blessing["model"], blessing["infra"]
  lines = [
    "## Blessing",
    "",
    f"The student is {verdict} for serving: {blessing['reason']}.",
    "",
    f"Model ({'blessed' if model['blessed'] else 'not blessed'}), points "
    "of each set's primary metric, with the paired bootstrap interval of "
    "each difference:",
    "",
    "| set | criterion | metric | student | reference | difference | "
    "interval | threshold | passed |",
    "|---|---|---|---|---|---|---|---|---|",
  ]
  for c in model["criteria"]:
    metric = _metric(c["metric"])
    if c["passed"] is None:
      lines.append(
        f"| {c['set']} | student - {_label(c['criterion'])} | {metric} | "
        f"n/a | n/a | n/a | n/a | >= {c['threshold']:g} | no {metric} "
        "scores on this set |"
      )
      continue
    interval = (
      f"[{c['interval'][0]:+.1f}, {c['interval'][1]:+.1f}]"
      if c["interval"]
      else "n/a"
    )
    lines.append(
      f"| {c['set']} | student - {_label(c['criterion'])} | {metric} | "
      f"{c['student_score']:.1f} | {c['reference_score']:.1f} | "
      f"{c['difference']:+.1f} | {interval} | >= {c['threshold']:g} | "
      f"{'yes' if c['passed'] else '**no**'} |"
    )
  lines += [
    "",
    f"Infra ({'blessed' if infra['blessed'] else 'not blessed'}): "
    f"{infra['reason']}"
    + (f" (in {infra['seconds']:g} s)." if "seconds" in infra else "."),
  ]
  canaries = infra.get("canaries") or []
  if canaries:
    lines += [
      "",
      "| canary | expected status | status | passed |",
      "|---|---|---|---|",
    ]
    for row in canaries:
      passed = "yes" if row["passed"] else f"**no**: {row['problem']}"
      lines.append(
        f"| {row['name']} | {row['expected_status']} | "
        f"{row.get('status', 'n/a')} | {passed} |"
      )
  return "\n".join(lines) + "\n"
