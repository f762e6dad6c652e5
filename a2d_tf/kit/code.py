"""Code versions: the source a component runs, found statically.

A component's code version is a digest of its own module and of every
project module (`PROJECT_PACKAGES`) that module imports, transitively: the
import closure, read from the source with `ast` (imports inside functions
included), so it does not depend on what a process happens to have
imported. Importing `a2d_tf.data.dataset` also runs `a2d_tf/__init__.py`
and `a2d_tf/data/__init__.py`, so parent packages count too. Editing
`a2d_tf/figures.py` changes only the steps whose closure holds it (the
analysis), while editing a layer changes every step that builds or loads a
model.

The kit itself (`RUNNER_PACKAGE`) is left out: it decides where and how a
step runs and records it, not what the step computes.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import inspect
import pathlib
from collections.abc import Callable
from typing import Any

PROJECT_PACKAGES = ("a2d_tf", "components")
RUNNER_PACKAGE = "a2d_tf.kit"


def project_root() -> pathlib.Path:
  """The directory holding the project packages (checkout, site-packages)."""
  return pathlib.Path(__file__).resolve().parents[2]


def read_source(path: pathlib.Path) -> str:
  """The text of a source file: the one place the kit reads code."""
  return path.read_text(encoding="utf-8")


def _in_project(name: str) -> bool:
  if name.split(".")[0] not in PROJECT_PACKAGES:
    return False
  return name != RUNNER_PACKAGE and not name.startswith(RUNNER_PACKAGE + ".")


def _module_file(name: str, root: pathlib.Path) -> pathlib.Path | None:
  base = root.joinpath(*name.split("."))
  for candidate in (base.parent / f"{base.name}.py", base / "__init__.py"):
    if candidate.is_file():
      return candidate
  return None


@functools.lru_cache(maxsize=4096)
def _imported_names(source: str, package: str) -> tuple[str, ...]:
  """Every name an import statement in `source` may load as a module.

  `from a.b import c` yields `a.b` and `a.b.c` (c may be a module or an
  attribute; the caller keeps the names that are files). Relative imports
  are resolved against `package`.
  """
  names = []
  for node in ast.walk(ast.parse(source)):
    if isinstance(node, ast.Import):
      names.extend(alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom):
      base = node.module or ""
      if node.level:
        parts = package.split(".") if package else []
        kept = parts[: len(parts) - node.level + 1]
        base = ".".join([*kept, base] if base else kept)
      names.append(base)
      names.extend(f"{base}.{alias.name}" for alias in node.names)
  return tuple(n for n in names if n)


def _label(path: pathlib.Path, name: str, root: pathlib.Path) -> str:
  try:
    return path.resolve().relative_to(root.resolve()).as_posix()
  except ValueError:
    return name


def closure(
  module: str, path: str | pathlib.Path, root: pathlib.Path | None = None
) -> dict[str, str]:
  """The sources a module runs: itself and its project imports, transitively.

  Args:
    module: The module's name, e.g. "components.train_teacher".
    path: Its source file.
    root: Where the project packages are found; default `project_root()`.

  Returns:
    Label -> source text, labels being paths relative to `root` (e.g.
    "a2d_tf/layers/fusion.py"; the module's name when it lies elsewhere).
  """
  root = root or project_root()
  sources: dict[str, str] = {}
  pending = [(module, pathlib.Path(path))]
  # Importing the module runs its parent packages' `__init__.py` first.
  pending += _project_modules(module.rpartition(".")[0], root)
  while pending:
    name, file = pending.pop()
    label = _label(file, name, root)
    if label in sources:
      continue
    text = read_source(file)
    sources[label] = text
    package = name if file.name == "__init__.py" else name.rpartition(".")[0]
    for imported in _imported_names(text, package):
      pending += _project_modules(imported, root)
  return sources


def _project_modules(
  name: str, root: pathlib.Path
) -> list[tuple[str, pathlib.Path]]:
  """`name` and its parent packages that are project modules, with files."""
  parts = name.split(".") if name else []
  found = []
  for end in range(1, len(parts) + 1):
    candidate = ".".join(parts[:end])
    path = _module_file(candidate, root) if _in_project(candidate) else None
    if path is not None:
      found.append((candidate, path))
  return found


def digest(sources: dict[str, str]) -> str:
  """A 16-hex-digit digest of labelled sources."""
  hasher = hashlib.sha256()
  for label in sorted(sources):
    hasher.update(label.encode())
    hasher.update(b"\0")
    hasher.update(sources[label].encode())
    hasher.update(b"\0")
  return hasher.hexdigest()[:16]


def code_version(
  fn: Callable[..., Any], root: pathlib.Path | None = None
) -> str:
  """The code version of a component function: its closure's digest.

  Raises:
    TypeError: `fn` was not defined in a source file (e.g. typed into an
      interpreter), so there is no code to version.
  """
  path = inspect.getsourcefile(fn)
  if path is None or not pathlib.Path(path).is_file():
    raise TypeError(
      f"{fn.__name__}: a component must be defined in a source file, "
      f"not in {path or 'a built-in module'}."
    )
  return digest(closure(fn.__module__, path, root))
