"""The paper's ablation table (Table 5) from per-variant evaluation reports.

`ABLATIONS` are the variants: full A2D, and the student trained without one
A2D term (−KD, −ATT, −ANS) or stage-wise instead of jointly, each a set of
config overrides. Every variant is distilled from the same teachers and
knowledge (`pipelines/ablation.py` runs them into one artifact root), so
`ablation_table` compares students only: EM/F1 on dev and every evaluation
set, from each variant's evaluation `report.json`.

Pure Python (no TensorFlow), so a CLI can check variant names first.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any


@dataclasses.dataclass(frozen=True)
class Variant:
  """One row of the ablation table.

  Attributes:
    name: Identifier used in file and run names, e.g. "no_kd".
    label: Row label as the paper writes it, e.g. "−KD".
    overrides: Config overrides (`section.field=value`) that make it.
  """

  name: str
  label: str
  overrides: tuple[str, ...]


# The paper's Table 5, full A2D first.
ABLATIONS = (
  Variant("full", "A2D", ()),
  Variant("no_kd", "−KD", ("distill.use_kd=false",)),
  Variant("no_att", "−ATT", ("distill.use_att=false",)),
  Variant("no_ans", "−ANS", ("distill.use_ans=false",)),
  Variant("stagewise", "stage-wise", ("distill.stagewise=true",)),
)


def select_variants(names: Sequence[str]) -> tuple[Variant, ...]:
  """The `ABLATIONS` named in `names` (all when empty), in table order.

  Raises:
    ValueError: A name is not a known variant.
  """
  known = {v.name: v for v in ABLATIONS}
  unknown = [n for n in names if n not in known]
  if unknown:
    raise ValueError(
      f"unknown ablation variant(s) {unknown}; choose from {sorted(known)}."
    )
  return tuple(v for v in ABLATIONS if not names or v.name in names)


def _scores(result: Mapping[str, Any]) -> dict[str, Any]:
  return {
    "exact_match": float(result["exact_match"]),
    "f1": float(result["f1"]),
    "worst_case": bool(result.get("worst_case", False)),
  }


def ablation_table(
  reports: Mapping[str, Mapping[str, Any]],
  variants: Sequence[Variant] = ABLATIONS,
  fingerprints: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
  """Builds the ablation table from each variant's evaluation report.

  Args:
    reports: Variant name -> the `report.json` of its evaluation (`sets` ->
      set name -> system -> `exact_match`, `f1`, `worst_case`).
    variants: The rows, in order; each must have a report.
    fingerprints: Optional variant name -> artifact fingerprints (teachers,
      knowledge, student) recorded beside each row, so a reader can check
      every variant learned from the same teachers.

  Returns:
    A JSON-able dict: `sets` (names, dev first), `rows` (one per variant:
    `variant`, `label`, `overrides`, `scores` set -> EM/F1 of its student,
    and `fingerprints`), and `teachers` (set -> `single` / `ensemble`
    EM/F1, taken from the first variant's report: the same teachers for
    every row).

  Raises:
    ValueError: A variant has no report, reports cover different sets, or
      the fingerprints show variants taught by different teachers or
      knowledge.
  """
  if not variants:
    raise ValueError("the ablation table needs at least one variant.")
  missing = [v.name for v in variants if v.name not in reports]
  if missing:
    raise ValueError(f"no evaluation report for variant(s) {missing}.")
  _check_same_teachers(variants, fingerprints or {})
  # Dev first, the other sets in report order (report.json sorts its keys).
  sets = sorted(reports[variants[0].name]["sets"], key=lambda s: s != "dev")
  rows = []
  for variant in variants:
    report = reports[variant.name]
    if set(report["sets"]) != set(sets):
      raise ValueError(
        f"variant {variant.name!r} was evaluated on {sorted(report['sets'])}, "
        f"the others on {sorted(sets)}."
      )
    rows.append(
      {
        "variant": variant.name,
        "label": variant.label,
        "overrides": list(variant.overrides),
        "scores": {
          name: _scores(report["sets"][name]["student"]) for name in sets
        },
        "fingerprints": dict((fingerprints or {}).get(variant.name, {})),
      }
    )
  first = reports[variants[0].name]
  teachers = {
    name: {
      system: _scores(first["sets"][name][system])
      for system in ("single", "ensemble")
    }
    for name in sets
  }
  return {
    "sets": sets,
    "rows": rows,
    "teachers": teachers,
    "k": first.get("inference", {}).get("k"),
  }


def _check_same_teachers(
  variants: Sequence[Variant], fingerprints: Mapping[str, Mapping[str, Any]]
) -> None:
  for key in ("teachers", "knowledge"):
    seen = {
      v.name: fingerprints[v.name][key]
      for v in variants
      if key in fingerprints.get(v.name, {})
    }
    if len({repr(value) for value in seen.values()}) > 1:
      raise ValueError(
        f"the variants were not taught by the same {key}: {seen}; "
        "run them into one artifact root with the same data and teacher "
        "config."
      )


def _delta(value: float, base: float) -> str:
  diff = value - base
  sign = "+" if diff >= 0 else "−"
  return f"{value:.1f} ({sign}{abs(diff):.1f})"


def render_ablation_markdown(table: Mapping[str, Any]) -> str:
  """The ablation table as Markdown; non-full rows show the change in ().

  The first row is the reference for the changes (the full model when the
  table is built from `ABLATIONS`).
  """
  sets = table["sets"]
  rows = table["rows"]
  lines = [
    "# a2d ablations",
    "",
    "Student EM/F1 of each variant, every one distilled from the same "
    "teachers and knowledge; in parentheses the change from "
    f"{rows[0]['label']}.",
    "",
    "| variant | " + " | ".join(f"{s} EM | {s} F1" for s in sets) + " |",
    "|---" * (1 + 2 * len(sets)) + "|",
  ]
  base = rows[0]["scores"]
  for index, row in enumerate(rows):
    cells = []
    for name in sets:
      for metric in ("exact_match", "f1"):
        value = row["scores"][name][metric]
        cells.append(
          f"{value:.1f}" if index == 0 else _delta(value, base[name][metric])
        )
    lines.append(f"| {row['label']} | " + " | ".join(cells) + " |")
  k = table.get("k")
  lines += [
    "",
    "| teachers | " + " | ".join(f"{s} EM | {s} F1" for s in sets) + " |",
    "|---" * (1 + 2 * len(sets)) + "|",
  ]
  for system, label in (
    ("single", "single teacher"),
    ("ensemble", f"ensemble (K={k})" if k else "ensemble"),
  ):
    cells = []
    for name in sets:
      result = table["teachers"][name][system]
      cells += [f"{result['exact_match']:.1f}", f"{result['f1']:.1f}"]
    lines.append(f"| {label} | " + " | ".join(cells) + " |")
  worst = [s for s in sets if base[s]["worst_case"]]
  if worst:
    lines += [
      "",
      f"Adversarial sets ({', '.join(worst)}): per original question the "
      "worst score over the original and all its adversarial variants.",
    ]
  lines.append("")
  return "\n".join(lines)
