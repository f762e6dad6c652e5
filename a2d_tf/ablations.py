"""The paper's ablation table (Table 5) and the accuracy/speed frontier.

`ABLATIONS` are the variants: full A2D, and the student trained without one
A2D term (−KD, −ATT, −ANS) or stage-wise instead of jointly, each a set of
config overrides. Every variant is distilled from the same teachers and
knowledge (`pipelines/ablation.py` runs them into one artifact root), so
`ablation_table` compares students only: EM/F1 on dev and every evaluation
set, from each variant's evaluation `report.json`.

A size sweep (`sweep_variants`, e.g. `student_model.hidden=32,16,8`) makes
one variant per student architecture, again from the same teachers and
knowledge; `frontier_table` puts each student's F1, parameters and
inference time beside the single teachers' and the ensemble's (the
accuracy/speed frontier; `figures.plot_frontier` draws it).

Pure Python (no TensorFlow), so a CLI can check variant names first.
"""

from __future__ import annotations

import dataclasses
import statistics
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


# The section a sweep may vary: the student's architecture only, so every
# point learns from the same cached teachers and knowledge.
SWEEP_SECTION = "student_model"


def sweep_variants(specs: Sequence[str]) -> tuple[Variant, ...]:
  """The variants of a student size sweep, in the order given.

  Args:
    specs: `student_model.FIELD=V1,V2,...` strings; several are zipped
      point by point (`student_model.hidden=32,16` with
      `student_model.aligner_hops=2,1` makes (32, 2) and (16, 1)), so they
      must list as many values.

  Returns:
    One `Variant` per point: name `hidden_16` (fields joined by `-`),
    label `hidden=16`, the overrides that make it.

  Raises:
    ValueError: A malformed spec, a field outside `student_model`, specs of
      different lengths, an empty value, or two points alike.
  """
  if not specs:
    raise ValueError("a sweep needs at least one --sweep=FIELD=V1,V2,... .")
  columns = []
  for spec in specs:
    key, sep, raw = spec.partition("=")
    section, dot, field = key.strip().partition(".")
    if not sep or not dot or not field:
      raise ValueError(
        f"bad sweep {spec!r}: expected {SWEEP_SECTION}.FIELD=V1,V2,..., "
        f"e.g. {SWEEP_SECTION}.hidden=32,16,8."
      )
    if section != SWEEP_SECTION:
      raise ValueError(
        f"bad sweep {spec!r}: a sweep varies the student's architecture, "
        f"{SWEEP_SECTION}.* fields only (the teachers and their knowledge "
        "stay the same for every point)."
      )
    values = [v.strip() for v in raw.split(",")]
    if not all(values):
      raise ValueError(f"bad sweep {spec!r}: an empty value.")
    columns.append((field.strip(), values))
  lengths = {len(values) for _, values in columns}
  if len(lengths) > 1:
    raise ValueError(
      "sweeps over several fields are zipped and must list as many values: "
      + ", ".join(f"{f}: {len(v)}" for f, v in columns)
    )
  fields = [f for f, _ in columns]
  if len(set(fields)) != len(fields):
    raise ValueError(f"a field is swept twice: {fields}.")
  variants = []
  for point in zip(*(values for _, values in columns), strict=True):
    pairs = list(zip(fields, point, strict=True))
    variants.append(
      Variant(
        name="-".join(f"{f}_{v}" for f, v in pairs),
        label=", ".join(f"{f}={v}" for f, v in pairs),
        overrides=tuple(f"{SWEEP_SECTION}.{f}={v}" for f, v in pairs),
      )
    )
  names = [v.name for v in variants]
  if len(set(names)) != len(names):
    raise ValueError(f"a sweep point is listed twice: {names}.")
  return tuple(variants)


