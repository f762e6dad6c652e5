"""End-to-end tests of `python -m pipelines.local_runner` on the tiny preset.

One slow test drives the real CLI in subprocesses: it kills the run with
SIGKILL while the second teacher trains, re-runs it (the first teacher is
cached, the second resumes from its last finished epoch), checks every
artifact and the report, and runs a third time, under another runtime
setting and with a blessing threshold the student misses: every step is
cached but the blessing and the push, nothing is pushed, the earlier model
stays, exit 0; and a fourth time with a student of half the teachers'
hidden units, which trains from the cached teachers and knowledge, exports
and serves (replacing the earlier model).
"""

import glob
import json
import os
import signal
import subprocess
import sys
import time

import pytest
from absl import flags

from a2d_tf import kit, publish
from a2d_tf.config import get_config
from pipelines import local_runner
from pipelines import pipeline as pipeline_lib

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
  # One aligning and one pointer hop: half the graph to trace per model,
  # a third off each run; every step and artifact is the same.
  "--override=model.aligner_hops=1",
  "--override=model.pointer_hops=1",
  "--timing_repeats=1",
  # Students this small are no better than their teachers: bless on the
  # infra check alone, so the push publishes (a later run tightens it).
  "--override=export.min_f1_vs_single=-100",
  "--override=export.min_f1_vs_ensemble=-100",
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
  assert not (out / "config.json").exists()  # written by a success only
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
  # The report's config is exactly what the evaluate step received: no
  # class defaults for the sections it does not read, nor the runtime.
  assert report["config_sections"] == [
    "data",
    "distill",
    "model",
    "teacher",
    "train",
  ]
  assert sorted(report["config"]) == report["config_sections"]
  assert report["config"]["train"]["epochs"] == 3
  assert report["config"]["teacher"]["num_teachers"] == 2
  timing = report["inference"]
  assert timing["k"] == 2
  assert timing["speedup"] == pytest.approx(
    timing["ensemble_s"] / timing["student_s"]
  )
  assert "| student |" in (out / "report.md").read_text()
  written = json.loads((out / "config.json").read_text())
  assert written["teacher"] == {"num_teachers": 2, "top_k": 4}
  assert written["train"] == report["config"]["train"]
  assert "export" in written and "runtime" in written
  assert os.path.getsize(out / ".a2d.lock") == 0  # released
  assert (out / "serving" / "1" / "saved_model.pb").exists()
  assert "push: done" in log and "pushed.status=published" in log
  blessing = report["blessing"]
  assert blessing["blessed"] and blessing["infra"]["blessed"]
  assert {c["set"] for c in blessing["model"]["criteria"]} == {
    "dev",
    "adversarial",
  }
  assert "## Blessing" in (out / "report.md").read_text()
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

  # A threshold the student misses, under another runtime setting: how a
  # run executes is no part of any cache key, so every step is cached but
  # the blessing, which is judged again; nothing is pushed, the run still
  # succeeds and its last line says why.
  published = publish.published_fingerprint(str(out / "serving" / "1"))
  third = _run(
    [
      f"--output_dir={out}",
      *SMALL_RUN,
      "--override=runtime.run_eagerly=true",
      "--override=export.min_f1_vs_single=50",
    ]
  )
  assert third.returncode == 0, third.stderr[-3000:]
  last = third.stdout.strip().splitlines()[-1]
  # Every set fails at 50 points; the reason lists them in report order.
  assert "nothing pushed (not blessed): model not blessed (" in last
  assert "dev: student F1 - single mean = " in last
  assert "keeps the model an earlier run pushed" in last
  assert "pushed.status=not_blessed" in third.stdout
  lines = third.stdout.splitlines()
  cached = [x for x in lines if "] [" in x and ": cached (" in x]
  started = [x for x in lines if "] [" in x and ": start (" in x]
  assert len(cached) == 9 and len(started) == 2, started
  assert "] validate_model: start" in started[0]
  assert "] push: start" in started[1]
  assert publish.published_fingerprint(str(out / "serving" / "1")) == published
  blessing = json.loads((out / "report.json").read_text())["blessing"]
  assert not blessing["blessed"] and blessing["infra"]["blessed"]
  failed = [c for c in blessing["model"]["criteria"] if not c["passed"]]
  assert {c["criterion"] for c in failed} == {"student_minus_single"}
  assert "**not blessed**" in (out / "report.md").read_text()

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
  # serving/1 held the full-size student: the push replaces it whole.
  assert "pushed.status=replaced" in log
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


