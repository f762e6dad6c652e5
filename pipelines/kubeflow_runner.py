"""Compiles the a2d pipeline into a Kubeflow Pipelines v2 YAML.

  python -m pipelines.kubeflow_runner --image=REGISTRY/a2d:TAG \\
      --output=a2d_pipeline.yaml --preset=small --num_teachers=4

The same `kit.Pipeline` that `local_runner` runs (built by
`pipeline.create_pipeline`) is translated generically: every kit component
becomes one KFP component and every kit node one KFP task, so each teacher is
a task of its own and a cluster trains them in parallel. Node ids become the
tasks' display names.

Each task runs in `--image` (a container image with a2d and its requirements
installed, importable as `pipelines.kubeflow_runner`). Its command is KFP's
lightweight-component launcher (`kfp.dsl.executor_main`) on a two-line module
that asks `entrypoint` here for the component's executor function, which
maps KFP's artifacts onto the kit's: each KFP artifact is a directory holding
the files and the `metadata.json` the kit writes. Parameters travel as JSON
strings. A list input such as `teachers: "Model*"` becomes one KFP input per
element (`teachers_0`, `teachers_1`, ...).

Data paths (`--train_file`, `--glove_file`, ...) must be readable from the
pipeline's pods (e.g. gs:// or a mounted volume). Where this machine can read
them too, their digest keys the cache of `example_gen` and `transform`.
"""

from __future__ import annotations

import importlib
import inspect
import json
import os
import typing
from collections.abc import Callable, Mapping
from typing import Any

from absl import app, flags
from kfp import dsl

from a2d_tf import kit
from pipelines import cli

# The shared flags show in `--help` as this CLI's own.
flags.adopt_module_key_flags(cli)

# KFP's executor imports this module with _KFP_RUNTIME=true, where only the
# runtime half of kfp.dsl exists: the compiler and component factory are
# imported inside the compile-time functions below.

# Where the executor module lives inside the image: the launcher imports it.
ENTRYPOINT_MODULE = "pipelines.kubeflow_runner"
# The same launcher script KFP writes for `@dsl.component` functions, so
# the KFP backend and kfp.local's SubprocessRunner run these tasks as they
# run any lightweight Python component.
_LAUNCHER = """\
program_path=$(mktemp -d)

printf "%s" "$0" > "$program_path/ephemeral_component.py"
_KFP_RUNTIME=true python3 -m kfp.dsl.executor_main \
    --component_module_path "$program_path/ephemeral_component.py" "$@"
"""
_ENTRY_SOURCE = """\
from {entry_module} import entrypoint

{name} = entrypoint({module!r}, {name!r}, {list_sizes!r}, {code_version!r})
"""


def _kfp_name(key: str, index: int) -> str:
  return f"{key}_{index}"


def _signature(
  component: kit.Component, list_sizes: Mapping[str, int]
) -> inspect.Signature:
  """The KFP-facing signature of a kit component.

  Inputs are `Input[Artifact]` (one per element for list inputs), outputs
  `Output[Artifact]` and every parameter a JSON string.
  """
  names = []
  annotations = []
  for key, declared in component.inputs.items():
    if declared.endswith("*"):
      names += [_kfp_name(key, i) for i in range(list_sizes[key])]
      annotations += [dsl.Input[dsl.Artifact]] * list_sizes[key]
    else:
      names.append(key)
      annotations.append(dsl.Input[dsl.Artifact])
  names += list(component.outputs)
  annotations += [dsl.Output[dsl.Artifact]] * len(component.outputs)
  names += list(component.params)
  annotations += [str] * len(component.params)
  duplicates = sorted({n for n in names if names.count(n) > 1})
  if duplicates:
    raise ValueError(
      f"{component.name}: KFP input names {duplicates} collide; rename the "
      "component's inputs or parameters."
    )
  return inspect.Signature(
    [
      inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY, annotation=a)
      for n, a in zip(names, annotations, strict=True)
    ]
  )


def _executor_fn(
  component: kit.Component, list_sizes: Mapping[str, int]
) -> Callable[..., None]:
  """A function KFP's executor can call: KFP artifacts in, kit call out."""
  signature = _signature(component, list_sizes)

  def execute(**kwargs: Any) -> None:
    _execute(component, list_sizes, kwargs)

  execute.__name__ = component.name
  execute.__qualname__ = component.name
  execute.__doc__ = component.fn.__doc__
  execute.__signature__ = signature
  execute.__annotations__ = {
    p.name: p.annotation for p in signature.parameters.values()
  }
  return execute


