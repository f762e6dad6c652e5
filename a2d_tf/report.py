"""The evaluation report: single teachers / ensemble / student on every set.

`report.json` and `report.md` have the shape of the paper's Tables 1, 2 and
4, with what it takes to read them honestly:

* `single`: the K teachers as single models, the mean with its standard
  deviation, min and max over the teachers (each teacher is one draw of a
  single model; teacher 0 alone would be one seed's luck), and `teachers`,
  each teacher's own scores.
* `ensemble` and `student`, EM/F1 in percent; on adversarial sets the worst
  case over each original question's variants. NarrativeQA sets
  (`score_narrativeqa_set`) have BLEU-1, BLEU-4 and ROUGE-L against both
  reference answers instead (`metrics.narrativeqa`): BLEU is corpus-level,
  ROUGE-L the mean over questions. Each set names its `task`, its
  `metrics` and its `primary` metric (F1, or ROUGE-L).
* `gain_kept`: the share of the ensemble's gain over the single mean on the
  primary metric that the student keeps, `(student - single) / (ensemble -
  single)` (`gain_kept_<metric>` on each other metric, e.g.
  `gain_kept_exact_match`, `gain_kept_bleu_4`); None when the ensemble
  gains nothing.
* `intervals`: paired bootstrap intervals (`metrics.bootstrap`, resampling
  the set's questions, or original questions on adversarial sets) of
  `student - single mean` and `student - ensemble`, in points: EM and F1,
  or ROUGE-L on NarrativeQA sets (BLEU is corpus-level: it has no
  per-question score to resample). A difference whose interval contains 0
  is not resolved by the set, and the Markdown says so.
* `knowledge_diagnostics` (top level): per split (the training split's
  knowledge, and dev) each teacher's and the ensemble's F1 against gold and
  the sharpness of the soft distributions at tau (`diagnostics`): on the
  training split the teachers have seen every question, and when their
  knowledge there is little more than the gold labels, distillation has
  little to pass on.
* `parameters`: trainable parameters of a single teacher, the ensemble and
  the student, and the student's architecture changes (`student_model`).
* `inference`: the wall time of one forward pass of a single teacher, the
  ensemble and the student over the same dev batches (fastest of
  `repeats`), and the student's speedup over one teacher
  (`speedup_over_single`) and over the ensemble (`speedup_over_ensemble`,
  also `speedup`).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from a2d_tf.metrics import adversarial, bootstrap
from a2d_tf.metrics import narrativeqa as narrativeqa_metrics
from a2d_tf.metrics import squad as squad_metrics

SYSTEMS = ("single", "ensemble", "student")
METRICS = ("exact_match", "f1")
NARRATIVEQA_METRICS = ("bleu_1", "bleu_4", "rouge_l")
METRIC_LABELS = {
  "exact_match": "EM",
  "f1": "F1",
  "bleu_1": "BLEU-1",
  "bleu_4": "BLEU-4",
  "rouge_l": "ROUGE-L",
}
# (name in `intervals`, the system the student is compared with)
COMPARISONS = (
  ("student_minus_single", "single"),
  ("student_minus_ensemble", "ensemble"),
)


def is_adversarial(squad_data: list) -> bool:
  """True when some question is an adversarial variant of another."""
  ids = [q.id for q in squad_metrics.iter_questions(squad_data)]
  groups = adversarial.group_by_original(ids)
  return any(len(members) > 1 for members in groups.values())


def score_details(
  squad_data: list, predictions: Mapping[str, str]
) -> tuple[dict[str, Any], dict[str, dict[str, float]]]:
  """EM/F1 in percent, and the per-unit scores the means average.

  Units are questions, or original questions (worst case over their
  variants) on adversarial sets.

  Returns:
    The summary (`exact_match`, `f1`, `worst_case`, and on adversarial sets
    `num_original`, `num_variants`), and `{"exact_match": {unit: score in
    [0, 1]}, "f1": {...}}`.
  """
  if is_adversarial(squad_data):
    details = adversarial.evaluate_adversarial_with_details(
      squad_data, predictions
    )
    summary = {**details.summary(), "worst_case": True}
    units = {
      "exact_match": details.exact_match_by_original,
      "f1": details.f1_by_original,
    }
    return summary, units
  details = squad_metrics.evaluate_with_details(squad_data, predictions)
  summary = {**details.summary(), "worst_case": False}
  return summary, {
    "exact_match": details.exact_match_by_id,
    "f1": details.f1_by_id,
  }


def score(squad_data: list, predictions: Mapping[str, str]) -> dict[str, Any]:
  """EM/F1 in percent; the worst case over variants for adversarial sets."""
  return score_details(squad_data, predictions)[0]


def _spread(values: Sequence[float]) -> dict[str, float]:
  return {
    "mean": statistics.fmean(values),
    "std": statistics.stdev(values) if len(values) > 1 else 0.0,
    "min": min(values),
    "max": max(values),
  }


def gain_kept(student: float, single: float, ensemble: float) -> float | None:
  """`(student - single) / (ensemble - single)`; None without a gain."""
  gain = ensemble - single
  if gain <= 0:
    return None
  return (student - single) / gain


def score_set(
  squad_data: list,
  teacher_predictions: Sequence[Mapping[str, str]],
  ensemble_predictions: Mapping[str, str],
  student_predictions: Mapping[str, str],
  num_resamples: int = bootstrap.DEFAULT_RESAMPLES,
  seed: int = 0,
) -> dict[str, Any]:
  """Every system's scores on one SQuAD set, the gain kept and intervals.

  Args:
    squad_data: The set's SQuAD `data` list.
    teacher_predictions: Each teacher's id -> answer text.
    ensemble_predictions: The ensemble's.
    student_predictions: The student's.
    num_resamples: Bootstrap resamples of the intervals.
    seed: Seed of the resampling.

  Returns:
    `single`, `teachers`, `ensemble`, `student`, `gain_kept`,
    `gain_kept_exact_match` and `intervals` (see the module docstring),
    with `task` "squad", `metrics` and `primary` "f1".
  """
  return _score_systems(
    lambda predictions: score_details(squad_data, predictions),
    "squad",
    METRICS,
    METRICS,
    "f1",
    teacher_predictions,
    ensemble_predictions,
    student_predictions,
    num_resamples,
    seed,
  )


def narrativeqa_details(
  references: Mapping[str, Sequence[str]], predictions: Mapping[str, str]
) -> tuple[dict[str, Any], dict[str, dict[str, float]]]:
  """BLEU-1, BLEU-4, ROUGE-L in percent, and ROUGE-L per question.

  Returns:
    The summary (the three scores, `num_questions`, `num_missing`: questions
    without a prediction, scored as empty answers) and `{"rouge_l":
    {question id: ROUGE-L in [0, 1]}}`.
  """
  details = narrativeqa_metrics.evaluate_with_details(references, predictions)
  summary = {
    **details.summary(),
    "num_questions": len(details.rouge_l_by_id),
    "num_missing": len(details.missing_ids),
  }
  return summary, {"rouge_l": details.rouge_l_by_id}


def score_narrativeqa_set(
  references: Mapping[str, Sequence[str]],
  teacher_predictions: Sequence[Mapping[str, str]],
  ensemble_predictions: Mapping[str, str],
  student_predictions: Mapping[str, str],
  num_resamples: int = bootstrap.DEFAULT_RESAMPLES,
  seed: int = 0,
) -> dict[str, Any]:
  """Every system's scores on one NarrativeQA set, gain kept, intervals.

  BLEU-1, BLEU-4 (corpus-level) and ROUGE-L (mean over questions) against
  both references; `gain_kept` on ROUGE-L (`gain_kept_bleu_1`,
  `gain_kept_bleu_4` beside it); intervals on ROUGE-L, the metric with a
  score per question.

  Args:
    references: Question id -> the reference answers.
    teacher_predictions: Each teacher's id -> answer text.
    ensemble_predictions: The ensemble's.
    student_predictions: The student's.
    num_resamples: Bootstrap resamples of the intervals.
    seed: Seed of the resampling.

  Returns:
    The dict of `score_set`, with `task` "narrativeqa", `metrics` BLEU-1,
    BLEU-4, ROUGE-L and `primary` "rouge_l".
  """
  return _score_systems(
    lambda predictions: narrativeqa_details(references, predictions),
    "narrativeqa",
    NARRATIVEQA_METRICS,
    ("rouge_l",),
    "rouge_l",
    teacher_predictions,
    ensemble_predictions,
    student_predictions,
    num_resamples,
    seed,
  )


def _score_systems(
  details: Callable[[Mapping[str, str]], tuple[dict, dict]],
  task: str,
  metrics: Sequence[str],
  unit_metrics: Sequence[str],
  primary: str,
  teacher_predictions: Sequence[Mapping[str, str]],
  ensemble_predictions: Mapping[str, str],
  student_predictions: Mapping[str, str],
  num_resamples: int,
  seed: int,
) -> dict[str, Any]:
  """`score_set` for any task.

  Args:
    details: Predictions -> (summary with every metric in percent, metric
      -> unit -> score in [0, 1] for each of `unit_metrics`).
    task: The set's task, recorded in the result.
    metrics: The summary's metrics, in table order.
    unit_metrics: The metrics with per-unit scores (the intervals').
    primary: The metric of `gain_kept`.
    teacher_predictions: Each teacher's id -> answer text.
    ensemble_predictions: The ensemble's.
    student_predictions: The student's.
    num_resamples: Bootstrap resamples of the intervals.
    seed: Seed of the resampling.
  """
  if not teacher_predictions:
    raise ValueError("score_set needs at least one teacher's predictions")
  teachers = [details(p) for p in teacher_predictions]
  ensemble_summary, ensemble_units = details(ensemble_predictions)
  student_summary, student_units = details(student_predictions)
  summaries = [summary for summary, _ in teachers]
  spreads = {m: _spread([s[m] for s in summaries]) for m in metrics}
  single = {
    **{k: v for k, v in summaries[0].items() if k not in metrics},
    **{m: spreads[m]["mean"] for m in metrics},
    **{
      stat: {m: spreads[m][stat] for m in metrics}
      for stat in ("mean", "std", "min", "max")
    },
  }
  # Per unit, the single model is the mean over teachers: the paired
  # differences then average to student - single mean.
  single_units = {
    m: {
      unit: statistics.fmean(units[m][unit] for _, units in teachers)
      for unit in student_units[m]
    }
    for m in unit_metrics
  }
  units = {"single": single_units, "ensemble": ensemble_units}
  intervals: dict[str, Any] = {}
  for name, other in COMPARISONS:
    found = bootstrap.paired_intervals(
      student_units, units[other], unit_metrics, num_resamples, seed
    )
    intervals[name] = {
      **{m: found[m]["interval"] for m in unit_metrics},
      "difference": {m: found[m]["difference"] for m in unit_metrics},
      "excludes_zero": {m: found[m]["excludes_zero"] for m in unit_metrics},
    }
  any_found = found[primary]
  intervals.update(
    resamples=any_found["resamples"],
    confidence=any_found["confidence"],
    units=any_found["units"],
    seed=seed,
  )
  kept = {
    "gain_kept" if m == primary else f"gain_kept_{m}": gain_kept(
      student_summary[m], single[m], ensemble_summary[m]
    )
    for m in (primary, *(m for m in metrics if m != primary))
  }
  return {
    "task": task,
    "metrics": list(metrics),
    "primary": primary,
    "single": single,
    "teachers": summaries,
    "ensemble": ensemble_summary,
    "student": student_summary,
    **kept,
    "intervals": intervals,
  }


def summary(report: Mapping[str, Any], digits: int = 2) -> dict[str, Any]:
  """The figures of a `report.json` a benchmark prints, rounded.

  Returns:
    `sets`: per set, each system's scores on the set's metrics
    (`exact_match` and `f1`, or NarrativeQA's BLEU-1, BLEU-4, ROUGE-L; the
    single row with `std`), `gain_kept` and the intervals' `[low, high]`
    on the metrics that have them;
    `knowledge_diagnostics` as reported; `parameters`; `inference`.
  """

  def rounded(value):
    if isinstance(value, float):
      return round(value, digits)
    if isinstance(value, list):
      return [rounded(v) for v in value]
    if isinstance(value, dict):
      return {k: rounded(v) for k, v in value.items()}
    return value

  sets = {}
  for name, result in report["sets"].items():
    metrics = _metrics(result)
    entry = {
      system: {m: result[system][m] for m in metrics} for system in SYSTEMS
    }
    if "std" in result["single"]:
      entry["single"]["std"] = dict(result["single"]["std"])
    if "intervals" in result:
      entry["gain_kept"] = result["gain_kept"]
      entry["intervals"] = {
        comparison: {
          m: result["intervals"][comparison][m]
          for m in result["intervals"][comparison]["difference"]
        }
        for comparison, _ in COMPARISONS
      }
    sets[name] = entry
  return rounded(
    {
      "sets": sets,
      "knowledge_diagnostics": report.get("knowledge_diagnostics"),
      "parameters": report["parameters"],
      "inference": report["inference"],
    }
  )


def _cell(result: Mapping[str, Any], metric: str, with_std: bool) -> str:
  text = f"{result[metric]:.1f}"
  if with_std and "std" in result:
    text += f" ± {result['std'][metric]:.1f}"
  return text


def _interval_line(name: str, set_name: str, found: Mapping[str, Any]) -> str:
  parts = []
  for metric in found["difference"]:
    label = METRIC_LABELS.get(metric, metric)
    low, high = found[metric]
    verdict = (
      "excludes 0"
      if found["excludes_zero"][metric]
      else "contains 0: not resolved on this set"
    )
    parts.append(
      f"{label} {found['difference'][metric]:+.1f} [{low:+.1f}, "
      f"{high:+.1f}] ({verdict})"
    )
  what = name.replace("student_minus_", "student − ").replace(
    "single", "single mean"
  )
  return f"- {set_name}, {what}: " + "; ".join(parts)


def _percent(value: float | None) -> str:
  return "n/a" if value is None else f"{value:.1f}"


def _metrics(result: Mapping[str, Any]) -> list[str]:
  """A set result's metrics in table order (EM, F1 unless it says)."""
  return list(result.get("metrics", METRICS))


def _header(
  report: Mapping[str, Any], sets: list[str], first: str
) -> list[str]:
  """`| first | <set> <metric> | ... |` and its separator row."""
  columns = [
    f"{name} {METRIC_LABELS.get(m, m)}"
    for name in sets
    for m in _metrics(report["sets"][name])
  ]
  return [
    f"| {first} | " + " | ".join(columns) + " |",
    "|---" * (1 + len(columns)) + "|",
  ]


def render_markdown(report: Mapping[str, Any]) -> str:
  """The report as Markdown tables."""
  sets = list(report["sets"])
  k = report["inference"]["k"]
  lines = ["# a2d report", ""]
  lines += _header(report, sets, "system")
  labels = {
    "single": f"single (mean ± sd of {k})",
    "ensemble": f"ensemble (K={k})",
    "student": "A2D student",
  }
  for system in SYSTEMS:
    cells = []
    for name in sets:
      result = report["sets"][name][system]
      cells += [
        _cell(result, m, system == "single")
        for m in _metrics(report["sets"][name])
      ]
    lines.append(f"| {labels[system]} | " + " | ".join(cells) + " |")
  worst = [s for s in sets if report["sets"][s]["student"].get("worst_case")]
  if worst:
    lines += [
      "",
      f"Adversarial sets ({', '.join(worst)}): per original question the "
      "worst score over the original and all its adversarial variants.",
    ]
  lines += _narrativeqa_lines(report, sets)
  lines += _gain_lines(report, sets)
  lines += _teacher_lines(report, sets)
  lines += _diagnostics_lines(report.get("knowledge_diagnostics"))
  lines += _training_lines(report.get("training"))
  lines += _timing_lines(report)
  return "\n".join(lines)


def _narrativeqa_lines(report: Mapping[str, Any], sets: list[str]) -> list[str]:
  lines = []
  sourced = [s for s in sets if report["sets"][s].get("source")]
  if sourced:
    lines += [
      "",
      "Sets: "
      + "; ".join(f"{s} = {report['sets'][s]['source']}" for s in sourced)
      + ".",
    ]
  narrative = [
    s for s in sets if report["sets"][s].get("task") == "narrativeqa"
  ]
  if narrative:
    lines += [
      "",
      f"NarrativeQA sets ({', '.join(narrative)}): BLEU-1 and BLEU-4 over "
      "the whole set (corpus BLEU), ROUGE-L the mean over questions, in "
      "percent, against both reference answers (pycocoevalcap, lowercased "
      "tokens). Gain kept and intervals on ROUGE-L: BLEU has no "
      "per-question score to resample.",
    ]
  return lines


def _gain_lines(report: Mapping[str, Any], sets: list[str]) -> list[str]:
  scored = [s for s in sets if "intervals" in report["sets"][s]]
  if not scored:
    return []
  lines = ["", "## Gain kept and intervals"]
  primaries = dict.fromkeys(
    report["sets"][s].get("primary", "f1") for s in scored
  )
  for primary in primaries:
    label = METRIC_LABELS.get(primary, primary)
    lines += [
      "",
      f"| set | ensemble − single {label} | student − single {label} "
      "| gain kept |",
      "|---|---|---|---|",
    ]
    for name in scored:
      result = report["sets"][name]
      if result.get("primary", "f1") != primary:
        continue
      single = result["single"][primary]
      kept = result["gain_kept"]
      lines.append(
        f"| {name} | {result['ensemble'][primary] - single:+.1f} | "
        f"{result['student'][primary] - single:+.1f} | "
        f"{'n/a (no ensemble gain)' if kept is None else f'{kept:.2f}'} |"
      )
  first = report["sets"][scored[0]]["intervals"]
  lines += [
    "",
    f"Paired bootstrap intervals ({first['resamples']} resamples of the "
    f"questions, {100 * first['confidence']:.0f}%, seed {first['seed']}), "
    "in points:",
    "",
  ]
  for name in scored:
    for comparison, _ in COMPARISONS:
      found = report["sets"][name]["intervals"][comparison]
      lines.append(_interval_line(comparison, name, found))
  return lines


def _teacher_lines(report: Mapping[str, Any], sets: list[str]) -> list[str]:
  if not all("teachers" in report["sets"][s] for s in sets):
    return []
  k = len(report["sets"][sets[0]]["teachers"])
  lines = ["", "## Teachers", "", *_header(report, sets, "teacher")]
  for t in range(k):
    cells = []
    for name in sets:
      result = report["sets"][name]["teachers"][t]
      cells += [f"{result[m]:.1f}" for m in _metrics(report["sets"][name])]
    lines.append(f"| {t} | " + " | ".join(cells) + " |")
  return lines


def _diagnostics_lines(diagnostics: Mapping[str, Any] | None) -> list[str]:
  if not diagnostics:
    return []
  lines = [
    "",
    "## Knowledge diagnostics",
    "",
    "What the teachers' soft answers carry beyond the gold labels: F1 of "
    "their decoded answers against gold, and the soft start/end "
    "distributions at tau (probability at the argmax, entropy in nats, "
    "probability on the gold boundary).",
    "",
    "| split | teachers F1 | ensemble F1 | mean argmax prob | mean entropy "
    "| mean gold prob |",
    "|---|---|---|---|---|---|",
  ]
  for split, d in diagnostics.items():
    teachers = ", ".join(_percent(t["f1"]) for t in d["teachers"])
    lines.append(
      f"| {split} | {teachers} | {_percent(d['ensemble']['f1'])} | "
      f"{d['mean_argmax_prob']:.3f} | {d['mean_entropy']:.2f} | "
      f"{_number(d.get('mean_gold_prob'))} |"
    )
  return lines


def _number(value: float | None) -> str:
  return "n/a" if value is None else f"{value:.3f}"


def _training_lines(training: Mapping[str, Any] | None) -> list[str]:
  if not training:
    return []
  lines = [
    "",
    "## Training",
    "",
    f"Teachers trained up to {training['teacher_epochs']} epochs, the "
    f"student up to {training['student_epochs']}"
    + (
      " (longer than a teacher)"
      if training["student_epochs"] > training["teacher_epochs"]
      else ""
    )
    + ". "
    + (
      "Each model keeps its best epoch on the validation split held out "
      "from training; the reported sets are never selected on."
      if training.get("selected_on")
      else "No validation split: each model keeps its last epoch."
    ),
  ]
  models = training.get("models") or {}
  if models and training.get("selected_on"):
    lines += ["", "| model | best epoch | epochs run | validation F1 |"]
    lines.append("|---|---|---|---|")
    for name, counts in models.items():
      lines.append(
        f"| {name} | {counts.get('best_epoch', 'n/a')} | "
        f"{counts.get('epochs_run', 'n/a')} | "
        f"{counts.get('validation_f1', 'n/a')} |"
      )
  return lines


def parameters(
  teacher: int,
  student: int,
  k: int,
  student_model: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
  """The `parameters` entry of `report.json`.

  Args:
    teacher: Trainable parameters of one teacher.
    student: Trainable parameters of the student.
    k: Teachers in the ensemble.
    student_model: The student's architecture changes from the teachers'
      (`config.student_model_changes`); empty for a teacher-sized student.

  Returns:
    `teacher` (= a single teacher), `ensemble` (K teachers), `student`,
    `student_to_teacher` (their ratio) and `student_model`.
  """
  return {
    "teacher": teacher,
    "ensemble": teacher * k,
    "student": student,
    "student_to_teacher": student / teacher if teacher else None,
    "student_model": dict(student_model or {}),
  }


def _speedups(timing: Mapping[str, Any]) -> dict[str, float]:
  """The student's speedup over one teacher and over the ensemble.

  Read from the timing entry; reports written before both were stored
  have them computed from the seconds.
  """
  return {
    "single": timing.get(
      "speedup_over_single", timing["single_s"] / timing["student_s"]
    ),
    "ensemble": timing.get("speedup_over_ensemble", timing["speedup"]),
  }


def _architecture_line(report: Mapping[str, Any]) -> str:
  params = report["parameters"]
  changes = params.get("student_model") or {}
  if not changes:
    return "Student architecture: the teachers' (no `student_model` change)."
  teachers = (report.get("config") or {}).get("model", {})
  parts = []
  for name, value in sorted(changes.items()):
    was = f" (teachers: {teachers[name]})" if name in teachers else ""
    parts.append(f"{name}={value}{was}")
  ratio = params["student"] / params["teacher"]
  return (
    f"Student architecture: the teachers' with {', '.join(parts)}; "
    f"{ratio:.2f} of a teacher's parameters."
  )


def _timing_lines(report: Mapping[str, Any]) -> list[str]:
  timing = report["inference"]
  params = report["parameters"]
  k = timing["k"]
  rows = [
    ("single teacher", f"{params['teacher']:,}", "single_s", "single"),
    (
      f"ensemble (K={k})",
      f"{params['teacher']:,} x {k}",
      "ensemble_s",
      "ensemble",
    ),
    ("student", f"{params['student']:,}", "student_s", None),
  ]
  if "speedup" in timing:
    speedups = _speedups(timing)
    lines = [
      "",
      "| system | parameters (trainable) | inference time (s) | "
      "student faster by |",
      "|---|---|---|---|",
    ]
    for label, count, seconds, other in rows:
      faster = f"{speedups[other]:.2f}x" if other else "—"
      lines.append(f"| {label} | {count} | {timing[seconds]:.3f} | {faster} |")
    footer = (
      f"Student speedup over one teacher: **{speedups['single']:.2f}x**; "
      f"over the ensemble: **{speedups['ensemble']:.2f}x** "
      f"({timing['examples']} examples, {timing['repeats']} passes)."
    )
  else:
    lines = ["", "| system | parameters (trainable) |", "|---|---|"]
    lines += [f"| {a} | {b} |" for a, b, _, _ in rows]
    footer = "Inference not timed (timing_repeats=0)."
  return [*lines, "", footer, "", _architecture_line(report), ""]
