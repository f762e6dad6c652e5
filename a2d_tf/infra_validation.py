"""Infra check of a serving SavedModel: load it afresh, send canaries.

TFX's InfraValidator loads a model in a real model server and sends it
requests before the Pusher may publish it. Here the exported version folder
is loaded in a fresh interpreter (`python -I`: no PYTHONPATH, no working
directory on the path) that imports only `tensorflow` and
`tensorflow_text` and refuses to import a2d, as a TF Serving host would
hold them, and `serving_default` answers one batch of canary rows
(`CANARIES`): ordinary questions, Unicode, a NUL and zero-width
characters between words, an empty context, an invisible-only question and
a context that is not UTF-8. The subprocess only reports what the
signature returned; this module judges it (`judge`):

* the signature exists and returns `SERVING_OUTPUTS`, each of shape
  `[batch]` with its dtype;
* every row has its expected `status`;
* an answered row's offsets lie in its context, `context[start:end] ==
  answer`, and its score is a probability; a row without an answer has
  `answer ""`, offsets -1 and score 0;
* nothing of a2d was imported.

The model is infra-blessed when all of it holds; otherwise the reason names
the first thing that failed (the load error's last line, a missing output,
a canary and what was wrong with it).
"""

from __future__ import annotations

import base64
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from typing import Any

from a2d_tf import serving as serving_lib

# Seconds the fresh process may take to load the model and answer.
DEFAULT_TIMEOUT_S = 600

_CONTEXT = (
  "Mafith Society showed its work in Gairbelle in 1897. In 1876, Mafith "
  "Society opened a branch in Neska."
)
# (name, question bytes, context bytes, expected status)
CANARIES: tuple[tuple[str, bytes, bytes, str], ...] = (
  (
    "plain",
    b"Where did Mafith Society hold an exhibition?",
    _CONTEXT.encode(),
    "ok",
  ),
  (
    "unicode",
    "Wo zeigte die Gesellschaft 🙂 ihre Werke?".encode(),
    "Die Mafith-Gesellschaft zeigte 1897 ihre Werke in Gärbelle, sagte "
    "Zoë. 東京".encode(),
    "ok",
  ),
  (
    "nul_and_zero_width",
    "When did\x00 Mafith\u200b Society open a branch?".encode(),
    _CONTEXT.replace(" ", "\u200d ", 2).encode(),
    "ok",
  ),
  (
    "long_context",
    b"Where is the branch?",
    (_CONTEXT + " ").encode() * 60,
    "ok",
  ),
  ("empty_context", b"Who?", b"", "empty_context"),
  (
    "invisible_question",
    "\u200b\ufeff\u2060".encode(),
    b"Hello.",
    "empty_question",
  ),
  (
    "invalid_utf8_context",
    b"Who?",
    b"Mafith \xff\xfe Society.",
    "invalid_utf8_context",
  ),
)

# Runs in the fresh interpreter: load, call, report raw outputs as JSON.
CANARY_SCRIPT = r"""
import base64
import json
import sys


class _NoA2D:
  def find_spec(self, name, path=None, target=None):
    if name.split(".")[0] in ("a2d_tf", "components", "pipelines"):
      raise ImportError("a2d must not be needed to serve: " + name)
    return None


sys.meta_path.insert(0, _NoA2D())
request = json.load(open(sys.argv[1], encoding="utf-8"))
import tensorflow as tf
import tensorflow_text  # noqa: F401  (registers the tokenizer's op)

loaded = tf.saved_model.load(request["path"])
result = {"signatures": sorted(loaded.signatures)}
if request["signature"] in loaded.signatures:
  fn = loaded.signatures[request["signature"]]
  rows = [base64.b64decode(v) for v in request["questions"]]
  cols = [base64.b64decode(v) for v in request["contexts"]]
  out = fn(question=tf.constant(rows), context=tf.constant(cols))
  outputs = {}
  for key, value in out.items():
    values = value.numpy().tolist()
    if value.dtype == tf.string:
      values = [base64.b64encode(v).decode("ascii") for v in values]
    outputs[key] = {
      "dtype": value.dtype.name,
      "shape": list(value.shape),
      "values": values,
    }
  result["outputs"] = outputs
result["a2d_imported"] = sorted(
  m for m in sys.modules if m.split(".")[0] in ("a2d_tf", "components")
)
json.dump(result, open(sys.argv[2], "w", encoding="utf-8"))
"""

# The dtype of each `serving_default` output.
_DTYPES = {
  "answer": "string",
  "start_char": "int64",
  "end_char": "int64",
  "score": "float32",
  "status": "string",
}


def _b64(values: Sequence[bytes]) -> list[str]:
  return [base64.b64encode(v).decode("ascii") for v in values]


