"""Runs the a2d pipeline on this machine.

  python -m pipelines.local_runner                      # embedded corpus
  python -m pipelines.local_runner --dataset=json \\
      --train_file=train-v1.1.json --dev_file=dev-v1.1.json \\
      --eval_file=addsent=sample1k-HCVerifyAll.json --preset=small

Each component's output is cached under `<output_dir>/artifacts/` by a
fingerprint of its code, parameters and inputs: a re-run skips finished
steps, and a killed run resumes (training from its last epoch) and ends
with the artifacts of an uninterrupted run. One run at a time per output
folder (`<output_dir>/.a2d.lock`). TensorBoard logs go to
`<output_dir>/tensorboard/`, the pipeline's push step publishes the serving
model to `<output_dir>/serving/<version>/` when it is blessed (the report's
blessing section and the last line say why not otherwise), and a run that
succeeds writes the report to `<output_dir>/report.{json,md}` and its
resolved config to `<output_dir>/config.json`, last.
"""

from __future__ import annotations

import os
import time

from absl import app, flags

from pipelines import cli

# The shared flags show in `--help` as this CLI's own.
flags.adopt_module_key_flags(cli)


def _log(line: str) -> None:
  print(f"[a2d {time.strftime('%H:%M:%S')}] {line}", flush=True)


def run(argv_extra: list[str]) -> int:
  """Works out paths and config, builds the pipeline and runs it."""
  cli.quiet_logging()
  # Flags and files are checked before TensorFlow and Beam are imported.
  inputs = cli.resolve(argv_extra)
  # Before TensorFlow is imported: a second run into the folder fails now.
  output_dir, lock = cli.lock_output_dir(_log)
  with lock:
    return _run_locked(inputs, output_dir)


def _run_locked(inputs: cli.RunInputs, output_dir: str) -> int:
  from a2d_tf import kit
  from pipelines import pipeline

  config = inputs.config
  _log(
    f"output: {output_dir} (preset {cli.PRESET.value}, "
    f"{inputs.describe_dataset()}, K={config.teacher.num_teachers})"
  )
  pipe = pipeline.create_pipeline(
    config,
    tensorboard_root=os.path.join(output_dir, "tensorboard"),
    push_destination=os.path.join(output_dir, "serving"),
    **cli.pipeline_kwargs(inputs),
  )
  began = time.monotonic()
  runner = kit.LocalDagRunner(os.path.join(output_dir, "artifacts"), log=_log)
  removed = runner.clean_work([pipe])
  if removed:
    _log(f"removed {len(removed)} work folders of killed runs")
  results = runner.run(pipe)
  # The evaluation's report with the blessing section.
  reported = results["validate_model"]["blessing"]
  for name in ("report.json", "report.md"):
    cli.copy_file(reported.path(name), os.path.join(output_dir, name))
  # Last: the config describes the run whose outputs lie beside it.
  cli.write_config(output_dir, config)
  with open(os.path.join(output_dir, "report.md")) as f:
    print(f.read(), flush=True)
  _log(
    f"finished in {time.monotonic() - began:.0f}s; report: "
    f"{os.path.join(output_dir, 'report.md')}; "
    f"{_pushed_line(results['push']['pushed'].counts)}"
  )
  return 0


def _pushed_line(counts: dict) -> str:
  """What the push step did, for the last line of the run."""
  if counts["status"] != "not_blessed":
    return f"serving model: {counts['destination']}"
  kept = (
    f"{counts['destination']} keeps the model an earlier run pushed"
    if counts.get("kept")
    else f"no serving model at {counts['destination']}"
  )
  return f"nothing pushed (not blessed): {counts['reason']}; {kept}"


def main(argv: list[str]) -> int:
  return cli.main(run, argv)


if __name__ == "__main__":
  app.run(main, flags_parser=cli.parse_flags)
