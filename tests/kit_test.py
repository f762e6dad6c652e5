"""Tests of the component kit: wiring, fingerprints, caching, publishing."""

import json
import os
import pathlib
import shutil

import pytest

from a2d_tf import kit
from a2d_tf.kit import code

CALLS = []


@kit.component(outputs={"numbers": "Numbers"})
def produce(numbers: kit.OutputArtifact, count: int):
  CALLS.append(("produce", count))
  with open(numbers.path("data.json"), "w") as f:
    json.dump(list(range(count)), f)
  numbers.counts["n"] = count


@kit.component(inputs={"numbers": "Numbers"}, outputs={"total": "Total"})
def add(numbers: kit.Artifact, total: kit.OutputArtifact, scale: float):
  CALLS.append(("add", scale))
  with open(numbers.path("data.json")) as f:
    values = json.load(f)
  with open(total.path("total.json"), "w") as f:
    json.dump(sum(values) * scale, f)


@kit.component(inputs={"numbers": "Numbers"}, outputs={"out": "Total"})
def explode(numbers: kit.Artifact, out: kit.OutputArtifact):
  with open(out.path("partial.txt"), "w") as f:
    f.write("half")
  raise RuntimeError("killed")


def _pipeline(count=4, scale=1.0):
  gen = produce(count=count)
  summed = add(numbers=gen.outputs["numbers"], scale=scale)
  return kit.Pipeline("test", [gen, summed])


def _read_total(results):
  with open(results["add"]["total"].path("total.json")) as f:
    return json.load(f)


def test_run_publishes_artifacts_with_metadata(tmp_path):
  CALLS.clear()
  results = kit.LocalDagRunner(str(tmp_path)).run(_pipeline())
  assert _read_total(results) == 6
  artifact = results["produce"]["numbers"]
  assert artifact.uri == os.path.join(
    str(tmp_path), "produce", "numbers", artifact.fingerprint
  )
  meta = json.loads(open(artifact.path("metadata.json")).read())
  assert meta["type"] == "Numbers"
  assert meta["producer"] == "produce"
  assert meta["parameters"] == {"count": 4}
  assert meta["counts"] == {"n": 4}
  assert not [p for p in os.listdir(tmp_path / "produce") if "work" in p]


def test_second_run_is_fully_cached(tmp_path):
  CALLS.clear()
  kit.LocalDagRunner(str(tmp_path)).run(_pipeline())
  lines = []
  runner = kit.LocalDagRunner(str(tmp_path), log=lines.append)
  results = runner.run(_pipeline())
  assert CALLS == [("produce", 4), ("add", 1.0)]
  assert runner.statuses == {"produce": "cached", "add": "cached"}
  assert all("cached" in line for line in lines)
  assert _read_total(results) == 6


def test_changed_parameter_reruns_only_dependents(tmp_path):
  CALLS.clear()
  kit.LocalDagRunner(str(tmp_path)).run(_pipeline(scale=1.0))
  runner = kit.LocalDagRunner(str(tmp_path))
  results = runner.run(_pipeline(scale=2.0))
  assert runner.statuses == {"produce": "cached", "add": "ran"}
  assert _read_total(results) == 12
  runner = kit.LocalDagRunner(str(tmp_path))
  runner.run(_pipeline(count=5, scale=2.0))
  assert runner.statuses == {"produce": "ran", "add": "ran"}


def test_failed_node_leaves_no_published_artifact(tmp_path):
  gen = produce(count=2)
  bad = explode(numbers=gen.outputs["numbers"])
  with pytest.raises(RuntimeError, match="killed"):
    kit.LocalDagRunner(str(tmp_path)).run(kit.Pipeline("p", [gen, bad]))
  out_dir = tmp_path / "explode" / "out"
  assert not out_dir.exists() or not os.listdir(out_dir)
  work = [p for p in os.listdir(tmp_path / "explode") if p.startswith(".work")]
  assert len(work) == 1


def test_wiring_errors_are_clear():
  gen = produce(count=2)
  with pytest.raises(TypeError, match="unexpected argument 'colour'"):
    add(numbers=gen.outputs["numbers"], scale=1.0, colour=3)
  with pytest.raises(TypeError, match="missing inputs"):
    add(scale=1.0)
  with pytest.raises(TypeError, match="JSON-able"):
    produce(count=object())
  late = add(numbers=gen.outputs["numbers"], scale=1.0)
  with pytest.raises(ValueError, match="does not run before it"):
    kit.Pipeline("p", [late, gen])


@kit.component(inputs={"parts": "Numbers*"}, outputs={"total": "Total"})
def gather(parts: list, total: kit.OutputArtifact):
  values = []
  for part in parts:
    with open(part.path("data.json")) as f:
      values.extend(json.load(f))
  with open(total.path("total.json"), "w") as f:
    json.dump(sum(values), f)


