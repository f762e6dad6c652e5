"""End-to-end tests of `python -m pipelines.local_runner` on the tiny preset.

One slow test drives the real CLI in subprocesses: it kills the run with
SIGKILL while the second teacher trains, re-runs it (the first teacher is
cached, the second resumes from its last finished epoch), checks every
artifact and the report, and runs a third time, under another runtime
setting, to see every step cached but the push, which finds the serving
model already in place.
"""

import glob
import json
import os
import signal
import subprocess
import sys
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMALL_RUN = [
  "--preset=tiny",
  "--num_teachers=2",
  "--override=data.synthetic_train_size=24",
  "--override=data.synthetic_dev_size=6",
  # Epochs 2-3 of the second teacher are the window for the kill.
  "--override=train.epochs=3",
  # Fewer batches per epoch and set: fewer traces, a faster test. Steps
  # stay compiled: over 3 epochs tracing costs less than eager steps.
  "--override=train.batch_size=128",
  "--timing_repeats=1",
]


def _env():
  env = dict(os.environ)
  env["PYTHONPATH"] = ROOT
  env["PYTHONUNBUFFERED"] = "1"
  env["CUDA_VISIBLE_DEVICES"] = ""
  return env


def _run(args, timeout=900):
  return subprocess.run(
    [sys.executable, "-m", "pipelines.local_runner", *args],
    cwd=ROOT,
    env=_env(),
    capture_output=True,
    text=True,
    timeout=timeout,
  )


def _wait_for(predicate, process, timeout):
  deadline = time.monotonic() + timeout
  while time.monotonic() < deadline:
    if predicate():
      return
    if process.poll() is not None:
      raise AssertionError(f"runner exited early with {process.returncode}")
    time.sleep(0.1)
  raise AssertionError("timed out waiting for the runner")


