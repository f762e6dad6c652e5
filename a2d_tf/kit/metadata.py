"""The one metadata writer (and reader) of every runner.

Each artifact directory holds a `metadata.json`:

* `type`: the artifact type, e.g. "Model".
* `producer`: the node id that produced it (e.g. `train_teacher_0`).
* `component`: the component's name (e.g. `train_teacher`).
* `code_version`: the component's code version (`code`).
* `fingerprint`: the producing node's fingerprint (`dsl.fingerprint`).
* `parameters`: the node's parameters, runtime parameters included.
* `inputs`: input key -> the input artifacts' directories.
* `counts`: the key figures the component reported (`OutputArtifact.counts`).

`execute` runs a node's component on its artifacts and writes these files;
`LocalDagRunner` and the Kubeflow adapter both call it, so an artifact
records the same whichever runner made it.
"""

from __future__ import annotations

import json
import os
from typing import Any

from a2d_tf.kit.dsl import Artifact, Component, OutputArtifact

METADATA_FILE = "metadata.json"


def read(uri: str) -> Artifact | None:
  """The published artifact in `uri`, or None when it has no metadata."""
  path = os.path.join(uri, METADATA_FILE)
  if not os.path.exists(path):
    return None
  with open(path, encoding="utf-8") as f:
    meta = json.load(f)
  return Artifact(meta["type"], uri, meta["fingerprint"], meta)


def read_input(uri: str, type_name: str) -> Artifact:
  """The artifact in `uri`, which must be published and of `type_name`.

  Raises:
    FileNotFoundError: `uri` holds no `metadata.json`.
    TypeError: It holds another type of artifact.
  """
  artifact = read(uri)
  if artifact is None:
    raise FileNotFoundError(f"{uri} holds no {METADATA_FILE}.")
  if artifact.type_name != type_name:
    raise TypeError(
      f"{uri} holds a {artifact.type_name} artifact, expected {type_name}."
    )
  return artifact


def execute(
  node_id: str,
  component: Component,
  inputs: dict[str, Artifact | list[Artifact]],
  outputs: dict[str, OutputArtifact],
  params: dict[str, Any],
  fingerprint: str,
) -> dict[str, dict[str, Any]]:
  """Runs `component` on its artifacts, then writes each output's metadata.

  Args:
    node_id: The node being run (the `producer`).
    component: Its component.
    inputs: Input key -> published artifact(s).
    outputs: Output key -> the directory to fill (created by the runner).
    params: The node's parameters.
    fingerprint: The node's fingerprint.

  Returns:
    Output key -> the metadata written into its directory.
  """
  component.fn(**inputs, **outputs, **params)
  code_version = component.code_version
  written = {}
  for key, out in outputs.items():
    meta = {
      "type": out.type_name,
      "producer": node_id,
      "component": component.name,
      "code_version": code_version,
      "fingerprint": fingerprint,
      "parameters": params,
      "inputs": {
        k: [a.uri for a in v] if isinstance(v, list) else v.uri
        for k, v in inputs.items()
      },
      "counts": out.counts,
    }
    with open(out.path(METADATA_FILE), "w", encoding="utf-8") as f:
      json.dump(meta, f, indent=2, sort_keys=True)
    written[key] = meta
  return written