def test_list_input_gathers_many_upstream_outputs(tmp_path):
  first = produce(count=3).with_id("first")
  second = produce(count=4).with_id("second")
  both = gather(parts=[first.outputs["numbers"], second.outputs["numbers"]])
  results = kit.LocalDagRunner(str(tmp_path)).run(
    kit.Pipeline("p", [first, second, both])
  )
  with open(results["gather"]["total"].path("total.json")) as f:
    assert json.load(f) == 3 + 6
  with pytest.raises(TypeError, match="takes a list"):
    gather(parts=first.outputs["numbers"])


@kit.component(outputs={"numbers": "Numbers"}, runtime_params=("log_dir",))
def produce_logged(numbers: kit.OutputArtifact, count: int, log_dir: str):
  CALLS.append(("produce_logged", log_dir))
  with open(numbers.path("data.json"), "w") as f:
    json.dump(list(range(count)), f)


def test_runtime_params_do_not_change_the_fingerprint(tmp_path):
  CALLS.clear()
  kit.LocalDagRunner(str(tmp_path)).run(
    kit.Pipeline("p", [produce_logged(count=2, log_dir="a")])
  )
  runner = kit.LocalDagRunner(str(tmp_path))
  runner.run(kit.Pipeline("p", [produce_logged(count=2, log_dir="b")]))
  assert runner.statuses == {"produce_logged": "cached"}
  assert CALLS == [("produce_logged", "a")]
  with pytest.raises(TypeError, match="no parameters"):
    kit.component(outputs={"x": "X"}, runtime_params=("nope",))(lambda x: None)


def test_metadata_names_the_node_and_its_component(tmp_path):
  first = produce(count=3).with_id("first")
  results = kit.LocalDagRunner(str(tmp_path)).run(kit.Pipeline("p", [first]))
  artifact = results["first"]["numbers"]
  meta = json.loads(open(artifact.path(kit.METADATA_FILE)).read())
  assert meta["producer"] == "first"
  assert meta["component"] == "produce"
  assert meta["code_version"] == produce.code_version
  assert meta["fingerprint"] == artifact.fingerprint
  assert artifact.uri == os.path.join(
    str(tmp_path), "first", "numbers", artifact.fingerprint
  )


@kit.component(
  inputs={"numbers": "Numbers"},
  outputs={"receipt": "Receipt"},
  always_run=True,
)
def publish_numbers(numbers: kit.Artifact, receipt: kit.OutputArtifact):
  CALLS.append(("publish_numbers", numbers.fingerprint))
  receipt.counts["published"] = numbers.fingerprint


def test_always_run_component_runs_again_on_cached_inputs(tmp_path):
  CALLS.clear()

  def pipe():
    gen = produce(count=2)
    return kit.Pipeline(
      "p", [gen, publish_numbers(numbers=gen.outputs["numbers"])]
    )

  kit.LocalDagRunner(str(tmp_path)).run(pipe())
  runner = kit.LocalDagRunner(str(tmp_path))
  results = runner.run(pipe())
  assert runner.statuses == {"produce": "cached", "publish_numbers": "ran"}
  fp = results["produce"]["numbers"].fingerprint
  assert CALLS == [
    ("produce", 2),
    ("publish_numbers", fp),
    ("publish_numbers", fp),
  ]
  # Re-published over its own earlier artifact, not beside it.
  receipts = os.listdir(tmp_path / "publish_numbers" / "receipt")
  assert receipts == [results["publish_numbers"]["receipt"].fingerprint]


ROOT = pathlib.Path(__file__).resolve().parent.parent


def _closure(module, root=ROOT):
  path = root.joinpath(*module.split(".")).with_suffix(".py")
  return code.closure(module, path, root)


def test_code_version_is_the_static_import_closure():
  teacher = _closure("components.train_teacher")
  # Its own module, its package, and what it imports, transitively
  # (`training` imports `models.reader`, which imports the layers).
  for label in (
    "components/train_teacher.py",
    "components/__init__.py",
    "a2d_tf/__init__.py",
    "a2d_tf/training.py",
    "a2d_tf/models/reader.py",
    "a2d_tf/layers/__init__.py",
    "a2d_tf/layers/fusion.py",
  ):
    assert label in teacher, label
  for label in ("a2d_tf/figures.py", "a2d_tf/report.py", "a2d_tf/serving.py"):
    assert label not in teacher, label
  assert not [label for label in teacher if label.startswith("a2d_tf/kit/")]
  assert "a2d_tf/figures.py" in _closure("components.analyze")
  assert "a2d_tf/report.py" in _closure("components.evaluate")


def _copy_tree(tmp_path):
  root = tmp_path / "tree"
  for package in code.PROJECT_PACKAGES:
    shutil.copytree(
      ROOT / package,
      root / package,
      ignore=shutil.ignore_patterns("__pycache__"),
    )
  return root