@pytest.mark.slow
def test_killed_run_resumes_then_everything_is_cached(tmp_path):
  out = tmp_path / "run"
  log_path = tmp_path / "first.log"
  with open(log_path, "w") as log:
    process = subprocess.Popen(
      [
        sys.executable,
        "-m",
        "pipelines.local_runner",
        f"--output_dir={out}",
        *SMALL_RUN,
      ],
      cwd=ROOT,
      env=_env(),
      stdout=log,
      stderr=subprocess.STDOUT,
    )
  try:
    # BackupAndRestore writes its state at the end of each epoch, the epoch
    # record last: kill the run once the second teacher has a complete
    # backup of a finished epoch.
    backup = str(out / "artifacts" / "train_teacher_1" / ".work-*" / "model")
    _wait_for(
      lambda: glob.glob(
        os.path.join(backup, "backup", "training_metadata.json")
      ),
      process,
      timeout=900,
    )
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
  finally:
    if process.poll() is None:
      process.kill()
  first = log_path.read_text()
  assert "train_teacher_0: done" in first
  assert "train_teacher_1: done" not in first
  assert not (out / "report.json").exists()
  assert not glob.glob(str(out / "artifacts" / "train_teacher_1" / "model"))

  second = _run([f"--output_dir={out}", *SMALL_RUN])
  assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
  log = second.stdout
  assert "train_teacher_0: cached" in log
  assert "example_gen: cached" in log and "transform: cached" in log
  teacher_1 = log.split("train_teacher_1: start")[1].split(
    "train_teacher_1: done"
  )[0]
  assert "Epoch 3/3" in teacher_1 and "Epoch 1/3" not in teacher_1

  report = json.loads((out / "report.json").read_text())
  assert set(report["sets"]) == {"dev", "adversarial"}
  for name, scored in report["sets"].items():
    systems = {s: scored[s] for s in ("single", "ensemble", "student")}
    for result in [*systems.values(), *scored["teachers"]]:
      assert 0.0 <= result["exact_match"] <= result["f1"] <= 100.0
      assert result["worst_case"] == (name == "adversarial")
    assert len(scored["teachers"]) == 2
    assert scored["single"]["mean"]["f1"] == pytest.approx(
      sum(t["f1"] for t in scored["teachers"]) / 2
    )
    for comparison in ("student_minus_single", "student_minus_ensemble"):
      low, high = scored["intervals"][comparison]["f1"]
      assert low <= scored["intervals"][comparison]["difference"]["f1"] <= high
  diagnostics = report["knowledge_diagnostics"]
  assert set(diagnostics) == {"train", "dev"}
  for split in diagnostics.values():
    assert len(split["teachers"]) == 2
    assert 0.0 < split["mean_argmax_prob"] <= 1.0
  # Models were selected on the validation split, never on dev.
  assert report["training"]["selected_on"] == "validation"
  for counts in report["training"]["models"].values():
    assert 1 <= counts["best_epoch"] <= counts["epochs_run"]
  assert report["parameters"]["student"] == report["parameters"]["teacher"]
  # The report's config is what was computed with, not how it ran.
  assert "runtime" not in report["config"]
  assert report["config"]["train"]["epochs"] == 3
  timing = report["inference"]
  assert timing["k"] == 2
  assert timing["speedup"] == pytest.approx(
    timing["ensemble_s"] / timing["student_s"]
  )
  assert "| student |" in (out / "report.md").read_text()
  assert json.loads((out / "config.json").read_text())["teacher"] == {
    "num_teachers": 2,
    "top_k": 4,
  }
  assert (out / "serving" / "1" / "saved_model.pb").exists()
  assert "push: done" in log and "pushed.status=published" in log
  for run in ("teacher_0", "teacher_1", "student"):
    assert glob.glob(
      str(out / "tensorboard" / run / "**" / "*tfevents*"), recursive=True
    ), run
  evaluation = glob.glob(
    str(out / "artifacts" / "evaluate" / "evaluation" / "*")
  )
  assert len(evaluation) == 1
  predictions = os.listdir(os.path.join(evaluation[0], "predictions"))
  assert sorted(predictions) == sorted(
    f"{s}_{n}.json"
    for s in ("teacher_0", "teacher_1", "single", "ensemble", "student")
    for n in ("dev", "adversarial")
  )
  knowledge = glob.glob(
    str(out / "artifacts" / "distill_knowledge_train" / "knowledge" / "*")
  )
  meta = json.loads(open(os.path.join(knowledge[0], "metadata.json")).read())
  assert meta["counts"]["num_examples"] > 0
  assert not glob.glob(str(out / "artifacts" / "*" / ".work-*"))

  # How the run executes is no part of any cache key.
  third = _run(
    [f"--output_dir={out}", *SMALL_RUN, "--override=runtime.run_eagerly=true"]
  )
  assert third.returncode == 0, third.stderr[-3000:]
  progress = [x for x in third.stdout.splitlines() if "] [" in x]
  steps = [line for line in progress if "] push: " not in line]
  assert len(steps) == 9
  assert all(": cached (" in line for line in steps)
  pushes = [line for line in progress if "] push: " in line]
  assert len(pushes) == 2 and "pushed.status=unchanged" in pushes[1]

  # A student with half the teachers' hidden units learns from the same
  # knowledge: teachers and knowledge stay cached; it exports and serves.
  hidden = report["config"]["model"]["hidden"]
  fourth = _run(
    [
      f"--output_dir={out}",
      *SMALL_RUN,
      f"--override=student_model.hidden={hidden // 2}",
    ]
  )
  assert fourth.returncode == 0, fourth.stderr[-3000:]
  log = fourth.stdout
  for step in (
    "example_gen",
    "transform",
    "train_teacher_0",
    "train_teacher_1",
    "distill_knowledge_train",
    "distill_knowledge_validation",
  ):
    assert f"] {step}: cached (" in log, step
  for step in ("train_student", "evaluate", "export"):
    assert f"] {step}: done" in log, step
  assert "pushed.status=published" in log
  small = json.loads((out / "report.json").read_text())
  assert small["parameters"]["student_model"] == {"hidden": hidden // 2}
  assert small["parameters"]["student"] < 0.6 * small["parameters"]["teacher"]
  assert small["inference"]["speedup_over_single"] == pytest.approx(
    small["inference"]["single_s"] / small["inference"]["student_s"]
  )
  assert "Student speedup over one teacher" in (out / "report.md").read_text()
  served = subprocess.run(
    [sys.executable, "-c", _SERVE],
    cwd=ROOT,
    env=_env(),
    capture_output=True,
    text=True,
    timeout=300,
    input=str(out / "serving" / "1"),
  )
  assert served.returncode == 0, served.stderr[-3000:]
  reply = json.loads(served.stdout.strip().splitlines()[-1])
  assert reply["hidden"] == hidden // 2
  assert reply["answer"] and 0 <= reply["start_char"] < reply["end_char"]


# Loads the pushed SavedModel with TensorFlow alone and answers a question;
# prints the answer and the hidden size of the exported reader's weights.
_SERVE = """
import json, sys
import tensorflow as tf
model = tf.saved_model.load(sys.stdin.read().strip())
out = model.signatures["serving_default"](
  question=tf.constant(["Where did Mafith Society hold an exhibition?"]),
  context=tf.constant(
    ["Mafith Society showed its work in Gairbelle in 1897."]
  ),
)
kernels = [v for v in model.variables if "recurrent_kernel" in v.name]
print(json.dumps({
  "answer": out["answer"].numpy()[0].decode(),
  "start_char": int(out["start_char"].numpy()[0]),
  "end_char": int(out["end_char"].numpy()[0]),
  "hidden": int(kernels[0].shape[0]),
}))
"""


@pytest.mark.parametrize(
  "args, message",
  [
    (["--preset=huge"], "a2d: error:"),
    (["--override=distill.temperature"], "expected section.field=value"),
    (["--override=nope.x=1"], "unknown section 'nope'"),
    (["--override=train.jit_compile=true"], "runtime.jit_compile"),
    (["--override=runtime.distribution=ps"], "runtime.distribution='ps'"),
    (["--eval_file=addsent"], "expects NAME=PATH"),
    (["--dataset=json"], "needs --train_file and --dev_file"),
    (
      ["--dataset=json", "--train_file=/no/train.json", "--dev_file=/no/d"],
      "/no/train.json",
    ),
    (["--num_teachers=0"], "a2d: error:"),
    (["--no_such_flag"], "a2d: error:"),
    (["stray"], "unexpected arguments: stray"),
  ],
)
def test_bad_flags_and_paths_end_with_one_line_error(tmp_path, args, message):
  result = _run([f"--output_dir={tmp_path}", *args], timeout=120)
  assert result.returncode != 0
  lines = [x for x in result.stderr.splitlines() if x.strip()]
  assert len(lines) == 1, result.stderr
  assert lines[0].startswith("a2d: error:")
  assert message in lines[0]
  assert not (tmp_path / "artifacts").exists()
