"""push: publish the blessed serving model where TF Serving loads it."""

import os

from a2d_tf import blessing as blessing_lib
from a2d_tf import kit, publish


@kit.component(
  inputs={"serving": "ServingModel", "blessing": "Blessing"},
  outputs={"pushed": "PushedModel"},
  runtime_params=("push_destination",),
  always_run=True,
)
def push(
  serving: kit.Artifact,
  blessing: kit.Artifact,
  pushed: kit.OutputArtifact,
  push_destination: str,
):
  """Publishes `export`'s model as `<push_destination>/<version>/`, if blessed.

  As TFX's Pusher: only a model whose blessing (`validate_model`: the
  model criteria and the infra check) is positive is published; otherwise
  nothing is copied, the version folder keeps what an earlier run pushed
  (if anything), and the counts say `status=not_blessed` with the reason.
  Publishing is atomic and idempotent by the export's fingerprint
  (`publish`): a version folder holding another run's model is replaced
  whole, one holding this model is left alone. It runs on every pipeline
  run (the folder may have changed since), and records the folder and what
  it did in the counts.
  """
  version = serving.counts["version"]
  verdict = blessing_lib.read(blessing.uri)
  if not verdict["blessed"]:
    target = os.path.join(push_destination, str(int(version)))
    pushed.counts.update(
      version=version,
      status=publish.NOT_BLESSED,
      destination=target,
      reason=verdict["reason"],
      kept=publish.published_fingerprint(target) or "",
    )
    return
  target, status = publish.publish_version(
    serving.path(str(version)),
    push_destination,
    version,
    serving.fingerprint,
  )
  pushed.counts.update(version=version, status=status, destination=target)
