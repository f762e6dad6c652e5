"""The gate in front of the push: is the student good enough, and can it serve?

As TFX's Evaluator blesses a model that meets its thresholds and its
InfraValidator blesses one that loads and answers in a model server, the
pipeline's `validate_model` step writes a blessing with two halves, and
`push` publishes the serving model only when both are positive:

* `model`: the student against the single teachers' mean and the ensemble
  on every reported evaluation set (`model_blessing`, from the evaluation's
  `report.json`): student F1 minus single-mean F1 at least
  `export.min_f1_vs_single`, and student F1 minus ensemble F1 at least
  `export.min_f1_vs_ensemble`. Each criterion records its figures, its
  paired bootstrap interval (from the report) and whether it passed.
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

  Args:
    report: The evaluation's `report.json` (`report.score_set` per set).
    min_f1_vs_single: Least student F1 minus single-mean F1, in points.
    min_f1_vs_ensemble: Least student F1 minus ensemble F1, in points.

  Returns:
    `{"blessed", "reason", "thresholds", "criteria"}`; `criteria` has one
    entry per set and criterion: `set`, `criterion`, `student_f1`,
    `reference_f1`, `difference`, `threshold`, `interval` (the paired
    bootstrap interval of the difference, or None), `passed`. A set
    without F1 scores is listed with `passed` None and does not count.
  """
  thresholds = {
    "min_f1_vs_single": float(min_f1_vs_single),
    "min_f1_vs_ensemble": float(min_f1_vs_ensemble),
  }
  criteria = []
  for name, result in report.get("sets", {}).items():
    for criterion, system, threshold_name, _ in CRITERIA:
      student = result.get("student", {}).get("f1")
      reference = result.get(system, {}).get("f1")
      entry = {
        "set": name,
        "criterion": criterion,
        "threshold": thresholds[threshold_name],
        "student_f1": student,
        "reference_f1": reference,
        "difference": None,
        "interval": None,
        "passed": None,
      }
      if student is not None and reference is not None:
        difference = student - reference
        interval = result.get("intervals", {}).get(criterion, {}).get("f1")
        entry.update(
          difference=difference,
          interval=list(interval) if interval is not None else None,
          passed=difference >= thresholds[threshold_name],
        )
      criteria.append(entry)
  judged = [c for c in criteria if c["passed"] is not None]
  failed = [c for c in judged if not c["passed"]]
  if not judged:
    reason = "no evaluation set has student and reference F1 scores"
  elif failed:
    reason = "; ".join(_criterion_text(c) for c in failed)
  else:
    sets = sorted({c["set"] for c in judged})
    reason = (
      f"student F1 - single mean >= {thresholds['min_f1_vs_single']:g} and "
      f"student F1 - ensemble >= {thresholds['min_f1_vs_ensemble']:g} on "
      f"{', '.join(sets)}"
    )
  return {
    "blessed": bool(judged) and not failed,
    "reason": reason,
    "thresholds": thresholds,
    "criteria": criteria,
  }


def _label(criterion: str) -> str:
  return {c: label for c, _, _, label in CRITERIA}[criterion]


def _criterion_text(entry: Mapping[str, Any]) -> str:
  relation = ">=" if entry["passed"] else "<"
  return (
    f"{entry['set']}: student F1 - {_label(entry['criterion'])} = "
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
    f"Model ({'blessed' if model['blessed'] else 'not blessed'}), F1 "
    "points, with the paired bootstrap interval of each difference:",
    "",
    "| set | criterion | student F1 | reference F1 | difference | "
    "interval | threshold | passed |",
    "|---|---|---|---|---|---|---|---|",
  ]
  for c in model["criteria"]:
    if c["passed"] is None:
      lines.append(
        f"| {c['set']} | student - {_label(c['criterion'])} | n/a | n/a | "
        f"n/a | n/a | >= {c['threshold']:g} | no F1 on this set |"
      )
      continue
    interval = (
      f"[{c['interval'][0]:+.1f}, {c['interval'][1]:+.1f}]"
      if c["interval"]
      else "n/a"
    )
    lines.append(
      f"| {c['set']} | student - {_label(c['criterion'])} | "
      f"{c['student_f1']:.1f} | {c['reference_f1']:.1f} | "
      f"{c['difference']:+.1f} | {interval} | >= {c['threshold']:g} | "
      f"{'yes' if c['passed'] else '**no**'} |"
    )
  lines += [
    "",
    f"Infra ({'blessed' if infra['blessed'] else 'not blessed'}): "
    f"{infra['reason']}.",
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
