"""Content digests of a run's outputs: what two runs produced, minus noise.

`tree_digests(directory)` maps every file under `directory` to a digest of
its *content*, so two runs (say, one killed and resumed, one not) can be
compared file by file. Some formats carry bytes that differ between two
runs that computed the same thing; the digest reads past them:

* `*.keras` (a zip): the architecture (the zip's `config.json`) and every
  weight array of its `model.weights.h5`; not the zip's timestamps nor its
  `metadata.json` (save date).
* `*.h5` (Keras weights): every dataset's path, dtype, shape and values.
* `*.tfrecord`, `*.tfrecord.gz`: every record, in file order (read
  through GZIP, whose header is left out); a record that parses as a
  `tf.train.Example` is digested in protobuf's deterministic
  serialization, since the order in which a process writes the entries of
  its feature map is not fixed (two processes writing the same features
  write different bytes); any other record by its bytes.
* A SavedModel's `variables/`: the multiset of its variables' dtypes,
  shapes and values (TF's checkpoint reader), the object-graph entry left
  out. Not their checkpoint keys or names: an export lists its variables
  in an order, and under automatic layer names (`dense_18`), that depend
  on what the exporting process built before; the `.keras` model it was
  exported from is compared with its names. Its
  `saved_model.pb` and `fingerprint.pb` are left out: traced function
  names count the functions the process traced before, so they differ
  between processes that export the same model.
* `*.json`, `*.jsonl`: the parsed values, keys sorted, without
  `VOLATILE_KEYS` (timings, and what the push step did this time), with
  the run's root folder written as `<root>`.
* A `*.md` beside a `*.json` of the same name: left out, as a rendering
  of that JSON (`report.md` of `report.json`, timings included).
* TensorBoard event files and the run lock: left out (wall-clock times).
* Anything else: its bytes.

Paths in the result are relative to `directory`; files left out are
absent from it.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import struct
import zipfile
from typing import Any

# JSON keys whose values are wall-clock timings or say what a step did in
# this process rather than what it produced.
VOLATILE_KEYS = frozenset(
  {
    "single_s",
    "ensemble_s",
    "student_s",
    "speedup",
    "speedup_over_single",
    "speedup_over_ensemble",
    # The infra check's wall time.
    "seconds",
    # Compressed bytes on disk: GZIP of records whose feature maps a
    # process may write in another order (see the TFRecord rule).
    "file_bytes_per_example",
    "status",
  }
)
_SKIPPED_NAMES = frozenset({".a2d.lock", "saved_model.pb", "fingerprint.pb"})


def tree_digests(directory: str) -> dict[str, str]:
  """Relative path -> content digest of every file under `directory`."""
  root = os.path.abspath(directory)
  digests = {}
  for parent, dirs, files in os.walk(root):
    dirs.sort()
    if os.path.basename(parent) == "variables" and _is_saved_model(parent):
      digests.update(_saved_model_variables(parent, root))
      dirs[:] = []
      continue
    for name in sorted(files):
      path = os.path.join(parent, name)
      if _skipped(path, name):
        continue
      digests[os.path.relpath(path, root)] = file_digest(path, root)
  return digests


def file_digest(path: str, root: str = "") -> str:
  """The content digest of one file (see the module docstring).

  Args:
    path: The file.
    root: The run's root folder, written as `<root>` inside JSON strings.
  """
  name = os.path.basename(path)
  if name.endswith(".keras"):
    return _keras_digest(path)
  if name.endswith(".h5"):
    with open(path, "rb") as f:
      return _h5_digest(f)
  if name.endswith((".tfrecord", ".tfrecord.gz")):
    return _tfrecord_digest(path)
  if name.endswith(".json"):
    with open(path, encoding="utf-8") as f:
      return _json_digest([json.load(f)], root)
  if name.endswith(".jsonl"):
    with open(path, encoding="utf-8") as f:
      lines = [json.loads(line) for line in f if line.strip()]
    return _json_digest(lines, root)
  with open(path, "rb") as f:
    return hashlib.sha256(f.read()).hexdigest()


def _skipped(path: str, name: str) -> bool:
  if name in _SKIPPED_NAMES or "tfevents" in name:
    return True
  stem, ext = os.path.splitext(path)
  return ext == ".md" and os.path.exists(stem + ".json")


def _is_saved_model(variables_dir: str) -> bool:
  return os.path.exists(
    os.path.join(os.path.dirname(variables_dir), "saved_model.pb")
  )


def _drop_volatile(value: Any, root: str) -> Any:
  if isinstance(value, dict):
    return {
      k: _drop_volatile(v, root)
      for k, v in value.items()
      if k not in VOLATILE_KEYS
    }
  if isinstance(value, list):
    return [_drop_volatile(v, root) for v in value]
  if isinstance(value, str) and root:
    return value.replace(root, "<root>")
  return value


def _json_digest(values: list[Any], root: str) -> str:
  text = json.dumps(
    [_drop_volatile(v, root) for v in values], sort_keys=True, default=str
  )
  return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _h5_digest(file_obj) -> str:
  import h5py
  import numpy as np

  digest = hashlib.sha256()
  with h5py.File(file_obj, "r") as h5:
    names = []
    h5.visititems(
      lambda name, obj: (
        names.append(name) if isinstance(obj, h5py.Dataset) else None
      )
    )
    for name in sorted(names):
      array = np.asarray(h5[name][()])
      digest.update(f"{name}|{array.dtype.str}|{array.shape}|".encode())
      digest.update(np.ascontiguousarray(array).tobytes())
  return digest.hexdigest()


def _keras_digest(path: str) -> str:
  digest = hashlib.sha256()
  with zipfile.ZipFile(path) as archive:
    for name in sorted(archive.namelist()):
      data = archive.read(name)
      if name == "metadata.json":
        continue
      if name.endswith(".h5"):
        digest.update(f"{name}|{_h5_digest(io.BytesIO(data))}|".encode())
      else:
        digest.update(f"{name}|".encode() + data)
  return digest.hexdigest()


def _canonical_record(data: bytes) -> bytes:
  """A `tf.train.Example`'s deterministic bytes; other records as they are."""
  from google.protobuf import message
  from tensorflow.core.example import example_pb2

  try:
    example = example_pb2.Example.FromString(data)
  except message.DecodeError:
    return data
  canonical = example.SerializeToString(deterministic=True)
  # Bytes that happen to parse as an Example but are not one stay as read.
  return canonical if len(canonical) == len(data) else data


