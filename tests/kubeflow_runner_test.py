"""Tests of the kit's Kubeflow adapter and of `pipelines.kubeflow_runner`.

The compile tests check the YAML's DAG against the kit pipeline's edges. Two
tests run pipelines through kfp.local's SubprocessRunner, which launches
every task as KFP's lightweight-component executor in a subprocess: a toy
kit pipeline (seconds; list inputs, JSON parameters, the kit metadata and
fingerprints, compared with `kit.LocalDagRunner`) and, marked slow, the real
pipeline compiled by the CLI on the `tiny` preset.
"""

import json
import os
import subprocess
import sys

import pytest
import yaml

from a2d_tf import config as config_lib
from a2d_tf import kit
from a2d_tf.kit import kubeflow

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IMAGE = "a2d-python:test"
# kfp.local runs the tasks but has no UI to show their display names.
LOCAL_RUN_WARNINGS = pytest.mark.filterwarnings(
  "ignore:.*have no effect in the current local runner:UserWarning"
)


@kit.component(outputs={"numbers": "Numbers"})
def produce(numbers: kit.OutputArtifact, count: int, options: dict):
  """Writes 1..count."""
  values = list(range(1, count + 1))
  with open(numbers.path("values.json"), "w") as f:
    json.dump({"values": values, "options": options}, f)
  numbers.counts["count"] = count


@kit.component(inputs={"numbers": "Numbers"}, outputs={"model": "Model"})
def fit(numbers: kit.Artifact, model: kit.OutputArtifact, scale: int):
  """Scales the numbers."""
  with open(numbers.path("values.json")) as f:
    values = json.load(f)["values"]
  with open(model.path("model.json"), "w") as f:
    json.dump({"scale": scale, "total": scale * sum(values)}, f)


@kit.component(
  inputs={"numbers": "Numbers", "models": "Model*"},
  outputs={"report": "Report"},
)
def combine(
  numbers: kit.Artifact,
  models: list,
  report: kit.OutputArtifact,
  tag: str,
):
  """Lists every model's total in input order."""
  totals = []
  for model in models:
    with open(model.path("model.json")) as f:
      totals.append(json.load(f)["total"])
  with open(numbers.path("values.json")) as f:
    options = json.load(f)["options"]
  with open(report.path("report.json"), "w") as f:
    json.dump(
      {
        "tag": tag,
        "totals": totals,
        "options": options,
        "count": numbers.counts["count"],
      },
      f,
    )
  report.counts["models"] = len(models)


def _toy_pipeline() -> kit.Pipeline:
  gen = produce(count=4, options={"a": [1, 2], "b": "x y"})
  models = [
    fit(numbers=gen.outputs["numbers"], scale=k).with_id(f"fit_{k}")
    for k in (3, 1, 2)
  ]
  report = combine(
    numbers=gen.outputs["numbers"],
    models=[m.outputs["model"] for m in models],
    tag="toy",
  )
  return kit.Pipeline("toy", [gen, *models, report])


def _tiny_pipeline(num_teachers: int) -> kit.Pipeline:
  """The pipeline the CLI builds for the test's flags."""
  from a2d_tf.data import sources
  from pipelines import pipeline

  config = config_lib.get_config(
    "tiny",
    [
      f"teacher.num_teachers={num_teachers}",
      "train.epochs=1",
      "data.synthetic_train_size=20",
      "data.synthetic_dev_size=6",
      "train.batch_size=128",
      "model.aligner_hops=1",
      "model.pointer_hops=1",
      "runtime.run_eagerly=true",
    ],
  )
  return pipeline.create_pipeline(
    config,
    input_digest=sources.files_digest({"train": "", "dev": ""}),
    glove_digest=sources.files_digest({"glove": ""}),
    timing_repeats=1,
  )


def _upstream(node: kit.Node) -> set[str]:
  ids = set()
  for value in node.inputs.values():
    for channel in value if isinstance(value, list) else [value]:
      ids.add(channel.node_id)
  return ids


def _tasks_by_node_id(spec: dict) -> dict[str, dict]:
  tasks = spec["root"]["dag"]["tasks"]
  return {task["taskInfo"]["name"]: task for task in tasks.values()}


def _check_dag(spec: dict, pipe: kit.Pipeline) -> None:
  """Checks one task per node and the kit's edges in a compiled spec."""
  tasks = spec["root"]["dag"]["tasks"]
  key_to_node = {key: task["taskInfo"]["name"] for key, task in tasks.items()}
  by_node = _tasks_by_node_id(spec)
  assert sorted(by_node) == sorted(n.id for n in pipe.nodes)
  for node in pipe.nodes:
    task = by_node[node.id]
    depends = {key_to_node[k] for k in task.get("dependentTasks", [])}
    assert depends == _upstream(node), node.id
    artifacts = task.get("inputs", {}).get("artifacts", {})
    wired = {}
    for key, value in node.inputs.items():
      channels = value if isinstance(value, list) else [value]
      names = (
        [f"{key}_{i}" for i in range(len(value))]
        if isinstance(value, list)
        else [key]
      )
      for name, channel in zip(names, channels, strict=True):
        wired[name] = (channel.node_id, channel.key)
    got = {
      name: (
        key_to_node[a["taskOutputArtifact"]["producerTask"]],
        a["taskOutputArtifact"]["outputArtifactKey"],
      )
      for name, a in artifacts.items()
    }
    assert got == wired, node.id
    parameters = {
      k: v["runtimeValue"]["constant"]
      for k, v in task.get("inputs", {}).get("parameters", {}).items()
    }
    assert parameters.pop(kubeflow.NODE_ID) == node.id
    assert {k: json.loads(v) for k, v in parameters.items()} == node.params