def frontier_table(
  reports: Mapping[str, Mapping[str, Any]],
  variants: Sequence[Variant],
  fingerprints: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
  """The accuracy/speed frontier from each sweep point's evaluation report.

  Every report's evaluation timed a single teacher, the ensemble and its
  student over the same dev batches in one process (`inference.time_forward`,
  the method of the evaluate step); each row keeps its own report's
  speedups, and the reference rows take the median over the reports of the
  teachers' and the ensemble's times.

  Args:
    reports: Variant name -> the `report.json` of its evaluation, timed.
    variants: The sweep points, in order.
    fingerprints: Optional variant name -> artifact fingerprints, checked
      to show one set of teachers and knowledge.

  Returns:
    A JSON-able dict: `sets` (dev first), `k`, `examples`, `repeats`,
    `rows` (per point: `variant`, `label`, `overrides`, `student_model`,
    `parameters`, `parameter_ratio` (of a teacher's), `scores` set -> EM/F1,
    `inference_s`, `speedup_over_single`, `speedup_over_ensemble`,
    `fingerprints`) and `references` (`single`: F1/EM mean and sd over the
    K teachers per set, `ensemble`; each with `parameters` and
    `inference_s`).

  Raises:
    ValueError: A point has no report or an untimed one, the reports cover
      different sets, or the points had different teachers or knowledge.
  """
  if not variants:
    raise ValueError("the frontier needs at least one sweep point.")
  missing = [v.name for v in variants if v.name not in reports]
  if missing:
    raise ValueError(f"no evaluation report for sweep point(s) {missing}.")
  untimed = [
    v.name for v in variants if "speedup" not in reports[v.name]["inference"]
  ]
  if untimed:
    raise ValueError(
      f"sweep point(s) {untimed} were not timed (timing_repeats=0); the "
      "frontier needs every student's inference time."
    )
  _check_same_teachers(variants, fingerprints or {})
  first = reports[variants[0].name]
  sets = sorted(first["sets"], key=lambda s: s != "dev")
  rows = []
  for variant in variants:
    report = reports[variant.name]
    if set(report["sets"]) != set(sets):
      raise ValueError(
        f"sweep point {variant.name!r} was evaluated on "
        f"{sorted(report['sets'])}, the others on {sorted(sets)}."
      )
    timing, params = report["inference"], report["parameters"]
    rows.append(
      {
        "variant": variant.name,
        "label": variant.label,
        "overrides": list(variant.overrides),
        "student_model": dict(params.get("student_model", {})),
        "parameters": int(params["student"]),
        "parameter_ratio": params["student"] / params["teacher"],
        "scores": {
          name: _scores(report["sets"][name]["student"]) for name in sets
        },
        "inference_s": float(timing["student_s"]),
        "speedup_over_single": timing["single_s"] / timing["student_s"],
        "speedup_over_ensemble": timing["ensemble_s"] / timing["student_s"],
        "fingerprints": dict((fingerprints or {}).get(variant.name, {})),
      }
    )
  timings = [reports[v.name]["inference"] for v in variants]
  k = first["inference"]["k"]
  teacher_params = int(first["parameters"]["teacher"])

  def single(name: str) -> dict[str, Any]:
    result = first["sets"][name]["single"]
    return {
      **_scores(result),
      "std": {m: float(v) for m, v in result.get("std", {}).items()},
    }

  references = {
    "single": {
      "parameters": teacher_params,
      "inference_s": statistics.median(t["single_s"] for t in timings),
      "scores": {name: single(name) for name in sets},
    },
    "ensemble": {
      "parameters": teacher_params * k,
      "inference_s": statistics.median(t["ensemble_s"] for t in timings),
      "scores": {
        name: _scores(first["sets"][name]["ensemble"]) for name in sets
      },
    },
  }
  return {
    "sets": sets,
    "k": k,
    "examples": first["inference"].get("examples"),
    "repeats": first["inference"].get("repeats"),
    "rows": rows,
    "references": references,
  }


def render_frontier_markdown(table: Mapping[str, Any]) -> str:
  """The frontier table as Markdown: references first, then the students."""
  sets = table["sets"]
  k = table["k"]
  header = (
    "| system | parameters (trainable) | "
    + " | ".join(f"{s} EM | {s} F1" for s in sets)
    + " | inference (s) | speedup over one teacher | speedup over the "
    "ensemble |"
  )
  lines = [
    "# a2d accuracy/speed frontier",
    "",
    f"Students of every size distilled from the same K={k} teachers and "
    "knowledge. Inference: one forward pass over dev "
    f"({table['examples']} examples, fastest of {table['repeats']}), timed "
    "as the evaluate step times it; the single teacher's and ensemble's "
    "times are the median over the points' evaluations, each student's "
    "speedups come from its own evaluation.",
    "",
    header,
    "|---" * (5 + 2 * len(sets)) + "|",
  ]
  single = table["references"]["single"]
  cells = []
  for name in sets:
    for metric in ("exact_match", "f1"):
      text = f"{single['scores'][name][metric]:.1f}"
      std = single["scores"][name].get("std", {}).get(metric)
      cells.append(text if std is None else f"{text} ± {std:.1f}")
  lines.append(
    f"| single teacher (mean ± sd of {k}) | {single['parameters']:,} | "
    + " | ".join(cells)
    + f" | {single['inference_s']:.3f} | | |"
  )
  ensemble = table["references"]["ensemble"]
  cells = [
    f"{ensemble['scores'][name][m]:.1f}"
    for name in sets
    for m in ("exact_match", "f1")
  ]
  lines.append(
    f"| ensemble (K={k}) | {ensemble['parameters']:,} | "
    + " | ".join(cells)
    + f" | {ensemble['inference_s']:.3f} | | |"
  )
  for row in table["rows"]:
    cells = [
      f"{row['scores'][name][m]:.1f}"
      for name in sets
      for m in ("exact_match", "f1")
    ]
    lines.append(
      f"| student {row['label']} | {row['parameters']:,} "
      f"({row['parameter_ratio']:.2f}) | "
      + " | ".join(cells)
      + f" | {row['inference_s']:.3f} | {row['speedup_over_single']:.2f}x | "
      f"{row['speedup_over_ensemble']:.2f}x |"
    )
  worst = [s for s in sets if table["rows"][0]["scores"][s]["worst_case"]]
  lines += [
    "",
    "In parentheses: the student's parameters as a share of one teacher's.",
  ]
  if worst:
    lines.append(
      f"Adversarial sets ({', '.join(worst)}): per original question the "
      "worst score over the original and all its adversarial variants."
    )
  lines.append("")
  return "\n".join(lines)
