"""The component model: artifacts, components, nodes, pipelines, fingerprints.

TFX itself cannot be installed on this stack, so a2d carries the few pieces
of it that a pipeline needs, in TFX's shape:

* `component`: a decorator that turns a top-level function with typed
  artifacts and primitive parameters into a `Component`. Calling the
  component with upstream outputs and parameters returns a `Node` of a
  pipeline, as a TFX component constructor does.
* `Pipeline`: an ordered list of nodes, each reading only earlier ones.
* An input type ending in `*` (e.g. `"Model*"`) takes a list of channels,
  as the K teacher models feeding the knowledge step.
* `fingerprint` / `plan`: a node's fingerprint hashes its component's code
  version (`code`: its module and the project modules it imports), its
  parameters (less its runtime parameters) and its inputs' fingerprints,
  so changing one parameter re-runs only the nodes that depend on it.

The runners (`local.LocalDagRunner`, `kubeflow`) execute nodes through
`metadata.execute`, which writes every artifact's `metadata.json`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import json
import os
from collections.abc import Callable
from typing import Any

from a2d_tf.kit import code


@dataclasses.dataclass(frozen=True)
class Artifact:
  """A published, immutable component output.

  Attributes:
    type_name: Artifact type, e.g. "Examples" or "Model".
    uri: Directory holding the artifact's files.
    fingerprint: Hash identifying the producing node run.
    metadata: The contents of `metadata.json`.
  """

  type_name: str
  uri: str
  fingerprint: str
  metadata: dict[str, Any]

  def path(self, *parts: str) -> str:
    return os.path.join(self.uri, *parts)

  @property
  def counts(self) -> dict[str, Any]:
    return self.metadata.get("counts", {})


@dataclasses.dataclass
class OutputArtifact:
  """An output being written: a directory plus counts to publish with it.

  Attributes:
    type_name: Artifact type.
    uri: Directory to write into (a work directory until published).
    counts: Key figures the component reports (example counts, sizes, ...).
  """

  type_name: str
  uri: str
  counts: dict[str, Any] = dataclasses.field(default_factory=dict)

  def path(self, *parts: str) -> str:
    return os.path.join(self.uri, *parts)


@dataclasses.dataclass(frozen=True)
class Channel:
  """A reference to one output of an upstream node."""

  node_id: str
  key: str
  type_name: str


@dataclasses.dataclass
class Node:
  """One component invocation in a pipeline."""

  id: str
  component: Component
  inputs: dict[str, Channel | list[Channel]]
  params: dict[str, Any]

  @property
  def outputs(self) -> dict[str, Channel]:
    return {
      key: Channel(self.id, key, type_name)
      for key, type_name in self.component.outputs.items()
    }

  def with_id(self, node_id: str) -> Node:
    self.id = node_id
    return self


@dataclasses.dataclass(frozen=True)
class Component:
  """A function with typed artifact inputs/outputs and primitive parameters."""

  name: str
  fn: Callable[..., Any]
  inputs: dict[str, str]
  outputs: dict[str, str]
  params: tuple[str, ...]
  runtime_params: tuple[str, ...] = ()
  always_run: bool = False
  resumable: bool = False

  def __call__(self, **kwargs: Any) -> Node:
    inputs = {}
    params = {}
    for key, value in kwargs.items():
      if key in self.inputs:
        declared = self.inputs[key]
        many = declared.endswith("*")
        channels = value if many else [value]
        if many and not isinstance(value, (list, tuple)):
          raise TypeError(
            f"{self.name}: input {key!r} takes a list of channels."
          )
        for channel in channels:
          if not isinstance(channel, Channel):
            raise TypeError(
              f"{self.name}: input {key!r} must be an upstream output "
              f"channel, got {type(channel).__name__}."
            )
          if channel.type_name != declared.rstrip("*"):
            raise TypeError(
              f"{self.name}: input {key!r} expects {declared.rstrip('*')}, "
              f"got {channel.type_name}."
            )
        inputs[key] = list(value) if many else value
      elif key in self.params:
        _check_primitive(self.name, key, value)
        params[key] = value
      else:
        raise TypeError(f"{self.name}: unexpected argument {key!r}.")
    missing = set(self.inputs) - set(inputs)
    if missing:
      raise TypeError(f"{self.name}: missing inputs {sorted(missing)}.")
    return Node(self.name, self, inputs, params)

  @property
  def code_version(self) -> str:
    """Digest of the component's module and its project imports.

    Read from the source files each time (`code.code_version`), so an
    edit shows in the next plan.
    """
    return code.code_version(self.fn)


def _check_primitive(name: str, key: str, value: Any) -> None:
  try:
    json.dumps(value)
  except TypeError:
    raise TypeError(
      f"{name}: parameter {key!r} must be JSON-able primitives, got "
      f"{type(value).__name__}."
    ) from None


def component(
  *,
  inputs: dict[str, str] | None = None,
  outputs: dict[str, str],
  runtime_params: tuple[str, ...] = (),
  always_run: bool = False,
  resumable: bool = False,
) -> Callable[[Callable[..., Any]], Component]:
  """Declares a component.

  The decorated function receives each input as an `Artifact`, each output as
  an `OutputArtifact` to fill, and the remaining keyword arguments as
  JSON-able parameters.

  Args:
    inputs: Input name -> artifact type.
    outputs: Output name -> artifact type.
    runtime_params: Parameters that say where or how to run, not what to
      compute (e.g. a TensorBoard directory, Beam runner options or the
      config's runtime section): they are left out of the fingerprint, so
      changing them reuses the cache.
    always_run: The step's effect lies outside its artifact (e.g. a model
      published to a serving directory), so a cached artifact does not
      show that the effect still holds: runners run it every time, and it
      must be idempotent.
    resumable: The step keeps its own resume state in its output
      directories (e.g. a training backup) and continues from it: a runner
      that re-runs the step after a kill hands it the directories the
      killed run left. Other steps start from empty directories.

  Returns:
    A decorator producing a `Component`.
  """
  inputs = dict(inputs or {})

  def decorate(fn: Callable[..., Any]) -> Component:
    signature = inspect.signature(fn)
    names = list(signature.parameters)
    for key in list(inputs) + list(outputs):
      if key not in names:
        raise TypeError(f"{fn.__name__} has no argument {key!r}.")
    params = tuple(n for n in names if n not in inputs and n not in outputs)
    unknown = set(runtime_params) - set(params)
    if unknown:
      raise TypeError(f"{fn.__name__}: no parameters {sorted(unknown)}.")
    return Component(
      fn.__name__,
      fn,
      inputs,
      dict(outputs),
      params,
      tuple(runtime_params),
      always_run,
      resumable,
    )

  return decorate


@dataclasses.dataclass
class Pipeline:
  """An ordered list of nodes; each node's inputs come from earlier nodes.

  Attributes:
    name: The pipeline's name.
    nodes: The nodes in run order.
    outputs: Channels that are the run's results even where a later node
      reads them (e.g. the evaluation a blessing step reads). The outputs
      no node reads are results anyway; runners that list a run's outputs
      (Kubeflow) list both.
  """

  name: str
  nodes: list[Node]
  outputs: list[Channel] = dataclasses.field(default_factory=list)

  def __post_init__(self):
    seen = set()
    for node in self.nodes:
      if node.id in seen:
        raise ValueError(f"Duplicate node id {node.id!r}.")
      for channel in input_channels(node.inputs):
        if channel.node_id not in seen:
          raise ValueError(
            f"Node {node.id!r} reads {channel.node_id!r}, which does not "
            "run before it."
          )
      seen.add(node.id)
    for channel in self.outputs:
      if channel.node_id not in seen:
        raise ValueError(
          f"Pipeline output {channel.node_id}.{channel.key} names no node "
          "of the pipeline."
        )

  def node(self, node_id: str) -> Node:
    for node in self.nodes:
      if node.id == node_id:
        return node
    raise KeyError(node_id)


def fingerprint(node: Node, input_fingerprints: dict[str, Any]) -> str:
  """Hash of a node's code version, parameters and inputs.

  The node id is not part of it: two nodes of one component with the same
  parameters and inputs compute the same thing.

  Args:
    node: The node.
    input_fingerprints: Input key -> the input artifact's fingerprint (a
      list of them for a list input).
  """
  component = node.component
  payload = json.dumps(
    {
      "component": component.name,
      "code": component.code_version,
      "params": {
        k: v
        for k, v in node.params.items()
        if k not in component.runtime_params
      },
      "inputs": input_fingerprints,
    },
    sort_keys=True,
  )
  return hashlib.sha256(payload.encode()).hexdigest()[:16]


def plan(pipeline: Pipeline) -> dict[str, str]:
  """Every node's fingerprint, computed before anything runs.

  An artifact's fingerprint is its producer's, so a node's inputs are known
  from the upstream nodes alone; the runners key outputs by exactly these
  values. Comparing two plans shows what a change would re-run.
  """
  fps: dict[str, str] = {}
  for node in pipeline.nodes:
    inputs = {
      key: [fps[c.node_id] for c in value]
      if isinstance(value, list)
      else fps[value.node_id]
      for key, value in node.inputs.items()
    }
    fps[node.id] = fingerprint(node, inputs)
  return fps


def input_channels(
  inputs: dict[str, Channel | list[Channel]],
) -> list[Channel]:
  """Every channel of a node's inputs, list inputs flattened."""
  flat = []
  for value in inputs.values():
    flat.extend(value if isinstance(value, list) else [value])
  return flat
