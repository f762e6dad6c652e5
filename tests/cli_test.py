"""Tests of the flags the three pipeline CLIs share (`pipelines/cli.py`)."""

import os
import subprocess
import sys

import pytest
from absl import flags

from a2d_tf import config as config_lib
from pipelines import ablation, cli, kubeflow_runner, local_runner

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_shared_flags_are_defined_once_for_the_three_runners():
  # The three runners were imported into this process above (absl refuses
  # a flag name defined twice): the shared flags belong to pipelines.cli,
  # each runner defines only its own.
  owner = flags.FLAGS.find_module_defining_flag
  for name in ("preset", "override", "dataset", "num_teachers", "output_dir"):
    assert owner(name) == "pipelines.cli", name
  assert owner("variants") == "pipelines.ablation"
  assert owner("image") == "pipelines.kubeflow_runner"
  for runner in (local_runner, ablation, kubeflow_runner):
    assert runner.main.__module__ == runner.__name__


def test_preset_flag_offers_the_presets_of_the_config():
  assert flags.FLAGS["preset"].parser.enum_values == list(config_lib.PRESETS)


def test_config_problems_end_with_one_line_each(capsys):
  def run(argv_extra):
    config = config_lib.get_config(
      "tiny",
      ["runtime.distribution=horovod", "runtime.steps_per_execution=0"],
    )
    return config_lib.check(config) and 0

  assert cli.main(run, ["prog"]) == 1
  assert capsys.readouterr().err.splitlines() == [
    "a2d: error: runtime.distribution='horovod': must be one of 'default', "
    "'mirrored', 'multi_worker', 'tpu'",
    "a2d: error: runtime.steps_per_execution=0: must be >= 1",
  ]


@pytest.fixture
def parsed_flags():
  """Parses flags for a test and restores the defaults afterwards."""

  def parse(*args):
    flags.FLAGS.unparse_flags()
    flags.FLAGS(["prog", *args])

  yield parse
  flags.FLAGS.unparse_flags()


def test_resolve_builds_config_with_overrides_and_teachers(parsed_flags):
  parsed_flags(
    "--preset=tiny",
    "--num_teachers=5",
    "--override=distill.temperature=3",
    "--eval_file=addsent=/pods/addsent.json",
  )
  inputs = cli.resolve([], check_files=False)
  assert inputs.config.teacher.num_teachers == 5
  assert inputs.config.distill.temperature == 3.0
  assert inputs.config.model.hidden == 16
  assert inputs.eval_files == {"addsent": "/pods/addsent.json"}
  assert inputs.data_files == {
    "train": "",
    "dev": "",
    "addsent": "/pods/addsent.json",
  }
  kwargs = cli.pipeline_kwargs(inputs)
  assert kwargs["dataset"] == "synthetic"
  assert kwargs["eval_files"] == {"addsent": "/pods/addsent.json"}
  assert kwargs["timing_repeats"] == 3


def test_resolve_checks_files_only_when_asked(parsed_flags, tmp_path):
  missing = str(tmp_path / "nope.json")
  parsed_flags("--dataset=json", f"--train_file={missing}", "--dev_file=x")
  with pytest.raises(ValueError, match="nope.json"):
    cli.resolve([])
  assert cli.resolve([], check_files=False).data_files["train"] == missing


def test_resolve_narrativeqa_names_the_three_files(parsed_flags, tmp_path):
  parsed_flags("--dataset=narrativeqa", f"--narrativeqa_dir={tmp_path}")
  # The directory exists but holds no file: the first missing one is named.
  with pytest.raises(ValueError, match="documents.csv"):
    cli.resolve([])
  inputs = cli.resolve([], check_files=False)
  assert inputs.data_files["NarrativeQA questions"] == str(
    tmp_path / "qaps.csv"
  )
  assert inputs.data_files["NarrativeQA summaries"] == str(
    tmp_path / "third_party" / "wikipedia" / "summaries.csv"
  )
  kwargs = cli.pipeline_kwargs(inputs)
  assert kwargs["dataset"] == "narrativeqa"
  assert kwargs["narrativeqa_dir"] == str(tmp_path)


@pytest.mark.parametrize(
  "args, message",
  [
    (["--dataset=narrativeqa"], "needs --narrativeqa_dir"),
    (
      ["--dataset=narrativeqa", "--narrativeqa_dir=/no/such/dir"],
      "--narrativeqa_dir /no/such/dir: no such directory",
    ),
    (
      ["--dataset=narrativeqa", "--narrativeqa_dir=/d", "--train_file=t"],
      "--train_file is read only with --dataset=json, not --dataset=narrative",
    ),
    (["--narrativeqa_dir=/d"], "read by --dataset=narrativeqa only"),
    (
      [
        "--dataset=narrativeqa",
        "--narrativeqa_dir=/d",
        "--override=data.adversarial_questions=10",
      ],
      "data.adversarial_questions=10",
    ),
  ],
)
def test_resolve_rejects_bad_narrativeqa_flags(parsed_flags, args, message):
  parsed_flags(*args)
  with pytest.raises(ValueError, match=message):
    cli.resolve([])


def test_resolve_rejects_stray_arguments(parsed_flags):
  parsed_flags()
  with pytest.raises(ValueError, match="unexpected arguments: extra"):
    cli.resolve(["extra"])


def _cli(module, *args):
  return subprocess.run(
    [sys.executable, "-m", module, *args],
    cwd=ROOT,
    env={**os.environ, "PYTHONPATH": ROOT, "CUDA_VISIBLE_DEVICES": ""},
    capture_output=True,
    text=True,
    timeout=120,
  )


@pytest.mark.parametrize(
  "module, args, message",
  [
    ("pipelines.ablation", ["--preset=huge"], "a2d: error:"),
    ("pipelines.ablation", ["--dataset=json"], "needs --train_file"),
    (
      "pipelines.ablation",
      ["--dataset=narrativeqa", "--narrativeqa_dir=/d"],
      "runs with pipelines.local_runner",
    ),
    (
      "pipelines.kubeflow_runner",
      ["--image=a2d:1", "--output_dir=/tmp/x"],
      "--output_dir is for the local runners",
    ),
    (
      "pipelines.kubeflow_runner",
      ["--image=a2d:1", "--override=nope.x=1"],
      "unknown section 'nope'",
    ),
    (
      "pipelines.kubeflow_runner",
      ["--image=a2d:1", "--override=train.run_eagerly=true"],
      "use --override=runtime.run_eagerly=true",
    ),
    (
      "pipelines.ablation",
      ["--override=runtime.mixed_precision=fp8"],
      "runtime.mixed_precision='fp8': must be one of",
    ),
  ],
)
def test_other_clis_end_bad_flags_with_one_line(module, args, message):
  result = _cli(module, *args)
  assert result.returncode != 0
  lines = [x for x in result.stderr.splitlines() if x.strip()]
  assert lines and lines[-1].startswith("a2d: error:"), result.stderr
  assert message in lines[-1]


@pytest.mark.parametrize(
  "module, own_flag",
  [
    ("pipelines.local_runner", "--timing_repeats"),
    ("pipelines.ablation", "--variants"),
    ("pipelines.kubeflow_runner", "--image"),
  ],
)
def test_help_lists_shared_and_own_flags(module, own_flag):
  result = _cli(module, "--help")  # absl prints the help and exits 1
  assert "Try --helpfull" in result.stdout, result.stderr
  for flag in ("--dataset", "--max_train_examples", "--override", own_flag):
    assert flag in result.stdout, (module, flag)
