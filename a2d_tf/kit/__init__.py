"""A small component kit in the shape of TFX: model, local runner, metadata.

* `dsl`: artifacts, the `component` decorator, nodes, `Pipeline`,
  `fingerprint` and `plan`.
* `code`: a component's code version from its static import closure.
* `metadata`: the one `metadata.json` writer, shared by every runner.
* `local`: `LocalDagRunner`, in-process with caching, resume and atomic
  publishing.
* `lock`: `RunLock`, one run per output folder.
* `digest`: content digests of artifacts, to compare two runs.
* `kubeflow`: the adapter to Kubeflow Pipelines v2 (imported on its own:
  it needs kfp).

The names a component or pipeline uses are re-exported here
(`from a2d_tf import kit`; `kit.component`, `kit.Artifact`, ...).
"""

from a2d_tf.kit.dsl import (
  Artifact,
  Channel,
  Component,
  Node,
  OutputArtifact,
  Pipeline,
  component,
  fingerprint,
  plan,
)
from a2d_tf.kit.local import LocalDagRunner
from a2d_tf.kit.lock import RunLock, RunLockedError
from a2d_tf.kit.metadata import METADATA_FILE

__all__ = [
  "METADATA_FILE",
  "Artifact",
  "Channel",
  "Component",
  "LocalDagRunner",
  "Node",
  "OutputArtifact",
  "Pipeline",
  "RunLock",
  "RunLockedError",
  "component",
  "fingerprint",
  "plan",
]
