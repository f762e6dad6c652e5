"""Tests for the `python -m a2d_tf.evaluate` command line."""

import json
import os
import pathlib
import subprocess
import sys

import pytest

from a2d_tf.metrics import squad

_REPO = pathlib.Path(__file__).resolve().parents[1]


def _dataset_json(version="1.1"):
  qas = [
    ("q1", ["Denver Broncos"]),
    ("q2", ["cat sat on the mat"]),
    ("q3", ["Paris"]),
    ("q1-addsent", ["Denver Broncos"]),
  ]
  return {
    "version": version,
    "data": [
      {
        "title": "T",
        "paragraphs": [
          {
            "context": "c",
            "qas": [
              {
                "id": qid,
                "question": "q?",
                "answers": [{"text": t, "answer_start": 0} for t in answers],
              }
              for qid, answers in qas
            ],
          }
        ],
      }
    ],
  }


_PREDICTIONS = {"q1": "the Denver Broncos", "q2": "cat sat", "q1-addsent": "x"}


def _write(tmp_path, name, content):
  path = tmp_path / name
  if isinstance(content, str):
    path.write_text(content, encoding="utf-8")
  else:
    path.write_text(json.dumps(content), encoding="utf-8")
  return str(path)


def _run(*args):
  env = dict(os.environ)
  env["PYTHONPATH"] = os.pathsep.join(
    [str(_REPO), env.get("PYTHONPATH", "")]
  ).rstrip(os.pathsep)
  return subprocess.run(
    [sys.executable, "-m", "a2d_tf.evaluate", *args],
    capture_output=True,
    text=True,
    cwd=_REPO,
    env=env,
    timeout=120,
    check=False,
  )


def test_cli_squad_prints_official_scores(tmp_path):
  dataset = _dataset_json()
  result = _run(
    _write(tmp_path, "dev.json", dataset),
    _write(tmp_path, "pred.json", _PREDICTIONS),
  )
  assert result.returncode == 0, result.stderr
  scores = json.loads(result.stdout)
  assert scores == squad.evaluate(dataset["data"], _PREDICTIONS)
  # q1 exact, q2 F1 2/3, q3 missing, q1-addsent wrong.
  assert scores["exact_match"] == pytest.approx(25.0)
  assert scores["f1"] == pytest.approx(100 * (1 + 2 / 3) / 4)
  assert "1 unanswered question(s)" in result.stderr
  assert "q3" in result.stderr
  assert "expects v-1.1" not in result.stderr


def test_cli_adversarial_prints_worst_case(tmp_path):
  result = _run(
    _write(tmp_path, "dev.json", _dataset_json()),
    _write(tmp_path, "pred.json", _PREDICTIONS),
    "--task=adversarial",
  )
  assert result.returncode == 0, result.stderr
  scores = json.loads(result.stdout)
  # Groups: q1 (worst of q1, q1-addsent = 0), q2 (F1 2/3), q3 (missing).
  assert scores["num_original"] == 3
  assert scores["num_variants"] == 1
  assert scores["exact_match"] == pytest.approx(0.0)
  assert scores["f1"] == pytest.approx(100 * (2 / 3) / 3)


def test_cli_other_version_warns_and_still_scores(tmp_path):
  result = _run(
    _write(tmp_path, "dev.json", _dataset_json(version="2.0")),
    _write(tmp_path, "pred.json", _PREDICTIONS),
  )
  assert result.returncode == 0, result.stderr
  assert "Evaluation expects v-1.1, but got dataset with v-2.0" in (
    result.stderr
  )
  assert "exact_match" in json.loads(result.stdout)


def test_cli_many_missing_lists_only_first_ids(tmp_path):
  result = _run(
    _write(tmp_path, "dev.json", _dataset_json()),
    _write(tmp_path, "pred.json", {}),
  )
  assert result.returncode == 0, result.stderr
  assert "4 unanswered question(s)" in result.stderr
  assert json.loads(result.stdout) == {"exact_match": 0.0, "f1": 0.0}


@pytest.mark.parametrize(
  "dataset, predictions, message",
  [
    (None, _PREDICTIONS, "cannot read dataset file"),
    (_dataset_json(), None, "cannot read prediction file"),
    ("{not json", _PREDICTIONS, "not valid JSON"),
    (_dataset_json(), "[1, 2", "not valid JSON"),
    (_dataset_json(), ["q1"], "must hold a JSON object"),
    (_dataset_json(), {"q1": 3}, "must be a string"),
    ({"version": "1.1"}, _PREDICTIONS, "no top-level 'data'"),
    ({"data": {}}, _PREDICTIONS, "'data' must be a list"),
    (
      {"version": "1.1", "data": [{"paragraphs": [{"qas": [{}]}]}]},
      _PREDICTIONS,
      "field 'id'",
    ),
  ],
)
def test_cli_bad_input_one_line_error(tmp_path, dataset, predictions, message):
  dataset_path = (
    str(tmp_path / "missing_dev.json")
    if dataset is None
    else _write(tmp_path, "dev.json", dataset)
  )
  prediction_path = (
    str(tmp_path / "missing_pred.json")
    if predictions is None
    else _write(tmp_path, "pred.json", predictions)
  )
  result = _run(dataset_path, prediction_path)
  assert result.returncode != 0
  assert result.stdout == ""
  assert "Traceback" not in result.stderr
  lines = result.stderr.strip().splitlines()
  assert len(lines) == 1, result.stderr
  assert lines[0].startswith("error: ")
  assert message in lines[0]


def test_cli_wrong_arguments_is_usage_error(tmp_path):
  result = _run(_write(tmp_path, "dev.json", _dataset_json()))
  assert result.returncode == 2
  assert "usage:" in result.stderr
  assert "Traceback" not in result.stderr


def test_cli_unknown_task_fails_without_traceback(tmp_path):
  result = _run(
    _write(tmp_path, "dev.json", _dataset_json()),
    _write(tmp_path, "pred.json", _PREDICTIONS),
    "--task=bleu",
  )
  assert result.returncode != 0
  assert "task" in result.stderr
  assert "Traceback" not in result.stderr
