"""A small component kit in the shape of TFX function components.

TFX itself cannot be installed on this stack, so a2d carries the few pieces of
it that a pipeline needs:

* `component`: a decorator that turns a top-level function with typed
  artifacts and primitive parameters into a component. Calling the component
  with upstream outputs and parameters returns a `Node` of a pipeline, as a TFX
  component constructor does.
* `Pipeline`: an ordered list of nodes; `LocalDagRunner` runs it.
* An input type ending in `*` (e.g. `"Model*"`) takes a list of channels,
  as the K teacher models feeding the knowledge step.
* Artifacts are directories `<root>/<node_id>/<key>/<fingerprint>/` holding a
  `metadata.json` (type, producer, parameters, fingerprint, counts). A node's
  fingerprint hashes its code version (the component's source and the a2d_tf
  package sources), its parameters and its inputs' fingerprints, so changing
  one parameter re-runs only the nodes that depend on it.
* Outputs are written to a work directory and published by an atomic rename:
  a killed step never leaves a half artifact that looks complete. The work
  directory of a node is stable across runs (`<root>/<node_id>/.work-<fp>/`),
  so a step that checkpoints there (teacher training) resumes where it
  stopped when the runner is started again.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import inspect
import json
import logging
import os
import pathlib
import shutil
import time
from collections.abc import Callable
from typing import Any

METADATA_FILE = "metadata.json"


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

  @functools.cached_property
  def code_version(self) -> str:
    """Digest of the component's source file and the a2d_tf package."""
    digest = hashlib.sha256()
    digest.update(inspect.getsource(inspect.getmodule(self.fn)).encode())
    digest.update(package_digest().encode())
    return digest.hexdigest()[:16]


def _check_primitive(name: str, key: str, value: Any) -> None:
  try:
    json.dumps(value)
  except TypeError:
    raise TypeError(
      f"{name}: parameter {key!r} must be JSON-able primitives, got "
      f"{type(value).__name__}."
    ) from None


@functools.cache
def package_digest() -> str:
  """Digest of every a2d_tf source file (the library's code version)."""
  root = pathlib.Path(__file__).resolve().parent
  digest = hashlib.sha256()
  for path in sorted(root.rglob("*.py")):
    digest.update(str(path.relative_to(root)).encode())
    digest.update(path.read_bytes())
  return digest.hexdigest()


def component(
  *,
  inputs: dict[str, str] | None = None,
  outputs: dict[str, str],
  runtime_params: tuple[str, ...] = (),
) -> Callable[[Callable[..., Any]], Component]:
  """Declares a component.

  The decorated function receives each input as an `Artifact`, each output as
  an `OutputArtifact` to fill, and the remaining keyword arguments as
  JSON-able parameters.

  Args:
    inputs: Input name -> artifact type.
    outputs: Output name -> artifact type.
    runtime_params: Parameters that say where or how to run, not what to
      compute (e.g. a TensorBoard directory or Beam runner options): they
      are left out of the fingerprint, so changing them reuses the cache.

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
      fn.__name__, fn, inputs, dict(outputs), params, tuple(runtime_params)
    )

  return decorate


@dataclasses.dataclass
class Pipeline:
  """An ordered list of nodes; each node's inputs come from earlier nodes."""

  name: str
  nodes: list[Node]

  def __post_init__(self):
    seen = set()
    for node in self.nodes:
      if node.id in seen:
        raise ValueError(f"Duplicate node id {node.id!r}.")
      for channel in _channels(node.inputs):
        if channel.node_id not in seen:
          raise ValueError(
            f"Node {node.id!r} reads {channel.node_id!r}, which does not "
            "run before it."
          )
      seen.add(node.id)

  def node(self, node_id: str) -> Node:
    for node in self.nodes:
      if node.id == node_id:
        return node
    raise KeyError(node_id)


def fingerprint(node: Node, input_fingerprints: dict[str, str]) -> str:
  """Hash of a node's code version, parameters and inputs."""
  payload = json.dumps(
    {
      "component": node.component.name,
      "code": node.component.code_version,
      "params": {
        k: v
        for k, v in node.params.items()
        if k not in node.component.runtime_params
      },
      "inputs": input_fingerprints,
    },
    sort_keys=True,
  )
  return hashlib.sha256(payload.encode()).hexdigest()[:16]