def _use_repo_in_subprocesses(monkeypatch):
  """kfp.local's tasks import a2d (and this module) from the checkout."""
  paths = [ROOT, os.path.join(ROOT, "tests")]
  if os.environ.get("PYTHONPATH"):
    paths.append(os.environ["PYTHONPATH"])
  monkeypatch.setenv("PYTHONPATH", os.pathsep.join(paths))
  monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
  monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "2")


def _run_locally(yaml_path: str, pipeline_root: str) -> dict:
  # The tasks import this module to find the toy components, with kfp in
  # its runtime mode where kfp.components and kfp.local cannot be imported.
  from kfp import components, local

  local.init(
    runner=local.SubprocessRunner(use_venv=False),
    pipeline_root=pipeline_root,
  )
  return components.load_component_from_file(yaml_path)().outputs


def test_compile_toy_pipeline_wires_list_inputs_in_order(tmp_path):
  pipe = _toy_pipeline()
  path = str(tmp_path / "toy.yaml")
  kubeflow.compile_pipeline(pipe, IMAGE, path)
  with open(path) as f:
    spec = yaml.safe_load(f)
  _check_dag(spec, pipe)
  combine_inputs = _tasks_by_node_id(spec)["combine"]["inputs"]["artifacts"]
  assert sorted(combine_inputs) == [
    "models_0",
    "models_1",
    "models_2",
    "numbers",
  ]
  assert set(spec["root"]["outputDefinitions"]["artifacts"]) == {
    "combine_report"
  }
  for executor in spec["deploymentSpec"]["executors"].values():
    assert executor["container"]["image"] == IMAGE


def test_compile_tiny_pipeline_has_one_task_per_teacher(tmp_path):
  pipe = _tiny_pipeline(num_teachers=3)
  path = str(tmp_path / "a2d.yaml")
  kubeflow.compile_pipeline(pipe, IMAGE, path)
  with open(path) as f:
    spec = yaml.safe_load(f)
  _check_dag(spec, pipe)
  by_node = _tasks_by_node_id(spec)
  teachers = sorted(n for n in by_node if n.startswith("train_teacher_"))
  assert teachers == ["train_teacher_0", "train_teacher_1", "train_teacher_2"]
  seeds = [
    json.loads(
      by_node[t]["inputs"]["parameters"]["seed"]["runtimeValue"]["constant"]
    )
    for t in teachers
  ]
  assert len(set(seeds)) == 3
  assert set(spec["root"]["outputDefinitions"]["artifacts"]) == {
    "evaluate_evaluation",
    "export_serving",
    "validate_model_blessing",
  }
  # The kit's code version is in every command, so a code change is a
  # KFP cache miss and a stale image fails loudly.
  for node in pipe.nodes:
    component_ref = by_node[node.id]["componentRef"]["name"]
    label = spec["components"][component_ref]["executorLabel"]
    source = spec["deploymentSpec"]["executors"][label]["container"]["command"][
      3
    ]
    assert node.component.code_version in source


@kit.component(
  inputs={"numbers": "Numbers"}, outputs={"note": "Note"}, always_run=True
)
def announce(numbers: kit.Artifact, note: kit.OutputArtifact):
  """Records where the numbers are (an effect outside the artifact)."""
  note.counts["numbers"] = numbers.uri


def test_always_run_component_compiles_without_kfp_caching(tmp_path):
  gen = produce(count=2, options={})
  pipe = kit.Pipeline("p", [gen, announce(numbers=gen.outputs["numbers"])])
  path = str(tmp_path / "p.yaml")
  kubeflow.compile_pipeline(pipe, IMAGE, path)
  with open(path) as f:
    tasks = _tasks_by_node_id(yaml.safe_load(f))
  assert tasks["produce"]["cachingOptions"] == {"enableCache": True}
  assert not tasks["announce"]["cachingOptions"].get("enableCache")


def test_entrypoint_rejects_another_code_version():
  with pytest.raises(RuntimeError, match="rebuild the image"):
    kubeflow.entrypoint(__name__, "fit", {}, "0" * 16)


def test_kfp_component_requires_list_sizes():
  with pytest.raises(ValueError, match="models"):
    kubeflow.kfp_component(combine, {}, IMAGE)


