"""push: publish the serving model where TF Serving loads it (TFX's Pusher)."""

from a2d_tf import kit, publish


@kit.component(
  inputs={"serving": "ServingModel"},
  outputs={"pushed": "PushedModel"},
  runtime_params=("push_destination",),
  always_run=True,
)
def push(
  serving: kit.Artifact,
  pushed: kit.OutputArtifact,
  push_destination: str,
):
  """Publishes `export`'s model as `<push_destination>/<version>/`.

  Atomic and idempotent by the export's fingerprint (`publish`): a version
  folder holding another run's model is replaced whole, one holding this
  model is left alone. It runs on every pipeline run (the folder may have
  changed since), and records the folder and what it did in the counts.
  A gate (a blessing from evaluation) would come in front of it as one more
  input.
  """
  version = serving.counts["version"]
  target, status = publish.publish_version(
    serving.path(str(version)),
    push_destination,
    version,
    serving.fingerprint,
  )
  pushed.counts.update(version=version, status=status, destination=target)
