"""Figures of the analyses as PNG files and TensorBoard images.

* `plot_question_types`: the paper's Figure 4, F1 per question type of the
  single teacher and the student as grouped bars.
* `plot_case_study` (`case_study_figure`): the paper's Figure 3, the
  teachers' (mean) and the student's attention heatmaps (passage x
  question) beside their start/end probabilities, for one example.
* `plot_frontier`: the accuracy/speed frontier of a student size sweep, F1
  against inference time, with the single teachers and the ensemble as
  reference points.
* `log_images`: writes PNGs to a TensorBoard run as image summaries.

Drawn with matplotlib's object-oriented API on the Agg canvas (no pyplot, no
display, no global backend switch), so it runs headless and in threads.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import tensorflow as tf
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from a2d_tf import analysis

# Colours of the systems, the same in every figure.
TEACHER_COLOR = "tab:blue"
STUDENT_COLOR = "tab:orange"
START_COLOR = "tab:green"
END_COLOR = "tab:red"
GOLD_COLOR = "#fff2a8"
ENSEMBLE_COLOR = "tab:purple"
_DPI = 110
_MAX_LABEL = 14


def _save(figure: Figure, path: str) -> str:
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  FigureCanvasAgg(figure)
  figure.savefig(path, dpi=_DPI, bbox_inches="tight")
  return path


def _short(token: str) -> str:
  return token if len(token) <= _MAX_LABEL else token[: _MAX_LABEL - 1] + "…"


def plot_question_types(
  table: Mapping[str, Any],
  path: str,
  labels: Mapping[str, str] | None = None,
  title: str = "F1 by question type",
) -> str:
  """Grouped bars of F1 per question type (the paper's Figure 4).

  Args:
    table: `analysis.f1_by_question_type` output.
    path: PNG file to write.
    labels: System name -> legend label (defaults: `TYPE_SYSTEMS`).
    title: Figure title.

  Returns:
    `path`.
  """
  labels = {**analysis.TYPE_SYSTEMS, **(labels or {})}
  systems = table["systems"]
  types = table["types"]
  colors = [TEACHER_COLOR, STUDENT_COLOR]
  width = 0.8 / max(len(systems), 1)
  x = np.arange(len(types))
  figure = Figure(figsize=(1.0 + 0.9 * len(types), 3.6))
  axes = figure.add_subplot()
  for index, system in enumerate(systems):
    values = [entry["f1"][system] for entry in types]
    heights = [0.0 if v is None else v for v in values]
    offset = (index - (len(systems) - 1) / 2) * width
    bars = axes.bar(
      x + offset,
      heights,
      width,
      label=labels.get(system, system),
      color=colors[index] if index < len(colors) else f"C{index}",
    )
    for bar, value in zip(bars, values, strict=True):
      if value is not None:
        axes.annotate(
          f"{value:.0f}",
          (bar.get_x() + bar.get_width() / 2, bar.get_height()),
          ha="center",
          va="bottom",
          fontsize=7,
        )
  axes.set_xticks(
    x, [f"{entry['type']}\nn={entry['count']}" for entry in types]
  )
  axes.set_ylim(0, 105)
  axes.set_ylabel("F1 (%)")
  axes.set_title(title)
  axes.legend(loc="upper right", fontsize=8)
  axes.grid(axis="y", alpha=0.3)
  axes.set_axisbelow(True)
  return _save(figure, path)


def passage_window(case: analysis.CaseStudy, size: int) -> tuple[int, int]:
  """The passage tokens `[first, last)` a case-study figure shows.

  At most `size` tokens, centred on the gold answer (the ensemble's answer
  when the gold one is not in the passage the models read).
  """
  n = len(case.passage_tokens)
  if n <= size:
    return 0, n
  first, last = case.gold_span if case.gold_span[0] >= 0 else case.teacher_span
  centre = (max(first, 0) + max(last, 0)) // 2
  lo = min(max(centre - size // 2, 0), n - size)
  return lo, lo + size


def plot_case_study(
  case: analysis.CaseStudy,
  path: str,
  hop: int = -1,
  max_passage_tokens: int = 40,
) -> str:
  """Writes `case_study_figure(case, hop, max_passage_tokens)` as a PNG.

  Returns:
    `path`.
  """
  return _save(case_study_figure(case, hop, max_passage_tokens), path)


def case_study_figure(
  case: analysis.CaseStudy,
  hop: int = -1,
  max_passage_tokens: int = 40,
) -> Figure:
  """Attention heatmaps and start/end probabilities of teachers and student.

  Two panels per model, side by side and sharing the passage axis: the
  alignment attention of one hop (rows: passage tokens, columns: question
  tokens, each row a distribution over the question) and the start/end
  probability of every passage token. Gold answer rows are shaded. The
  axes are, in order: teachers' heatmap, teachers' probabilities,
  student's heatmap, student's probabilities, colour bar.

  Args:
    case: `analysis.case_study` output.
    hop: Aligner hop to show (-1: the last, what the pointer reads).
    max_passage_tokens: Longest passage excerpt shown (a window around the
      answer).

  Returns:
    The matplotlib `Figure` (not yet drawn).
  """
  hops = case.teacher_attention.shape[0]
  if not -hops <= hop < hops:
    raise ValueError(f"hop must be in [{-hops}, {hops}), got {hop}.")
  lo, hi = passage_window(case, max_passage_tokens)
  rows = hi - lo
  cols = len(case.question_tokens)
  heat_width = max(2.0, 0.3 * cols)
  figure = Figure(figsize=(2 * heat_width + 5.6, 0.2 * rows + 2.6))
  grid = figure.add_gridspec(
    1, 4, width_ratios=[heat_width, 1.2, heat_width, 1.2], wspace=0.08
  )
  panels = (
    (
      f"Teachers (mean of K={case.num_teachers})",
      case.teacher_attention,
      case.teacher_start_probs,
      case.teacher_end_probs,
      case.teacher_answer,
    ),
    (
      "A2D student",
      case.student_attention,
      case.student_start_probs,
      case.student_end_probs,
      case.student_answer,
    ),
  )
  labels = [_short(t) for t in case.passage_tokens[lo:hi]]
  y = np.arange(rows)
  # One colour scale and one probability axis for both models, so the
  # panels compare directly.
  top_attention = max(float(p[1][hop, lo:hi].max()) for p in panels) or 1.0
  top_prob = max(
    float(max(p[2][lo:hi].max(), p[3][lo:hi].max())) for p in panels
  )
  top_prob = min(1.0, 1.1 * top_prob) or 1.0
  first_heat = None
  image = None
  for index, (name, attention, start, end, answer) in enumerate(panels):
    heat = figure.add_subplot(grid[0, 2 * index], sharey=first_heat)
    if first_heat is None:
      first_heat = heat
      heat.set_yticks(y, labels, fontsize=7)
    else:
      heat.tick_params(axis="y", labelleft=False)
    image = heat.imshow(
      attention[hop, lo:hi, :],
      aspect="auto",
      cmap="Blues",
      vmin=0.0,
      vmax=top_attention,
      interpolation="nearest",
    )
    heat.set_xticks(
      np.arange(cols), [_short(t) for t in case.question_tokens], rotation=90
    )
    heat.tick_params(axis="x", labelsize=7)
    heat.set_title(f"{name}\nanswer: {answer!r}", fontsize=9)
    probs = figure.add_subplot(grid[0, 2 * index + 1], sharey=heat)
    probs.barh(y - 0.2, start[lo:hi], 0.4, color=START_COLOR, label="p(start)")
    probs.barh(y + 0.2, end[lo:hi], 0.4, color=END_COLOR, label="p(end)")
    probs.set_xlim(0, top_prob)
    probs.tick_params(axis="both", labelsize=7, labelleft=False)
    probs.tick_params(axis="x", labelrotation=90)
    probs.legend(
      loc="lower center",
      bbox_to_anchor=(0.5, 1.0),
      fontsize=7,
      frameon=False,
      handlelength=1.0,
    )
    if case.gold_span[0] >= 0:
      first, last = case.gold_span[0] - lo, case.gold_span[1] - lo
      probs.axhspan(first - 0.5, last + 0.5, color=GOLD_COLOR, zorder=0)
      heat.add_patch(_gold_outline(first, last, cols))
  first_heat.set_ylim(rows - 0.5, -0.5)
  figure.colorbar(
    image, ax=figure.axes, shrink=0.6, pad=0.01, label="attention"
  )
  excerpt = (
    ""
    if (lo, hi) == (0, len(case.passage_tokens))
    else f" (passage tokens {lo}–{hi - 1} of {len(case.passage_tokens)})"
  )
  hop_number = hop % case.teacher_attention.shape[0] + 1
  figure.suptitle(
    f"Q: {case.question}\ngold: {case.answers[0] if case.answers else '—'!r}"
    f" · aligner hop {hop_number} of {hops}{excerpt}",
    fontsize=10,
  )
  return figure


def _gold_outline(first: int, last: int, cols: int) -> Rectangle:
  return Rectangle(
    (-0.5, first - 0.5),
    cols,
    last - first + 1,
    fill=False,
    edgecolor="goldenrod",
    linewidth=1.5,
  )


def plot_frontier(
  table: Mapping[str, Any],
  path: str,
  set_name: str = "dev",
  title: str | None = None,
) -> str:
  """F1 against inference time: the accuracy/speed frontier of a sweep.

  Each student is a point labelled with its sweep values and its share of
  a teacher's parameters, joined in order of time; the single teacher
  (mean F1 over the K teachers, bar: ± one sd) and the ensemble are the
  reference points.

  Args:
    table: `ablations.frontier_table` output.
    path: PNG file to write.
    set_name: The evaluation set on the F1 axis.
    title: Figure title (default names the set and K).

  Returns:
    `path`.

  Raises:
    ValueError: `set_name` is not in the table.
  """
  if set_name not in table["sets"]:
    raise ValueError(
      f"set_name must be one of {table['sets']}, got {set_name!r}."
    )
  k = table["k"]
  figure = Figure(figsize=(6.4, 4.2))
  axes = figure.add_subplot()
  rows = sorted(table["rows"], key=lambda r: r["inference_s"])
  times = [r["inference_s"] for r in rows]
  f1s = [r["scores"][set_name]["f1"] for r in rows]
  axes.plot(
    times,
    f1s,
    "-o",
    color=STUDENT_COLOR,
    label="A2D students",
    zorder=3,
  )
  for row, x, y in zip(rows, times, f1s, strict=True):
    axes.annotate(
      f"{row['label']}\n({row['parameter_ratio']:.2f}× params)",
      (x, y),
      textcoords="offset points",
      xytext=(6, -14),
      fontsize=7,
    )
  single = table["references"]["single"]
  scores = single["scores"][set_name]
  axes.errorbar(
    [single["inference_s"]],
    [scores["f1"]],
    yerr=[scores.get("std", {}).get("f1", 0.0)],
    fmt="s",
    color=TEACHER_COLOR,
    capsize=4,
    label=f"single teacher (mean ± sd of {k})",
    zorder=4,
  )
  ensemble = table["references"]["ensemble"]
  axes.plot(
    [ensemble["inference_s"]],
    [ensemble["scores"][set_name]["f1"]],
    "D",
    color=ENSEMBLE_COLOR,
    label=f"ensemble (K={k})",
    zorder=4,
  )
  all_times = [*times, single["inference_s"], ensemble["inference_s"]]
  # Room on the right for the labels of the slowest points.
  axes.set_xlim(0, 1.25 * max(all_times))
  # Every system is timed over dev, whichever set gives the F1.
  axes.set_xlabel(f"inference time over dev (s, {table['examples']} examples)")
  axes.set_ylabel(f"{set_name} F1 (%)")
  axes.set_title(title or f"Accuracy/speed frontier ({set_name}, K={k})")
  axes.legend(loc="best", fontsize=8)
  axes.grid(alpha=0.3)
  axes.set_axisbelow(True)
  return _save(figure, path)


def load_png(path: str) -> np.ndarray:
  """A PNG as uint8 `[height, width, channels]` (RGB or RGBA)."""
  return tf.io.decode_png(tf.io.read_file(path)).numpy()


def log_images(
  logdir: str,
  images: Mapping[str, str],
  step: int = 0,
  descriptions: Mapping[str, str] | None = None,
) -> None:
  """Writes PNG files to a TensorBoard run as image summaries.

  Args:
    logdir: The run's directory (created).
    images: Summary tag -> PNG path.
    step: Summary step.
    descriptions: Optional tag -> Markdown description.
  """
  writer = tf.summary.create_file_writer(logdir)
  with writer.as_default():
    for tag, png in images.items():
      pixels = tf.io.decode_png(tf.io.read_file(png), channels=3)
      tf.summary.image(
        tag,
        pixels[None],
        step=step,
        description=(descriptions or {}).get(tag),
      )
  writer.flush()
  writer.close()


def image_tags(logdir: str) -> Sequence[str]:
  """Tags of the image summaries in a TensorBoard run's event files."""
  tags = []
  for name in sorted(tf.io.gfile.listdir(logdir)):
    if "tfevents" not in name:
      continue
    for event in tf.compat.v1.train.summary_iterator(
      os.path.join(logdir, name)
    ):
      for value in event.summary.value:
        if value.metadata.plugin_data.plugin_name == "images":
          tags.append(value.tag)
  return tags
