"""Publishing a serving model to a folder TF Serving watches.

TF Serving loads `<model_base_path>/<version>/`, picks up new versions and
reloads a version folder that is replaced. `publish_version` makes that
safe: the model is copied to a staging folder beside the target and renamed
into place, an existing version folder is replaced as a whole (renamed
aside, then deleted), so a server never sees half a model; and a marker
file with the source artifact's fingerprint makes publishing the same
model again a no-op.
"""

from __future__ import annotations

import os
import shutil

MARKER_FILE = "a2d_fingerprint.txt"
# What `publish_version` did.
PUBLISHED = "published"  # the version folder did not exist
REPLACED = "replaced"  # it held another model
UNCHANGED = "unchanged"  # it already held this one
# What the pipeline's push step records when it publishes nothing: the
# model was not blessed (`a2d_tf.blessing`).
NOT_BLESSED = "not_blessed"


def published_fingerprint(version_dir: str) -> str | None:
  """The fingerprint marked in a published version folder, if any."""
  marker = os.path.join(version_dir, MARKER_FILE)
  if not os.path.exists(marker):
    return None
  with open(marker, encoding="utf-8") as f:
    return f.read().strip()


def publish_version(
  source_dir: str, destination: str, version: int, fingerprint: str
) -> tuple[str, str]:
  """Publishes `source_dir` as `<destination>/<version>/`, atomically.

  Args:
    source_dir: The SavedModel folder to publish (left unchanged).
    destination: The model base path (created).
    version: The version folder's name, an integer.
    fingerprint: Identifies the model; written to `MARKER_FILE`.

  Returns:
    `(target folder, status)`, status one of `PUBLISHED`, `REPLACED`,
    `UNCHANGED`.
  """
  name = str(int(version))
  target = os.path.join(destination, name)
  if published_fingerprint(target) == fingerprint:
    return target, UNCHANGED
  os.makedirs(destination, exist_ok=True)
  staging = os.path.join(destination, f".{name}.tmp")
  shutil.rmtree(staging, ignore_errors=True)
  shutil.copytree(source_dir, staging)
  with open(os.path.join(staging, MARKER_FILE), "w", encoding="utf-8") as f:
    f.write(fingerprint + "\n")
  status = PUBLISHED
  if os.path.exists(target):
    status = REPLACED
    old = os.path.join(destination, f".{name}.old")
    shutil.rmtree(old, ignore_errors=True)
    os.rename(target, old)
    shutil.rmtree(old)
  os.rename(staging, target)
  return target, status
