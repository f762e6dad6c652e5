"""`LocalDagRunner`: runs a pipeline in this process, cached and resumable.

Artifacts are directories `<root>/<node_id>/<key>/<fingerprint>/`. A node
whose outputs are all published under its planned fingerprint is skipped
(unless its component is `always_run`). Outputs are written to a work
directory and published by an atomic rename: a killed step never leaves a
half artifact that looks complete. The work directory of a node is stable
across runs (`<root>/<node_id>/.work-<fp>/`): a `resumable` step (training)
finds there what a killed run left and resumes where it stopped; any other
step starts from an emptied one. `clean_work` removes the work directories
that no planned resumable step can resume from.

One runner at a time per root: the runners in `pipelines/` hold the output
folder's `lock.RunLock` while they run.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Callable, Iterable

from a2d_tf.kit import metadata
from a2d_tf.kit.dsl import Artifact, Node, OutputArtifact, Pipeline, plan

WORK_PREFIX = ".work-"


class LocalDagRunner:
  """Runs a pipeline in this process, in order, with caching and resume.

  Args:
    root: Directory of all artifacts.
    log: Callable receiving one progress line at a time.

  Attributes:
    statuses: After `run`, node id -> "cached" or "ran".
  """

  def __init__(self, root: str, log: Callable[[str], None] | None = None):
    self.root = root
    self.log = log or logging.info
    self.statuses: dict[str, str] = {}

  def output_uri(self, node_id: str, key: str, fp: str) -> str:
    return os.path.join(self.root, node_id, key, fp)

  def work_uri(self, node_id: str, fp: str) -> str:
    return os.path.join(self.root, node_id, f"{WORK_PREFIX}{fp}")

  def clean_work(self, pipelines: Iterable[Pipeline]) -> list[str]:
    """Removes the work directories no planned step can resume from.

    Kept: the work directory of each `resumable` node of `pipelines` under
    its planned fingerprint (a killed run's training backup, resumed on
    this run). Removed: every other `.work-*` directory under the root,
    left by killed runs of other steps, of other parameters or of older
    code. Pass every pipeline that will run into this root (the ablation
    runs one per variant), and call it only while holding the root's lock.

    Returns:
      The removed directories.
    """
    keep = set()
    for pipeline in pipelines:
      fingerprints = plan(pipeline)
      for node in pipeline.nodes:
        if node.component.resumable:
          keep.add(self.work_uri(node.id, fingerprints[node.id]))
    removed = []
    if not os.path.isdir(self.root):
      return removed
    for node_id in sorted(os.listdir(self.root)):
      node_dir = os.path.join(self.root, node_id)
      if not os.path.isdir(node_dir):
        continue
      for name in sorted(os.listdir(node_dir)):
        path = os.path.join(node_dir, name)
        if name.startswith(WORK_PREFIX) and path not in keep:
          shutil.rmtree(path)
          removed.append(path)
    return removed

  def run(self, pipeline: Pipeline) -> dict[str, dict[str, Artifact]]:
    """Runs every node, skipping the ones already published.

    Returns:
      node id -> output key -> published Artifact.
    """
    results: dict[str, dict[str, Artifact]] = {}
    self.statuses = {}
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
        artifact = metadata.read(self.output_uri(node.id, key, fp))
        if artifact is not None:
          cached[key] = artifact
      prefix = f"[{index}/{total}] {node.id}"
      complete = len(cached) == len(node.component.outputs)
      if complete and not node.component.always_run:
        results[node.id] = cached
        self.statuses[node.id] = "cached"
        self.log(f"{prefix}: cached ({fp}){_format_counts(cached)}")
        continue
      self.log(f"{prefix}: start ({fp})")
      began = time.monotonic()
      results[node.id] = self._execute(node, inputs, fp)
      self.statuses[node.id] = "ran"
      self.log(
        f"{prefix}: done in {time.monotonic() - began:.1f}s"
        f"{_format_counts(results[node.id])}"
      )
    return results

  def _execute(
    self, node: Node, inputs: dict[str, Artifact], fp: str
  ) -> dict[str, Artifact]:
    work = self.work_uri(node.id, fp)
    if not node.component.resumable:
      # A killed run's leftovers would end up in the published artifact.
      shutil.rmtree(work, ignore_errors=True)
    outputs = {}
    for key, type_name in node.component.outputs.items():
      uri = os.path.join(work, key)
      os.makedirs(uri, exist_ok=True)
      outputs[key] = OutputArtifact(type_name, uri)
    written = metadata.execute(
      node.id, node.component, inputs, outputs, node.params, fp
    )
    published = {}
    for key, out in outputs.items():
      final = self.output_uri(node.id, key, fp)
      os.makedirs(os.path.dirname(final), exist_ok=True)
      if os.path.exists(final):
        # Left by a run killed between two publishes of this node, or an
        # always-run node's last run: same fingerprint, so the fresh copy
        # replaces it.
        shutil.rmtree(final)
      os.rename(out.uri, final)
      published[key] = Artifact(out.type_name, final, fp, written[key])
    shutil.rmtree(work, ignore_errors=True)
    return published


def _format_counts(artifacts: dict[str, Artifact]) -> str:
  parts = []
  for key, artifact in artifacts.items():
    for name, value in artifact.counts.items():
      if isinstance(value, (int, float, str)):
        parts.append(f"{key}.{name}={value}")
  return f" [{', '.join(parts)}]" if parts else ""
