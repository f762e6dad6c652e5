"""Kubeflow Pipelines v2 adapter of the kit: one KFP task per kit node.

A kit pipeline (e.g. `pipelines.pipeline.create_pipeline`) is translated
generically: every kit component becomes one KFP component and every node
one KFP task, so each teacher is a task of its own and a cluster trains
them in parallel. Node ids become the tasks' display names.

Each task runs in an image with a2d installed. Its command is KFP's
lightweight-component launcher (`kfp.dsl.executor_main`) on a two-line
module that asks `entrypoint` here for the component's executor function,
which maps KFP's artifacts onto the kit's: each KFP artifact is a directory
holding the files and the `metadata.json` that `metadata.execute` writes,
the same writer `LocalDagRunner` uses (the node id reaches the task as the
`NODE_ID` parameter, so `producer` is the node id here too). Parameters
travel as JSON strings. A list input such as `teachers: "Model*"` becomes
one KFP input per element (`teachers_0`, `teachers_1`, ...). An
`always_run` component's tasks have KFP caching turned off.
"""

from __future__ import annotations

import importlib
import inspect
import json
import os
import typing
from collections.abc import Callable, Mapping
from typing import Any

from kfp import dsl

from a2d_tf.kit import dsl as kit
from a2d_tf.kit import metadata

# KFP's executor imports this module with _KFP_RUNTIME=true, where only the
# runtime half of kfp.dsl exists: the compiler and component factory are
# imported inside the compile-time functions below.

# Where the executor module lives inside the image: the launcher imports it.
ENTRYPOINT_MODULE = "a2d_tf.kit.kubeflow"
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


# The task parameter that carries the node id (the metadata's `producer`).
NODE_ID = "kit_node_id"


def _kfp_name(key: str, index: int) -> str:
  return f"{key}_{index}"


def _signature(
  component: kit.Component, list_sizes: Mapping[str, int]
) -> inspect.Signature:
  """The KFP-facing signature of a kit component.

  Inputs are `Input[Artifact]` (one per element for list inputs), outputs
  `Output[Artifact]`, every parameter a JSON string, and `NODE_ID` the
  node's id.
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
  names += [*component.params, NODE_ID]
  annotations += [str] * (len(component.params) + 1)
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


def _execute(
  component: kit.Component,
  list_sizes: Mapping[str, int],
  kwargs: dict[str, Any],
) -> None:
  """Runs a kit component on KFP artifacts through `metadata.execute`."""
  inputs: dict[str, kit.Artifact | list[kit.Artifact]] = {}
  for key, declared in component.inputs.items():
    type_name = declared.rstrip("*")
    if declared.endswith("*"):
      inputs[key] = [
        metadata.read_input(kwargs[_kfp_name(key, i)].path, type_name)
        for i in range(list_sizes[key])
      ]
    else:
      inputs[key] = metadata.read_input(kwargs[key].path, type_name)
  params = {key: json.loads(kwargs[key]) for key in component.params}
  outputs = {}
  for key, type_name in component.outputs.items():
    os.makedirs(kwargs[key].path, exist_ok=True)
    outputs[key] = kit.OutputArtifact(type_name, kwargs[key].path)
  input_fingerprints = {
    k: [a.fingerprint for a in v] if isinstance(v, list) else v.fingerprint
    for k, v in inputs.items()
  }
  node_id = kwargs[NODE_ID]
  fp = kit.fingerprint(
    kit.Node(node_id, component, {}, params), input_fingerprints
  )
  written = metadata.execute(node_id, component, inputs, outputs, params, fp)
  for key, meta in written.items():
    kwargs[key].metadata.update(
      {"a2d_type": meta["type"], "fingerprint": fp, **meta["counts"]}
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
  parameters become constant JSON string arguments, and the node id the
  `NODE_ID` argument. The outputs no node consumes, and those the kit
  pipeline names in `Pipeline.outputs` (the evaluation report, the serving
  model, its blessing), are the pipeline's outputs, named
  `<node_id>_<key>`, in node order.

  Args:
    pipeline: The kit pipeline, e.g. from `pipeline.create_pipeline`.
    image: Container image with a2d installed.
    description: Pipeline description shown by Kubeflow.

  Returns:
    The KFP pipeline, ready for `compiler.Compiler().compile` or kfp.local.
  """
  consumed = {
    (channel.node_id, channel.key)
    for node in pipeline.nodes
    for channel in kit.input_channels(node.inputs)
  }
  sinks = [
    (node.id, key)
    for node in pipeline.nodes
    for key in node.component.outputs
    if (node.id, key) not in consumed
    or any((c.node_id, c.key) == (node.id, key) for c in pipeline.outputs)
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
      arguments[NODE_ID] = node.id
      task = components[cache_key](**arguments)
      task.set_display_name(node.id)
      if node.component.always_run:
        task.set_caching_options(False)
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