def test_code_version_changes_only_with_the_closure(tmp_path):
  root = _copy_tree(tmp_path)

  def teacher_version():
    return code.digest(_closure("components.train_teacher", root))

  before = teacher_version()
  # A copy of the same sources has the same version as the checkout.
  assert before == code.digest(_closure("components.train_teacher"))
  for name in ("figures.py", "report.py"):
    with open(root / "a2d_tf" / name, "a") as f:
      f.write("\n# edited\n")
  assert teacher_version() == before
  with open(root / "a2d_tf" / "layers" / "fusion.py", "a") as f:
    f.write("\n# edited\n")
  assert teacher_version() != before


def test_closure_follows_relative_and_in_function_imports(tmp_path):
  package = tmp_path / "a2d_tf"
  (package / "sub").mkdir(parents=True)
  (package / "__init__.py").write_text("")
  (package / "sub" / "__init__.py").write_text("")
  (package / "sub" / "main.py").write_text(
    "import os\n"
    "from . import near\n"
    "def lazy():\n"
    "  from ..far import thing\n"
    "  from a2d_tf.kit import dsl\n"
  )
  (package / "sub" / "near.py").write_text("X = 1\n")
  (package / "far.py").write_text("thing = 2\n")
  # The kit runs steps; its own code is in no step's version.
  (package / "kit").mkdir()
  (package / "kit" / "__init__.py").write_text("")
  (package / "kit" / "dsl.py").write_text("")
  found = code.closure("a2d_tf.sub.main", package / "sub" / "main.py", tmp_path)
  assert sorted(found) == [
    "a2d_tf/__init__.py",
    "a2d_tf/far.py",
    "a2d_tf/sub/__init__.py",
    "a2d_tf/sub/main.py",
    "a2d_tf/sub/near.py",
  ]


@kit.component(outputs={"state": "State"}, resumable=True)
def resumable_step(state: kit.OutputArtifact, steps: int):
  """Counts to `steps`, one step per call, keeping its progress in `state`."""
  progress = state.path("progress.json")
  done = json.load(open(progress)) if os.path.exists(progress) else 0
  CALLS.append(("resumable_step", done))
  if done + 1 < steps:
    with open(progress, "w") as f:
      json.dump(done + 1, f)
    raise RuntimeError("killed")
  state.counts["resumed_from"] = done


def test_resumable_step_finds_what_a_killed_run_left(tmp_path):
  CALLS.clear()
  pipe = kit.Pipeline("p", [resumable_step(steps=3)])
  for _ in range(2):
    with pytest.raises(RuntimeError, match="killed"):
      kit.LocalDagRunner(str(tmp_path)).run(pipe)
  results = kit.LocalDagRunner(str(tmp_path)).run(pipe)
  assert CALLS == [("resumable_step", n) for n in (0, 1, 2)]
  assert results["resumable_step"]["state"].counts["resumed_from"] == 2


def test_other_steps_start_from_an_emptied_work_directory(tmp_path):
  gen = produce(count=2)
  pipe = kit.Pipeline("p", [gen])
  runner = kit.LocalDagRunner(str(tmp_path))
  work = runner.work_uri("produce", kit.plan(pipe)["produce"])
  os.makedirs(os.path.join(work, "numbers"))
  # What a run killed half-way through this step left.
  with open(os.path.join(work, "numbers", "half.partial"), "w") as f:
    f.write("x")
  results = runner.run(pipe)
  assert sorted(os.listdir(results["produce"]["numbers"].uri)) == [
    "data.json",
    "metadata.json",
  ]


def test_clean_work_keeps_only_planned_resumable_work(tmp_path):
  runner = kit.LocalDagRunner(str(tmp_path))
  planned = kit.Pipeline("p", [resumable_step(steps=2), produce(count=2)])
  other = kit.Pipeline("q", [resumable_step(steps=5)])
  fps, other_fps = kit.plan(planned), kit.plan(other)
  keep = runner.work_uri("resumable_step", fps["resumable_step"])
  kept_by_other = runner.work_uri("resumable_step", other_fps["resumable_step"])
  stale = [
    runner.work_uri("resumable_step", "0123456789abcdef"),  # old code
    runner.work_uri("produce", fps["produce"]),  # not resumable
    runner.work_uri("gone", "fedcba9876543210"),  # no such node now
  ]
  for path in [keep, kept_by_other, *stale]:
    os.makedirs(os.path.join(path, "out"))
  published = runner.output_uri("produce", "numbers", fps["produce"])
  os.makedirs(published)
  removed = runner.clean_work([planned, other])
  assert sorted(removed) == sorted(stale)
  assert os.path.isdir(keep) and os.path.isdir(kept_by_other)
  assert os.path.isdir(published)
  assert runner.clean_work([planned]) == [kept_by_other]
