"""Tests of the component kit: wiring, fingerprints, caching, publishing."""

import json
import os

import pytest

from a2d_tf import kit

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