def entrypoint(
  module: str,
  name: str,
  list_sizes: Mapping[str, int],
  code_version: str,
) -> Callable[..., None]:
  """Returns the executor function of a kit component, inside a KFP task.

  Args:
    module: Module defining the component, e.g. "components.transform".
    name: The component's name (its function's name).
    list_sizes: Element count of each list input.
    code_version: The component's code version when the pipeline was
      compiled; the image must run the same code.

  Returns:
    The function `kfp.dsl.executor_main` calls with the task's artifacts
    and parameters.

  Raises:
    RuntimeError: The image's a2d code differs from the compiled pipeline's.
  """
  component = getattr(importlib.import_module(module), name)
  if component.code_version != code_version:
    raise RuntimeError(
      f"{name}: the image runs a2d code version {component.code_version}, "
      f"the pipeline was compiled from {code_version}; rebuild the image "
      "from the checkout that compiled the pipeline (or recompile)."
    )
  return _executor_fn(component, list_sizes)


def _read_input(artifact: dsl.Artifact, type_name: str) -> kit.Artifact:
  path = artifact.path
  with open(os.path.join(path, kit.METADATA_FILE), encoding="utf-8") as f:
    metadata = json.load(f)
  if metadata["type"] != type_name:
    raise TypeError(
      f"{path} holds a {metadata['type']} artifact, expected {type_name}."
    )
  return kit.Artifact(type_name, path, metadata["fingerprint"], metadata)


def _execute(
  component: kit.Component,
  list_sizes: Mapping[str, int],
  kwargs: dict[str, Any],
) -> None:
  """Runs a kit component on KFP artifacts and writes the kit metadata."""
  inputs: dict[str, kit.Artifact | list[kit.Artifact]] = {}
  for key, declared in component.inputs.items():
    type_name = declared.rstrip("*")
    if declared.endswith("*"):
      inputs[key] = [
        _read_input(kwargs[_kfp_name(key, i)], type_name)
        for i in range(list_sizes[key])
      ]
    else:
      inputs[key] = _read_input(kwargs[key], type_name)
  params = {key: json.loads(kwargs[key]) for key in component.params}
  outputs = {}
  for key, type_name in component.outputs.items():
    os.makedirs(kwargs[key].path, exist_ok=True)
    outputs[key] = kit.OutputArtifact(type_name, kwargs[key].path)
  input_fingerprints = {
    k: [a.fingerprint for a in v] if isinstance(v, list) else v.fingerprint
    for k, v in inputs.items()
  }
  fp = kit.fingerprint(
    kit.Node(component.name, component, {}, params), input_fingerprints
  )
  component.fn(**inputs, **outputs, **params)
  for key, out in outputs.items():
    meta = {
      "type": out.type_name,
      "producer": component.name,
      "component": component.name,
      "code_version": component.code_version,
      "fingerprint": fp,
      "parameters": params,
      "inputs": {
        k: [a.uri for a in v] if isinstance(v, list) else v.uri
        for k, v in inputs.items()
      },
      "counts": out.counts,
    }
    with open(out.path(kit.METADATA_FILE), "w", encoding="utf-8") as f:
      json.dump(meta, f, indent=2, sort_keys=True)
    kwargs[key].metadata.update(
      {"a2d_type": out.type_name, "fingerprint": fp, **out.counts}
    )


def kfp_component(
  component: kit.Component,
  list_sizes: Mapping[str, int],
  image: str,
) -> Any:
  """Translates one kit component into a KFP component.

  Args:
    component: The kit component.
    list_sizes: Element count of each list input (e.g. {"teachers": 4}).
    image: Container image with a2d installed.

  Returns:
    A KFP component (`PythonComponent`) whose inputs are the component's
    artifacts and JSON string parameters, and whose outputs are its
    artifacts.
  """
  from kfp.dsl import component_factory, python_component, structures

  missing = {k for k, v in component.inputs.items() if v.endswith("*")} - set(
    list_sizes
  )
  if missing:
    raise ValueError(f"{component.name}: no sizes for list inputs {missing}.")
  fn = _executor_fn(component, list_sizes)
  spec = component_factory.extract_component_interface(fn)
  source = _ENTRY_SOURCE.format(
    entry_module=ENTRYPOINT_MODULE,
    module=component.fn.__module__,
    name=component.name,
    list_sizes=dict(sorted(list_sizes.items())),
    code_version=component.code_version,
  )
  spec.implementation = structures.Implementation(
    container=structures.ContainerSpecImplementation(
      image=image,
      command=["sh", "-ec", _LAUNCHER, source],
      args=[
        "--executor_input",
        dsl.PIPELINE_TASK_EXECUTOR_INPUT_PLACEHOLDER,
        "--function_to_execute",
        component.name,
      ],
    )
  )
  return python_component.PythonComponent(spec, python_func=fn)


def output_name(node_id: str, key: str) -> str:
  """The pipeline output carrying a sink node's output `key`."""
  return f"{node_id}_{key}"


