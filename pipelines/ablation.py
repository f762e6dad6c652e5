"""Trains the paper's ablations from the same teachers, and its analyses;
or a student size sweep, the accuracy/speed frontier.

  python -m pipelines.ablation --preset=small --output_dir=a2d_ablation
  python -m pipelines.ablation --dataset=json --train_file=train-v1.1.json \\
      --dev_file=dev-v1.1.json --eval_file=addsent=sample1k-HCVerifyAll.json
  python -m pipelines.ablation --sweep=student_model.hidden=32,16,8

Runs `pipeline.create_pipeline` once per variant of `ablations.ABLATIONS`
(full A2D, −KD, −ATT, −ANS, stage-wise) into one artifact root: the steps a
variant does not change (data, teachers, knowledge) have the same
fingerprint in every variant and run once, so each further variant trains
and evaluates one student. The full variant also runs the analyze step.

Writes to `<output_dir>/`: `ablation.{json,md}` (student EM/F1 of every
variant on dev and every evaluation set), `question_types.{json,md,png}`
(F1 by question type, single teacher vs student), `case_study.{json,png}`
(attention and start/end probabilities of teachers and student on one
example; also TensorBoard images under `tensorboard/analysis`), the base
config as `config.json`, and every artifact under `artifacts/` (a
`local_runner` run with the same flags and output dir shares them).

With `--sweep` it trains one full-A2D student per sweep point instead
(`ablations.sweep_variants`), every one from the same teachers and
knowledge, each evaluation timing a single teacher, the ensemble and that
student, and writes `frontier.{json,md,png}` (F1 against inference time,
single teacher and ensemble as reference points).
"""

from __future__ import annotations

import json
import os
import time

from absl import app, flags

from pipelines import cli

# The shared flags show in `--help` as this CLI's own.
flags.adopt_module_key_flags(cli)

_VARIANTS = flags.DEFINE_list(
  "variants",
  [],
  "Variants to train, comma-separated, from full, no_kd, no_att, no_ans, "
  "stagewise (default: all). The analyses need full.",
)
_SWEEP = flags.DEFINE_multi_string(
  "sweep",
  [],
  "Student size sweep instead of the ablations: student_model.FIELD=V1,V2,"
  "... (e.g. student_model.hidden=32,16,8); repeat for several fields, "
  "zipped point by point. Writes frontier.{json,md,png}.",
)
_CASE_ID = flags.DEFINE_string(
  "case_id",
  "",
  "Dev question id of the case-study figure (default: the first question "
  "the student answers exactly); checked against the dev split before "
  "any model trains.",
)

FRONTIER_FILES = ("frontier.json", "frontier.md", "frontier.png")
ANALYSIS_FILES = (
  "question_types.json",
  "question_types.md",
  "question_types.png",
  "case_study.json",
  "case_study.png",
)


def _log(line: str) -> None:
  print(f"[a2d ablation {time.strftime('%H:%M:%S')}] {line}", flush=True)


def check_case_id(runner, pipe, case_id: str) -> None:
  """Checks that `case_id` is a question of the run's dev split.

  Runs the pipeline's data step (`example_gen`) alone, before any model
  trains: it is the first step of every variant, which then finds it
  cached, so the check costs one read of the data.

  Raises:
    ValueError: `case_id` is not a dev question id.
  """
  from a2d_tf import artifacts, kit

  _log(f"checking --case_id={case_id} against the dev split")
  data_step = pipe.node("example_gen")
  results = runner.run(kit.Pipeline(pipe.name, [data_step]))
  examples = results["example_gen"]["examples"]
  ids = [r.id for r in artifacts.read_split(examples, "dev")]
  if case_id not in ids:
    raise ValueError(
      f"--case_id={case_id!r} is not a question of the dev split "
      f"({len(ids)} questions, the first {ids[0]!r}); nothing was trained."
    )


def run(argv_extra: list[str]) -> int:
  """Works out paths and configs, runs every variant, writes the tables."""
  cli.quiet_logging()
  # Flags and files are checked before TensorFlow and Beam are imported.
  from a2d_tf import ablations
  from a2d_tf import config as config_lib

  if cli.DATASET.value == "narrativeqa":
    raise ValueError(
      "the ablation table and analyses score SQuAD EM/F1; "
      "--dataset=narrativeqa runs with pipelines.local_runner."
    )
  inputs = cli.resolve(argv_extra)
  config = inputs.config
  sweep = bool(_SWEEP.value)
  if sweep and _VARIANTS.value:
    raise ValueError(
      "--sweep trains full-A2D students of each size; it takes no "
      "--variants (run the ablations separately)."
    )
  if sweep:
    variants = ablations.sweep_variants(_SWEEP.value)
  else:
    variants = ablations.select_variants(_VARIANTS.value)
  if _CASE_ID.value and "full" not in [v.name for v in variants]:
    raise ValueError(
      f"--case_id={_CASE_ID.value!r} is read only by the full variant's "
      "analyses; add full to --variants (not with --sweep) or drop "
      "--case_id."
    )
  configs = {
    v.name: config_lib.check(config_lib.apply_overrides(config, v.overrides))
    for v in variants
  }

  # Before TensorFlow is imported: a second run into the folder fails now.
  output_dir, lock = cli.lock_output_dir(_log)
  with lock:
    return _run_locked(inputs, variants, configs, output_dir, sweep)