def run_canaries(
  saved_model_dir: str,
  canaries: Sequence[tuple[str, bytes, bytes, str]] = CANARIES,
  timeout_s: float = DEFAULT_TIMEOUT_S,
) -> dict[str, Any]:
  """Loads the SavedModel in a fresh interpreter and sends the canaries.

  Returns:
    `{"returncode", "stderr_tail", "seconds", "response"}`; `response` is
    what the script reported (None when it failed or timed out).
  """
  began = time.monotonic()
  with tempfile.TemporaryDirectory(prefix="a2d-infra-") as work:
    script = os.path.join(work, "canary.py")
    request = os.path.join(work, "request.json")
    response = os.path.join(work, "response.json")
    with open(script, "w", encoding="utf-8") as f:
      f.write(CANARY_SCRIPT)
    with open(request, "w", encoding="utf-8") as f:
      json.dump(
        {
          "path": os.path.abspath(saved_model_dir),
          "signature": serving_lib.SERVING_SIGNATURE,
          "questions": _b64([q for _, q, _, _ in canaries]),
          "contexts": _b64([c for _, _, c, _ in canaries]),
        },
        f,
      )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
      proc = subprocess.run(
        [sys.executable, "-I", script, request, response],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout_s,
      )
    except subprocess.TimeoutExpired:
      return {
        "returncode": None,
        "stderr_tail": f"timed out after {timeout_s:g}s",
        "seconds": time.monotonic() - began,
        "response": None,
      }
    loaded = None
    if proc.returncode == 0 and os.path.exists(response):
      with open(response, encoding="utf-8") as f:
        loaded = json.load(f)
  lines = [x for x in proc.stderr.splitlines() if x.strip()]
  return {
    "returncode": proc.returncode,
    "stderr_tail": lines[-1].strip() if lines else "",
    "seconds": time.monotonic() - began,
    "response": loaded,
  }


def _row_problem(context: bytes, expected: str, row: Mapping[str, Any]) -> str:
  """What is wrong with one canary's outputs, or ""."""
  if row["status"] != expected:
    return f"status {row['status']!r}, expected {expected!r}"
  answer, start, end, score = (
    row["answer"],
    row["start_char"],
    row["end_char"],
    row["score"],
  )
  if expected != serving_lib.OK:
    if (answer, start, end, score) != ("", -1, -1, 0.0):
      return (
        f"an unanswerable row returned answer={answer!r}, "
        f"start_char={start}, end_char={end}, score={score}"
      )
    return ""
  text = context.decode("utf-8")
  if not 0 <= start < end <= len(text):
    return f"offsets [{start}, {end}) outside the context ({len(text)})"
  if text[start:end] != answer:
    return (
      f"answer {answer!r} is not context[{start}:{end}] ({text[start:end]!r})"
    )
  if not (math.isfinite(score) and 0.0 <= score <= 1.0):
    return f"score {score} is not a probability"
  return ""


def judge(
  result: Mapping[str, Any],
  canaries: Sequence[tuple[str, bytes, bytes, str]] = CANARIES,
) -> dict[str, Any]:
  """The infra blessing from `run_canaries`' result.

  Returns:
    `{"blessed", "reason", "seconds", "canaries"}`; each canary entry has
    `name`, `expected_status`, `status`, `answer`, `passed`, `problem`.
  """
  blessing = {"blessed": False, "seconds": round(result["seconds"], 1)}
  response = result["response"]
  if response is None:
    why = result["stderr_tail"] or f"exit status {result['returncode']}"
    return {
      **blessing,
      "reason": f"the SavedModel did not load and answer in a fresh process: "
      f"{why}",
      "canaries": [],
    }
  if response.get("a2d_imported"):
    return {
      **blessing,
      "reason": f"serving imported a2d: {response['a2d_imported']}",
      "canaries": [],
    }
  signature = serving_lib.SERVING_SIGNATURE
  if "outputs" not in response:
    return {
      **blessing,
      "reason": f"no {signature} signature (has {response['signatures']})",
      "canaries": [],
    }
  outputs = response["outputs"]
  for key, dtype in _DTYPES.items():
    if key not in outputs:
      return {
        **blessing,
        "reason": f"{signature} has no output {key!r}",
        "canaries": [],
      }
    got = outputs[key]
    if got["dtype"] != dtype or got["shape"] != [len(canaries)]:
      return {
        **blessing,
        "reason": f"output {key!r} is {got['dtype']} {got['shape']}, "
        f"expected {dtype} [{len(canaries)}]",
        "canaries": [],
      }
  rows = []
  for i, (name, _, context, expected) in enumerate(canaries):
    row = {key: outputs[key]["values"][i] for key in _DTYPES}
    for key in ("answer", "status"):
      row[key] = base64.b64decode(row[key]).decode("utf-8", "replace")
    problem = _row_problem(context, expected, row)
    rows.append(
      {
        "name": name,
        "expected_status": expected,
        "status": row["status"],
        "answer": row["answer"],
        "passed": not problem,
        "problem": problem,
      }
    )
  failed = [r for r in rows if not r["passed"]]
  if failed:
    reason = "; ".join(f"canary {r['name']}: {r['problem']}" for r in failed)
  else:
    reason = (
      f"loaded with only tensorflow and tensorflow_text in a fresh process "
      f"and answered {len(rows)} canary rows as expected"
    )
  return {**blessing, "blessed": not failed, "reason": reason, "canaries": rows}


def check_serving_model(
  saved_model_dir: str, timeout_s: float = DEFAULT_TIMEOUT_S
) -> dict[str, Any]:
  """Infra-validates one exported version folder (see the module doc)."""
  return judge(run_canaries(saved_model_dir, CANARIES, timeout_s), CANARIES)
