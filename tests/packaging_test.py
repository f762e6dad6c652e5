"""The project installs as a package (`pip install .`, Beam's --setup_file).

Dataflow workers get a2d through `--beam_arg=--setup_file=pyproject.toml`,
which builds a source distribution of the project; this builds a wheel of
a copy of the tree and checks what it carries.
"""

import pathlib
import shutil
import subprocess
import sys
import zipfile

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_wheel_carries_the_packages_and_pinned_requirements(tmp_path):
  src = tmp_path / "src"
  src.mkdir()
  for name in ("pyproject.toml", "requirements.txt", "README.md"):
    shutil.copy(ROOT / name, src / name)
  for package in ("a2d_tf", "components", "pipelines", "tests"):
    shutil.copytree(
      ROOT / package, src / package, ignore=shutil.ignore_patterns("__py*")
    )
  result = subprocess.run(
    [
      sys.executable,
      "-m",
      "pip",
      "wheel",
      "--no-deps",
      "--no-build-isolation",
      "-q",
      "-w",
      str(tmp_path / "dist"),
      str(src),
    ],
    capture_output=True,
    text=True,
    timeout=300,
  )
  assert result.returncode == 0, result.stderr[-2000:]
  (wheel,) = (tmp_path / "dist").glob("a2d-*.whl")
  with zipfile.ZipFile(wheel) as z:
    names = z.namelist()
    (metadata,) = [n for n in names if n.endswith(".dist-info/METADATA")]
    requires = [
      line.split(":", 1)[1].strip()
      for line in z.read(metadata).decode().splitlines()
      if line.startswith("Requires-Dist:")
    ]
  tops = {n.split("/")[0] for n in names if not n.endswith(".dist-info/")}
  assert {"a2d_tf", "components", "pipelines"} <= tops
  assert "tests" not in tops
  for module in (
    "a2d_tf/materialize.py",
    "a2d_tf/data/knowledge.py",
    "a2d_tf/kit/kubeflow.py",
    "a2d_tf/data/squad.py",
    "components/distill_knowledge.py",
    "pipelines/local_runner.py",
  ):
    assert module in names
  pinned = [
    line.strip()
    for line in (ROOT / "requirements.txt").read_text().splitlines()
    if line.strip() and not line.startswith("#")
  ]
  assert requires == pinned