def _run_locked(inputs, variants, configs, output_dir: str, sweep: bool) -> int:
  from a2d_tf import ablations, kit
  from pipelines import pipeline

  config = inputs.config
  _log(
    f"output: {output_dir} (preset {cli.PRESET.value}, "
    f"{inputs.describe_dataset()}, K={config.teacher.num_teachers}, "
    f"{'sweep' if sweep else 'variants'} "
    f"{', '.join(v.name for v in variants)})"
  )
  began = time.monotonic()
  runner = kit.LocalDagRunner(os.path.join(output_dir, "artifacts"), log=_log)
  # Digests the data files once for all variants.
  shared = cli.pipeline_kwargs(inputs)
  if _CASE_ID.value:
    check_case_id(
      runner,
      pipeline.create_pipeline(configs[variants[0].name], **shared),
      _CASE_ID.value,
    )
  board = os.path.join(output_dir, "tensorboard")
  # Every pipeline is built (and its config checked against the data
  # flags) before the first step runs.
  pipes = {}
  for variant in variants:
    full = variant.name == "full" and not sweep
    if full:
      tensorboard_root = board
    else:
      tensorboard_root = os.path.join(
        board, "sweep" if sweep else "ablation", variant.name
      )
    pipes[variant.name] = pipeline.create_pipeline(
      configs[variant.name],
      tensorboard_root=tensorboard_root,
      with_export=False,
      with_analysis=full,
      case_id=_CASE_ID.value,
      **{
        **shared,
        # The ablations' students have the same architecture: the full
        # variant's evaluation times it, the others only score theirs.
        # Every sweep point is timed.
        "timing_repeats": cli.TIMING_REPEATS.value if full or sweep else 0,
      },
    )
  # Every variant's resumable steps keep their work folders.
  removed = runner.clean_work(pipes.values())
  if removed:
    _log(f"removed {len(removed)} work folders of killed runs")
  reports, fingerprints, analyzed = {}, {}, None
  for variant in variants:
    _log(f"{'point' if sweep else 'variant'} {variant.name} ({variant.label})")
    results = runner.run(pipes[variant.name])
    with open(results["evaluate"]["evaluation"].path("report.json")) as f:
      reports[variant.name] = json.load(f)
    fingerprints[variant.name] = {
      "teachers": [
        results[f"train_teacher_{k}"]["model"].fingerprint
        for k in range(config.teacher.num_teachers)
      ],
      "knowledge": results["distill_knowledge_train"]["knowledge"].fingerprint,
      "student": results["train_student"]["model"].fingerprint,
    }
    if "analyze" in results:
      analyzed = results["analyze"]["analysis"]
  if sweep:
    markdown = _write_frontier(
      ablations, output_dir, reports, variants, fingerprints
    )
    written = os.path.join(output_dir, "frontier.md")
  else:
    markdown = _write_ablation(
      ablations, output_dir, reports, variants, fingerprints, analyzed
    )
    written = os.path.join(output_dir, "ablation.md")
  # Last: the config describes the run whose outputs lie beside it.
  cli.write_config(output_dir, config)
  print(markdown, flush=True)
  _log(f"finished in {time.monotonic() - began:.0f}s; table: {written}")
  return 0


def _write_ablation(
  ablations, output_dir, reports, variants, fingerprints, analyzed
) -> str:
  """`ablation.{json,md}` and the analyses' files; returns the Markdown."""
  table = ablations.ablation_table(reports, variants, fingerprints)
  cli.write_file(
    os.path.join(output_dir, "ablation.json"),
    json.dumps(table, indent=2, ensure_ascii=False),
  )
  markdown = ablations.render_ablation_markdown(table)
  cli.write_file(os.path.join(output_dir, "ablation.md"), markdown)
  if analyzed is not None:
    for name in ANALYSIS_FILES:
      cli.copy_file(analyzed.path(name), os.path.join(output_dir, name))
  else:
    _log("no full variant: the analyses (per-type F1, case study) skipped")
  return markdown


def _write_frontier(ablations, output_dir, reports, variants, fingerprints):
  """`frontier.{json,md,png}`; returns the Markdown."""
  from a2d_tf import figures

  table = ablations.frontier_table(reports, variants, fingerprints)
  cli.write_file(
    os.path.join(output_dir, "frontier.json"),
    json.dumps(table, indent=2, ensure_ascii=False),
  )
  markdown = ablations.render_frontier_markdown(table)
  cli.write_file(os.path.join(output_dir, "frontier.md"), markdown)
  figures.plot_frontier(table, os.path.join(output_dir, "frontier.png"))
  return markdown


def main(argv: list[str]) -> int:
  return cli.main(run, argv)


if __name__ == "__main__":
  flags.FLAGS.set_default("output_dir", "a2d_ablation")
  flags.FLAGS.set_default("timing_repeats", 1)
  app.run(main, flags_parser=cli.parse_flags)