@LOCAL_RUN_WARNINGS
def test_local_run_toy_pipeline_matches_local_dag_runner(tmp_path, monkeypatch):
  _use_repo_in_subprocesses(monkeypatch)
  pipe = _toy_pipeline()
  path = str(tmp_path / "toy.yaml")
  kubeflow.compile_pipeline(pipe, IMAGE, path)
  outputs = _run_locally(path, str(tmp_path / "kfp_root"))
  report = outputs["combine_report"]
  with open(os.path.join(report.path, "report.json")) as f:
    got = json.load(f)
  assert got == {
    "tag": "toy",
    "totals": [30, 10, 20],
    "options": {"a": [1, 2], "b": "x y"},
    "count": 4,
  }
  with open(os.path.join(report.path, kit.METADATA_FILE)) as f:
    meta = json.load(f)
  assert meta["type"] == "Report"
  assert meta["counts"] == {"models": 3}
  assert report.metadata["a2d_type"] == "Report"

  expected = kit.LocalDagRunner(str(tmp_path / "kit_root"), log=lambda _: None)
  local = expected.run(_toy_pipeline())
  local_report = local["combine"]["report"]
  with open(local_report.path("report.json")) as f:
    assert json.load(f) == got
  # One metadata writer: the same record on both runners, but for the
  # directories the inputs were read from; the producer is the node id.
  kfp_inputs = meta.pop("inputs")
  local_meta = dict(local_report.metadata)
  assert set(kfp_inputs) == set(local_meta.pop("inputs"))
  assert meta == local_meta
  fits = ("fit_3", "fit_1", "fit_2")
  for uri, node_id in zip(kfp_inputs["models"], fits, strict=True):
    with open(os.path.join(uri, kit.METADATA_FILE)) as f:
      fit_meta = json.load(f)
    assert fit_meta["producer"] == node_id
    want = dict(local[node_id]["model"].metadata)
    assert set(fit_meta.pop("inputs")) == set(want.pop("inputs"))
    assert fit_meta == want


def test_cli_without_image_fails_with_one_line():
  result = subprocess.run(
    [sys.executable, "-m", "pipelines.kubeflow_runner", "--preset=tiny"],
    cwd=ROOT,
    env={**os.environ, "PYTHONPATH": ROOT},
    capture_output=True,
    text=True,
    timeout=120,
  )
  assert result.returncode == 1
  assert result.stderr.strip().splitlines()[-1] == (
    "a2d: error: --image is required: an image with a2d installed."
  )


@pytest.mark.slow
@LOCAL_RUN_WARNINGS
def test_cli_compiles_then_local_run_writes_report(tmp_path, monkeypatch):
  path = tmp_path / "a2d_pipeline.yaml"
  result = subprocess.run(
    [
      sys.executable,
      "-m",
      "pipelines.kubeflow_runner",
      f"--output={path}",
      f"--image={IMAGE}",
      "--preset=tiny",
      "--num_teachers=2",
      "--override=train.epochs=1",
      "--override=data.synthetic_train_size=20",
      "--override=data.synthetic_dev_size=6",
      # One batch per epoch and set, steps not traced: a faster test.
      "--override=train.batch_size=128",
      # One aligning and one pointer hop: half the graph per model.
      "--override=model.aligner_hops=1",
      "--override=model.pointer_hops=1",
      "--override=runtime.run_eagerly=true",
      "--timing_repeats=1",
    ],
    cwd=ROOT,
    env={**os.environ, "PYTHONPATH": ROOT, "CUDA_VISIBLE_DEVICES": ""},
    capture_output=True,
    text=True,
    timeout=300,
  )
  assert result.returncode == 0, result.stderr[-3000:]
  with open(path) as f:
    spec = yaml.safe_load(f)
  pipe = _tiny_pipeline(num_teachers=2)
  _check_dag(spec, pipe)

  _use_repo_in_subprocesses(monkeypatch)
  outputs = _run_locally(str(path), str(tmp_path / "kfp_root"))
  evaluation = outputs["evaluate_evaluation"]
  with open(os.path.join(evaluation.path, "report.json")) as f:
    report = json.load(f)
  assert set(report["sets"]) >= {"dev"}
  for system in ("single", "ensemble", "student"):
    scores = report["sets"]["dev"][system]
    assert 0.0 <= scores["exact_match"] <= 100.0
    assert 0.0 <= scores["f1"] <= 100.0
  assert report["inference"]["k"] == 2
  assert report["inference"]["speedup"] > 0
  assert report["parameters"]["teacher"] > 0
  assert os.path.exists(os.path.join(evaluation.path, "report.md"))
  serving = outputs["export_serving"]
  with open(os.path.join(serving.path, kit.METADATA_FILE)) as f:
    version = json.load(f)["counts"]["version"]
  assert os.path.exists(
    os.path.join(serving.path, str(version), "saved_model.pb")
  )
  # No push on Kubeflow: the blessing is a run output, with the report.
  blessing = outputs["validate_model_blessing"]
  with open(os.path.join(blessing.path, "blessing.json")) as f:
    verdict = json.load(f)
  assert verdict["infra"]["blessed"], verdict["infra"]["reason"]
  assert {c["set"] for c in verdict["model"]["criteria"]} == set(report["sets"])
  assert verdict["blessed"] == verdict["model"]["blessed"]
  with open(os.path.join(blessing.path, "report.json")) as f:
    assert json.load(f)["blessing"] == verdict