def _tfrecord_digest(path: str) -> str:
  opener = gzip.open if path.endswith(".gz") else open
  digest = hashlib.sha256()
  with opener(path, "rb") as f:
    while True:
      header = f.read(12)
      if not header:
        break
      if len(header) < 12:
        raise ValueError(f"{path}: truncated TFRecord header")
      (length,) = struct.unpack("<Q", header[:8])
      data = f.read(length)
      if len(data) < length or len(f.read(4)) < 4:
        raise ValueError(f"{path}: truncated TFRecord")
      digest.update(struct.pack("<Q", length) + _canonical_record(data))
  return digest.hexdigest()


def _saved_model_variables(variables_dir: str, root: str) -> dict[str, str]:
  import numpy as np
  import tensorflow as tf

  reader = tf.train.load_checkpoint(os.path.join(variables_dir, "variables"))
  each = []
  for name in reader.get_variable_to_shape_map():
    if name == "_CHECKPOINTABLE_OBJECT_GRAPH":
      continue
    array = np.asarray(reader.get_tensor(name))
    one = hashlib.sha256(f"{array.dtype.str}|{array.shape}|".encode())
    if array.dtype == object:  # strings
      one.update(b"\0".join(bytes(v) for v in array.ravel().tolist()))
    else:
      one.update(np.ascontiguousarray(array).tobytes())
    each.append(one.hexdigest())
  digest = hashlib.sha256("|".join(sorted(each)).encode())
  return {os.path.relpath(variables_dir, root): digest.hexdigest()}
