"""Tests of serving-model publishing and the pipeline's push step."""

import os

import pytest

from a2d_tf import blessing as blessing_lib
from a2d_tf import kit, publish
from components.push import push


def _model(root, text):
  """A stand-in SavedModel folder."""
  os.makedirs(root, exist_ok=True)
  with open(os.path.join(root, "saved_model.pb"), "w") as f:
    f.write(text)
  return str(root)


def _read(path):
  with open(path) as f:
    return f.read()


def test_publish_version_new_same_and_replaced(tmp_path):
  dest = str(tmp_path / "serving")
  first = _model(tmp_path / "a", "model a")
  target, status = publish.publish_version(first, dest, 1, "fp-a")
  assert (target, status) == (os.path.join(dest, "1"), publish.PUBLISHED)
  assert _read(os.path.join(target, "saved_model.pb")) == "model a"
  assert publish.published_fingerprint(target) == "fp-a"

  # The same model again: nothing is copied (a marker of our own shows it).
  with open(os.path.join(target, "untouched"), "w") as f:
    f.write("x")
  assert publish.publish_version(first, dest, 1, "fp-a")[1] == (
    publish.UNCHANGED
  )
  assert os.path.exists(os.path.join(target, "untouched"))

  # Another model replaces the whole folder; no staging or old folder stays.
  second = _model(tmp_path / "b", "model b")
  assert publish.publish_version(second, dest, 1, "fp-b")[1] == (
    publish.REPLACED
  )
  assert sorted(os.listdir(target)) == [publish.MARKER_FILE, "saved_model.pb"]
  assert _read(os.path.join(target, "saved_model.pb")) == "model b"
  assert os.listdir(dest) == ["1"]
  assert _read(os.path.join(first, "saved_model.pb")) == "model a"


def test_publish_version_other_versions_stay(tmp_path):
  dest = str(tmp_path / "serving")
  publish.publish_version(_model(tmp_path / "a", "a"), dest, 1, "fp-a")
  publish.publish_version(_model(tmp_path / "b", "b"), dest, 2, "fp-b")
  assert sorted(os.listdir(dest)) == ["1", "2"]


@kit.component(outputs={"serving": "ServingModel"})
def fake_export(serving: kit.OutputArtifact, text: str):
  _model(serving.path("3"), text)
  serving.counts["version"] = 3


@kit.component(
  inputs={"serving": "ServingModel"}, outputs={"blessing": "Blessing"}
)
def fake_blessing(
  serving: kit.Artifact, blessing: kit.OutputArtifact, blessed: bool
):
  del serving
  reason = "fine" if blessed else "model not blessed (dev: -3.0 < -1)"
  blessing_lib.write(
    blessing.uri,
    {"blessed": blessed, "reason": reason, "model": {}, "infra": {}},
  )
  blessing.counts.update(blessed=blessed, reason=reason)


def _pipe(text, dest, blessed=True):
  exported = fake_export(text=text)
  gate = fake_blessing(serving=exported.outputs["serving"], blessed=blessed)
  return kit.Pipeline(
    "p",
    [
      exported,
      gate,
      push(
        serving=exported.outputs["serving"],
        blessing=gate.outputs["blessing"],
        push_destination=dest,
      ),
    ],
  )


def test_push_step_publishes_every_run_and_records_it(tmp_path):
  dest = str(tmp_path / "serving")
  root = str(tmp_path / "artifacts")
  a = kit.LocalDagRunner(root).run(_pipe("a", dest))
  pushed = a["push"]["pushed"]
  assert pushed.type_name == "PushedModel"
  assert pushed.counts == {
    "version": 3,
    "status": publish.PUBLISHED,
    "destination": os.path.join(dest, "3"),
  }
  assert publish.published_fingerprint(os.path.join(dest, "3")) == (
    a["fake_export"]["serving"].fingerprint
  )
  kit.LocalDagRunner(root).run(_pipe("b", dest))
  assert _read(os.path.join(dest, "3", "saved_model.pb")) == "b"
  # Back to a cached export: the push runs again and puts it back.
  runner = kit.LocalDagRunner(root)
  again = runner.run(_pipe("a", dest))
  assert runner.statuses == {
    "fake_export": "cached",
    "fake_blessing": "cached",
    "push": "ran",
  }
  assert again["push"]["pushed"].counts["status"] == publish.REPLACED
  assert _read(os.path.join(dest, "3", "saved_model.pb")) == "a"
  runner = kit.LocalDagRunner(root)
  assert (
    runner.run(_pipe("a", dest))["push"]["pushed"].counts["status"]
    == publish.UNCHANGED
  )


def test_push_rejects_a_missing_version_folder(tmp_path):
  @kit.component(outputs={"serving": "ServingModel"})
  def empty_export(serving: kit.OutputArtifact):
    serving.counts["version"] = 1

  exported = empty_export()
  gate = fake_blessing(serving=exported.outputs["serving"], blessed=True)
  pipe = kit.Pipeline(
    "p",
    [
      exported,
      gate,
      push(
        serving=exported.outputs["serving"],
        blessing=gate.outputs["blessing"],
        push_destination=str(tmp_path / "serving"),
      ),
    ],
  )
  with pytest.raises(FileNotFoundError):
    kit.LocalDagRunner(str(tmp_path / "artifacts")).run(pipe)
  assert not os.path.exists(tmp_path / "serving" / "1")


def test_push_publishes_nothing_without_a_blessing(tmp_path):
  dest = str(tmp_path / "serving")
  root = str(tmp_path / "artifacts")
  # No model yet: nothing is published, and the counts say why.
  first = kit.LocalDagRunner(root).run(_pipe("a", dest, blessed=False))
  assert first["push"]["pushed"].counts == {
    "version": 3,
    "status": publish.NOT_BLESSED,
    "destination": os.path.join(dest, "3"),
    "reason": "model not blessed (dev: -3.0 < -1)",
    "kept": "",
  }
  assert not os.path.exists(dest)
  # A blessed model is published; a later unblessed one leaves it serving.
  good = kit.LocalDagRunner(root).run(_pipe("b", dest))
  later = kit.LocalDagRunner(root).run(_pipe("c", dest, blessed=False))
  counts = later["push"]["pushed"].counts
  assert counts["status"] == publish.NOT_BLESSED
  assert counts["kept"] == good["fake_export"]["serving"].fingerprint
  assert _read(os.path.join(dest, "3", "saved_model.pb")) == "b"
