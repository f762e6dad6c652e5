"""Keeps the Bazel BUILD file true to the tree.

Every Python module of the library, components, pipelines and benchmarks must
be in the `srcs` of some target, and every test file must have a `py_test`
of its own. A file added without a target fails here.
"""

import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parent.parent
PACKAGES = ("a2d_tf", "components", "pipelines", "bench")


def _targets():
  text = (ROOT / "BUILD").read_text()
  targets = []
  pattern = re.compile(r"(py_library|py_test|py_binary)\((.*?)\n\)", re.S)
  for kind, body in pattern.findall(text):
    name = re.search(r'name\s*=\s*"([^"]+)"', body).group(1)
    srcs_match = re.search(r"srcs\s*=\s*\[(.*?)\]", body, re.S)
    srcs = re.findall(r'"([^"]+)"', srcs_match.group(1)) if srcs_match else []
    targets.append((kind, name, srcs))
  return targets


def test_every_module_is_in_a_target():
  covered = {src for _, _, srcs in _targets() for src in srcs}
  missing = []
  for package in PACKAGES:
    for path in sorted((ROOT / package).rglob("*.py")):
      rel = path.relative_to(ROOT).as_posix()
      if rel not in covered:
        missing.append(rel)
  assert not missing, f"Add these to a BUILD target: {missing}"


def test_every_test_file_has_its_py_test():
  tests = {name: srcs for kind, name, srcs in _targets() if kind == "py_test"}
  missing = []
  for path in sorted((ROOT / "tests").glob("*_test.py")):
    rel = path.relative_to(ROOT).as_posix()
    if tests.get(path.stem) != [rel]:
      missing.append(rel)
  assert not missing, f"Each needs a py_test named after it: {missing}"


def test_build_names_no_missing_file():
  stale = [
    src
    for _, _, srcs in _targets()
    for src in srcs
    if not (ROOT / src).exists()
  ]
  assert not stale, f"BUILD lists files that do not exist: {stale}"