def plan(pipeline: Pipeline) -> dict[str, str]:
  """Every node's fingerprint, computed before anything runs.

  An artifact's fingerprint is its producer's, so a node's inputs are known
  from the upstream nodes alone; `LocalDagRunner` keys outputs by exactly
  these values. Comparing two plans shows what a change would re-run.
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


def _read_artifact(uri: str) -> Artifact | None:
  meta_path = os.path.join(uri, METADATA_FILE)
  if not os.path.exists(meta_path):
    return None
  with open(meta_path, encoding="utf-8") as f:
    meta = json.load(f)
  return Artifact(meta["type"], uri, meta["fingerprint"], meta)


class LocalDagRunner:
  """Runs a pipeline in this process, in order, with caching and resume.

  Args:
    root: Directory of all artifacts.
    log: Callable receiving one progress line at a time.
  """

  def __init__(self, root: str, log: Callable[[str], None] | None = None):
    self.root = root
    self.log = log or logging.info

  def output_uri(self, node_id: str, key: str, fp: str) -> str:
    return os.path.join(self.root, node_id, key, fp)

  def run(self, pipeline: Pipeline) -> dict[str, dict[str, Artifact]]:
    """Runs every node, skipping the ones already published.

    Returns:
      node id -> output key -> published Artifact.
    """
    results: dict[str, dict[str, Artifact]] = {}
    statuses: dict[str, str] = {}
    fingerprints = plan(pipeline)
    total = len(pipeline.nodes)
    for index, node in enumerate(pipeline.nodes, 1):
      inputs = {
        key: [results[c.node_id][c.key] for c in value]
        if isinstance(value, list)
        else results[value.node_id][value.key]
        for key, value in node.inputs.items()
      }
      fp = fingerprints[node.id]
      cached = {}
      for key in node.component.outputs:
        artifact = _read_artifact(self.output_uri(node.id, key, fp))
        if artifact is not None:
          cached[key] = artifact
      prefix = f"[{index}/{total}] {node.id}"
      if len(cached) == len(node.component.outputs):
        results[node.id] = cached
        statuses[node.id] = "cached"
        self.log(f"{prefix}: cached ({fp}){_format_counts(cached)}")
        continue
      self.log(f"{prefix}: start ({fp})")
      began = time.monotonic()
      results[node.id] = self._execute(node, inputs, fp)
      statuses[node.id] = "ran"
      self.log(
        f"{prefix}: done in {time.monotonic() - began:.1f}s"
        f"{_format_counts(results[node.id])}"
      )
    self.statuses = statuses
    return results

  def _execute(
    self, node: Node, inputs: dict[str, Artifact], fp: str
  ) -> dict[str, Artifact]:
    work = os.path.join(self.root, node.id, f".work-{fp}")
    outputs = {}
    for key, type_name in node.component.outputs.items():
      uri = os.path.join(work, key)
      os.makedirs(uri, exist_ok=True)
      outputs[key] = OutputArtifact(type_name, uri)
    node.component.fn(**inputs, **outputs, **node.params)
    published = {}
    for key, out in outputs.items():
      meta = {
        "type": out.type_name,
        "producer": node.id,
        "component": node.component.name,
        "code_version": node.component.code_version,
        "fingerprint": fp,
        "parameters": node.params,
        "inputs": _uris(inputs),
        "counts": out.counts,
      }
      with open(out.path(METADATA_FILE), "w", encoding="utf-8") as f:
        json.dump(meta, f, indent=2, sort_keys=True)
      final = self.output_uri(node.id, key, fp)
      os.makedirs(os.path.dirname(final), exist_ok=True)
      if os.path.exists(final):
        # Left by a run killed between two publishes of this node: same
        # fingerprint, so the fresh copy replaces it.
        shutil.rmtree(final)
      os.rename(out.uri, final)
      published[key] = Artifact(out.type_name, final, fp, meta)
    shutil.rmtree(work, ignore_errors=True)
    return published


def _channels(inputs: dict[str, Channel | list[Channel]]) -> list[Channel]:
  flat = []
  for value in inputs.values():
    flat.extend(value if isinstance(value, list) else [value])
  return flat


def _uris(inputs: dict[str, Any]) -> dict[str, Any]:
  return {
    k: [a.uri for a in v] if isinstance(v, list) else v.uri
    for k, v in inputs.items()
  }


def _format_counts(artifacts: dict[str, Artifact]) -> str:
  parts = []
  for key, artifact in artifacts.items():
    for name, value in artifact.counts.items():
      if isinstance(value, (int, float, str)):
        parts.append(f"{key}.{name}={value}")
  return f" [{', '.join(parts)}]" if parts else ""