# Loads the pushed SavedModel with TensorFlow and tensorflow-text alone and
# answers a question; prints the answer and the exported reader's hidden size.
_SERVE = """
import json, sys
import tensorflow as tf
import tensorflow_text  # registers the tokenizer ops the signature runs
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
    (["--dataset=narrativeqa"], "needs --narrativeqa_dir"),
    (
      ["--dataset=narrativeqa", "--narrativeqa_dir=/no/nqa"],
      "--narrativeqa_dir /no/nqa: no such directory",
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


def test_second_run_into_a_busy_folder_fails_at_once_naming_the_pid(tmp_path):
  holder = subprocess.Popen(
    [
      sys.executable,
      "-c",
      "import sys, time; from a2d_tf.kit import lock; "
      "lock.RunLock(sys.argv[1]).acquire(); print('held', flush=True); "
      "time.sleep(300)",
      str(tmp_path),
    ],
    cwd=ROOT,
    env=_env(),
    stdout=subprocess.PIPE,
    text=True,
  )
  try:
    assert holder.stdout.readline().strip() == "held"
    began = time.monotonic()
    result = _run([f"--output_dir={tmp_path}", "--preset=tiny"], timeout=120)
    seconds = time.monotonic() - began
  finally:
    holder.kill()
    holder.wait()
  assert result.returncode == 1
  lines = [x for x in result.stderr.splitlines() if x.strip()]
  assert len(lines) == 1, result.stderr
  assert lines[0].startswith(f"a2d: error: {tmp_path} is in use by another")
  assert f"pid {holder.pid} " in lines[0]
  assert not (tmp_path / "artifacts").exists()
  assert seconds < 60  # before any step (and before TensorFlow loads)


@kit.component(outputs={"blessing": "Blessing"})
def _fake_gate(blessing: kit.OutputArtifact, fail: bool):
  if fail:
    raise ValueError("the step failed")
  for name in ("report.json", "report.md"):
    with open(blessing.path(name), "w") as f:
      f.write("{}" if name.endswith("json") else "report")


@kit.component(outputs={"pushed": "PushedModel"})
def _fake_push(pushed: kit.OutputArtifact):
  pushed.counts["destination"] = pushed.uri
  pushed.counts["status"] = "published"


@pytest.fixture(name="fake_pipeline")
def fixture_fake_pipeline(monkeypatch):
  """`local_runner` runs a two-step pipeline whose first step may fail.

  The first step stands for the gate (`validate_model`), whose blessing
  carries the report the runner copies out.
  """
  outcome = {"fail": False}

  def create_pipeline(config, **kwargs):
    return kit.Pipeline(
      "fake",
      [
        _fake_gate(fail=outcome["fail"]).with_id("validate_model"),
        _fake_push().with_id("push"),
      ],
    )

  monkeypatch.setattr(pipeline_lib, "create_pipeline", create_pipeline)
  yield outcome
  flags.FLAGS.unparse_flags()


def test_config_json_is_written_only_by_a_run_that_succeeded(
  tmp_path, fake_pipeline, capsys
):
  argv = ["prog", f"--output_dir={tmp_path}", "--preset=tiny"]
  flags.FLAGS.unparse_flags()
  rest = flags.FLAGS(argv)  # what absl's app.run hands to main
  fake_pipeline["fail"] = True
  assert local_runner.main(rest) == 1
  assert "the step failed" in capsys.readouterr().err
  assert not (tmp_path / "config.json").exists()
  assert not (tmp_path / "report.json").exists()
  fake_pipeline["fail"] = False
  assert local_runner.main(rest) == 0
  written = (tmp_path / "config.json").read_text()
  assert written == get_config("tiny").to_json() + "\n"
  assert (tmp_path / "report.json").read_text() == "{}"
  # A later run that fails leaves the good run's records as they were.
  flags.FLAGS.unparse_flags()
  rest = flags.FLAGS([*argv, "--override=train.epochs=7"])
  fake_pipeline["fail"] = True
  assert local_runner.main(rest) == 1
  assert (tmp_path / "config.json").read_text() == written
  assert os.path.getsize(tmp_path / ".a2d.lock") == 0