def to_kfp_pipeline(
  pipeline: kit.Pipeline, image: str, description: str = ""
) -> Any:
  """Translates a kit pipeline into a KFP pipeline (a graph component).

  Every node becomes a task named (display name) after the node id; node
  parameters become constant JSON string arguments. The outputs no node
  consumes (the evaluation report, the serving model) are the pipeline's
  outputs, named `<node_id>_<key>`.

  Args:
    pipeline: The kit pipeline, e.g. from `pipeline.create_pipeline`.
    image: Container image with a2d installed.
    description: Pipeline description shown by Kubeflow.

  Returns:
    The KFP pipeline, ready for `compiler.Compiler().compile` or kfp.local.
  """
  consumed = set()
  for node in pipeline.nodes:
    for value in node.inputs.values():
      for channel in value if isinstance(value, list) else [value]:
        consumed.add((channel.node_id, channel.key))
  sinks = [
    (node.id, key)
    for node in pipeline.nodes
    for key in node.component.outputs
    if (node.id, key) not in consumed
  ]
  outputs_type = typing.NamedTuple(
    "Outputs", [(output_name(n, k), dsl.Artifact) for n, k in sinks]
  )

  def build():
    components = {}
    tasks = {}
    for node in pipeline.nodes:
      sizes = {k: len(v) for k, v in node.inputs.items() if isinstance(v, list)}
      cache_key = (node.component.name, tuple(sorted(sizes.items())))
      if cache_key not in components:
        components[cache_key] = kfp_component(node.component, sizes, image)
      arguments = {}
      for key, value in node.inputs.items():
        if isinstance(value, list):
          for i, channel in enumerate(value):
            upstream = tasks[channel.node_id].outputs[channel.key]
            arguments[_kfp_name(key, i)] = upstream
        else:
          arguments[key] = tasks[value.node_id].outputs[value.key]
      for key, value in node.params.items():
        arguments[key] = json.dumps(value, sort_keys=True)
      task = components[cache_key](**arguments)
      task.set_display_name(node.id)
      tasks[node.id] = task
    return outputs_type(*(tasks[n].outputs[k] for n, k in sinks))

  build.__name__ = pipeline.name
  build.__qualname__ = pipeline.name
  build.__signature__ = inspect.Signature([], return_annotation=outputs_type)
  return dsl.pipeline(name=pipeline.name, description=description or None)(
    build
  )


def compile_pipeline(
  pipeline: kit.Pipeline, image: str, output: str, description: str = ""
) -> None:
  """Writes the KFP v2 YAML of a kit pipeline to `output`."""
  from kfp import compiler

  compiler.Compiler().compile(
    to_kfp_pipeline(pipeline, image, description), output
  )


_OUTPUT = flags.DEFINE_string(
  "output", "a2d_pipeline.yaml", "Where the pipeline YAML goes."
)
_IMAGE = flags.DEFINE_string(
  "image",
  "",
  "Container image with a2d and requirements.txt installed (required).",
)
_TENSORBOARD_ROOT = flags.DEFINE_string(
  "tensorboard_root",
  "",
  "TensorBoard log root the pods can write (e.g. gs://bucket/a2d/tb); "
  '"" keeps the logs inside the model artifacts.',
)


def run(argv_extra: list[str]) -> int:
  """Resolves the config, builds the kit pipeline and compiles it."""
  if not _IMAGE.value:
    raise ValueError("--image is required: an image with a2d installed.")
  if flags.FLAGS["output_dir"].present:
    raise ValueError(
      "--output_dir is for the local runners; on Kubeflow artifacts go to "
      "the pipeline root, and --output names the YAML."
    )
  # The data files are paths the pods read; they need not exist here.
  inputs = cli.resolve(argv_extra, check_files=False)
  config = inputs.config

  from pipelines import pipeline

  pipe = pipeline.create_pipeline(
    config,
    tensorboard_root=_TENSORBOARD_ROOT.value,
    **cli.pipeline_kwargs(inputs),
  )
  output = os.path.abspath(_OUTPUT.value)
  os.makedirs(os.path.dirname(output), exist_ok=True)
  compile_pipeline(
    pipe,
    _IMAGE.value,
    output,
    description=(
      f"a2d: K={config.teacher.num_teachers} teachers distilled into one "
      f"student (preset {cli.PRESET.value}, dataset {cli.DATASET.value})."
    ),
  )
  print(
    f"a2d: wrote {output} ({len(pipe.nodes)} tasks, "
    f"{config.teacher.num_teachers} teachers, image {_IMAGE.value})",
    flush=True,
  )
  return 0


def main(argv: list[str]) -> int:
  return cli.main(run, argv)


if __name__ == "__main__":
  app.run(main, flags_parser=cli.parse_flags)
