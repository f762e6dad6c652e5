"""Trains the paper's ablations from the same teachers, and its analyses.

  python -m pipelines.ablation --preset=small --output_dir=a2d_ablation
  python -m pipelines.ablation --dataset=json --train_file=train-v1.1.json \\
      --dev_file=dev-v1.1.json --eval_file=addsent=sample1k-HCVerifyAll.json

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
_CASE_ID = flags.DEFINE_string(
  "case_id",
  "",
  "Dev question id of the case-study figure (default: the first question "
  "the student answers exactly); checked against the dev split before "
  "any model trains.",
)

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
  variants = ablations.select_variants(_VARIANTS.value)
  if _CASE_ID.value and "full" not in [v.name for v in variants]:
    raise ValueError(
      f"--case_id={_CASE_ID.value!r} is read only by the full variant's "
      "analyses; add full to --variants or drop --case_id."
    )
  configs = {
    v.name: config_lib.check(config_lib.apply_overrides(config, v.overrides))
    for v in variants
  }

  # Before TensorFlow is imported: a second run into the folder fails now.
  output_dir, lock = cli.lock_output_dir(_log)
  with lock:
    return _run_locked(inputs, variants, configs, output_dir)


def _run_locked(inputs, variants, configs, output_dir: str) -> int:
  from a2d_tf import ablations, kit
  from pipelines import pipeline

  config = inputs.config
  _log(
    f"output: {output_dir} (preset {cli.PRESET.value}, "
    f"{inputs.describe_dataset()}, K={config.teacher.num_teachers}, variants "
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
  pipes = {
    variant.name: pipeline.create_pipeline(
      configs[variant.name],
      tensorboard_root=board
      if variant.name == "full"
      else os.path.join(board, "ablation", variant.name),
      with_export=False,
      with_analysis=variant.name == "full",
      case_id=_CASE_ID.value,
      **{
        **shared,
        # Every student has the same architecture: the full variant's
        # evaluation times it; the others only score theirs.
        "timing_repeats": cli.TIMING_REPEATS.value
        if variant.name == "full"
        else 0,
      },
    )
    for variant in variants
  }
  # Every variant's resumable steps keep their work folders.
  removed = runner.clean_work(pipes.values())
  if removed:
    _log(f"removed {len(removed)} work folders of killed runs")
  reports, fingerprints, analyzed = {}, {}, None
  for variant in variants:
    _log(f"variant {variant.name} ({variant.label})")
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
    if variant.name == "full":
      analyzed = results["analyze"]["analysis"]
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
  # Last: the config describes the run whose outputs lie beside it.
  cli.write_config(output_dir, config)
  print(markdown, flush=True)
  _log(
    f"finished in {time.monotonic() - began:.0f}s; table: "
    f"{os.path.join(output_dir, 'ablation.md')}"
  )
  return 0


def main(argv: list[str]) -> int:
  return cli.main(run, argv)


if __name__ == "__main__":
  flags.FLAGS.set_default("output_dir", "a2d_ablation")
  flags.FLAGS.set_default("timing_repeats", 1)
  app.run(main, flags_parser=cli.parse_flags)
