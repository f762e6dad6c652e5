"""Tests for the `python -m a2d_tf.evaluate` command line."""

import json
import os
import pathlib
import subprocess
import sys

import pytest

from a2d_tf.metrics import narrativeqa, squad

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


def _addsent_json():
  """AddSent-shaped data: originals and variants in separate paragraphs."""
  original = "Peyton Manning led the Denver Broncos to victory."
  distractor = " Jeff Dean led the Chicago Bears to victory."

  def paragraph(context, qas):
    return {
      "context": context,
      "qas": [
        {
          "id": qid,
          "question": "Who led the team?",
          "answers": [{"text": "Peyton Manning", "answer_start": 0}],
        }
        for qid in qas
      ],
    }

  q1, q2 = "56be4db0acb8001400a502ec", "56be4db0acb8001400a502ed"
  return (
    {
      "version": "1.1",
      "data": [
        {
          "title": "Super_Bowl_50",
          "paragraphs": [
            paragraph(original, [q1, q2]),
            paragraph(
              original + distractor,
              [f"{q1}-high-conf-turk0", f"{q2}-high-conf-turk0"],
            ),
            paragraph(original + distractor, [f"{q1}-high-conf-turk1"]),
          ],
        }
      ],
    },
    q1,
    q2,
  )


def test_cli_adversarial_addsent_file_worst_case_per_original(tmp_path):
  dataset, q1, q2 = _addsent_json()
  predictions = {
    q1: "Peyton Manning",
    f"{q1}-high-conf-turk0": "Peyton Manning",
    f"{q1}-high-conf-turk1": "Jeff Dean",  # fooled by one variant
    q2: "Peyton Manning",
    f"{q2}-high-conf-turk0": "Manning",  # EM 0, F1 2/3
  }
  result = _run(
    _write(tmp_path, "addsent.json", dataset),
    _write(tmp_path, "pred.json", predictions),
    "--task=adversarial",
  )
  assert result.returncode == 0, result.stderr
  scores = json.loads(result.stdout)
  assert scores["num_original"] == 2
  assert scores["num_variants"] == 3
  assert scores["exact_match"] == pytest.approx(0.0)
  assert scores["f1"] == pytest.approx(100 * (0 + 2 / 3) / 2)
  # The same file scored as plain SQuAD averages over all five questions.
  plain = json.loads(
    _run(
      _write(tmp_path, "addsent.json", dataset),
      _write(tmp_path, "pred.json", predictions),
    ).stdout
  )
  assert plain["exact_match"] == pytest.approx(60.0)


_NQA_REFERENCES = {
  "docA_0": ["the old man", "an old man"],
  "docA_1": ["a b c d x y z", "q"],
  "docB_0": ["in Paris .", "Paris"],
}
_NQA_PREDICTIONS = {"docA_0": "The Old Man", "docA_1": "a b c d e"}


def test_cli_narrativeqa_scores_json_references(tmp_path):
  result = _run(
    _write(tmp_path, "refs.json", _NQA_REFERENCES),
    _write(tmp_path, "pred.json", _NQA_PREDICTIONS),
    "--task=narrativeqa",
  )
  assert result.returncode == 0, result.stderr
  scores = json.loads(result.stdout)
  assert scores == pytest.approx(
    narrativeqa.evaluate_narrativeqa(_NQA_REFERENCES, _NQA_PREDICTIONS)
  )
  # ROUGE-L: docA_0 exact (1); docA_1 LCS 4, P = 4/5, R = 4/7; docB_0 0.
  p, r = 4 / 5, 4 / 7
  rouge_a1 = 2.44 * p * r / (r + 1.44 * p)
  assert scores["rouge_l"] == pytest.approx(100 * (1 + rouge_a1) / 3)
  assert "1 unanswered question(s)" in result.stderr
  assert "docB_0" in result.stderr


def test_cli_narrativeqa_reads_split_from_qaps_directory(tmp_path):
  header = "document_id,set,question,answer1,answer2,question_tokenized,"
  header += "answer1_tokenized,answer2_tokenized\n"
  rows = [
    "docA,train,q,a,b,q ?,the old man,an old man\n",
    "docB,test,q,a,b,q ?,in Paris .,Paris\n",
    "docA,train,q,a,b,q ?,a b c d x y z,q\n",
  ]
  (tmp_path / "qaps.csv").write_text(header + "".join(rows), encoding="utf-8")
  predictions = _write(tmp_path, "pred.json", {"docB_0": "Paris"})
  result = _run(str(tmp_path), predictions, "--task=narrativeqa")
  assert result.returncode == 0, result.stderr
  # Only the test split (the default) is scored: docB_0, exactly right.
  assert json.loads(result.stdout)["rouge_l"] == pytest.approx(100.0)
  assert "unanswered" not in result.stderr
  result = _run(
    str(tmp_path), predictions, "--task=narrativeqa", "--split=train"
  )
  assert result.returncode == 0, result.stderr
  assert json.loads(result.stdout)["rouge_l"] == pytest.approx(0.0)
  assert "2 unanswered question(s)" in result.stderr
  assert "docA_0, docA_1" in result.stderr


@pytest.mark.parametrize(
  "dataset, message",
  [
    (["docA_0"], "expected a JSON object"),
    ({"docA_0": "the old man"}, "record docA_0, field 'references'"),
    ({}, "no questions"),
  ],
)
def test_cli_narrativeqa_bad_references_one_line_error(
  tmp_path, dataset, message
):
  result = _run(
    _write(tmp_path, "refs.json", dataset),
    _write(tmp_path, "pred.json", _NQA_PREDICTIONS),
    "--task=narrativeqa",
  )
  assert result.returncode == 1
  assert result.stdout == ""
  lines = result.stderr.strip().splitlines()
  assert len(lines) == 1, result.stderr
  assert lines[0].startswith("error: ")
  assert message in lines[0]


_ALL_RIGHT = {
  "q1": "Denver Broncos",
  "q2": "cat sat on the mat",
  "q3": "Paris",
  "q1-addsent": "Denver Broncos",
}


def test_cli_compare_to_prints_the_paired_difference_and_interval(tmp_path):
  dataset = _dataset_json()
  result = _run(
    _write(tmp_path, "dev.json", dataset),
    _write(tmp_path, "a.json", _ALL_RIGHT),
    f"--compare_to={_write(tmp_path, 'b.json', _PREDICTIONS)}",
    "--resamples=200",
  )
  assert result.returncode == 0, result.stderr
  out = json.loads(result.stdout)
  assert out["scores"] == squad.evaluate(dataset["data"], _ALL_RIGHT)
  assert out["other_scores"] == squad.evaluate(dataset["data"], _PREDICTIONS)
  # The other file misses q3: named with its path.
  assert "1 unanswered question(s) in " in result.stderr
  assert "b.json" in result.stderr
  for metric in ("exact_match", "f1"):
    diff = out["difference"][metric]
    assert diff["difference"] == pytest.approx(
      out["scores"][metric] - out["other_scores"][metric]
    )
    low, high = diff["interval"]
    assert low <= diff["difference"] <= high
    assert diff["units"] == 4 and diff["resamples"] == 200
    # Every question is at least as good in the first file, q3 better.
    assert low >= 0 and diff["excludes_zero"] == (low > 0)


def test_cli_compare_to_itself_is_not_resolved(tmp_path):
  dataset = _write(tmp_path, "dev.json", _dataset_json())
  predictions = _write(tmp_path, "a.json", _PREDICTIONS)
  result = _run(dataset, predictions, f"--compare_to={predictions}")
  assert result.returncode == 0, result.stderr
  diff = json.loads(result.stdout)["difference"]["f1"]
  assert diff["difference"] == 0 and diff["interval"] == [0.0, 0.0]
  assert diff["excludes_zero"] is False


def test_cli_compare_to_adversarial_resamples_original_questions(tmp_path):
  result = _run(
    _write(tmp_path, "dev.json", _dataset_json()),
    _write(tmp_path, "a.json", _ALL_RIGHT),
    f"--compare_to={_write(tmp_path, 'b.json', _PREDICTIONS)}",
    "--task=adversarial",
  )
  assert result.returncode == 0, result.stderr
  out = json.loads(result.stdout)
  # q1 and q1-addsent are one unit: 3 originals.
  assert out["difference"]["f1"]["units"] == 3
  assert out["scores"]["num_original"] == 3
  assert out["difference"]["exact_match"]["difference"] == pytest.approx(100.0)


def test_cli_compare_to_bad_file_is_one_line_error(tmp_path):
  result = _run(
    _write(tmp_path, "dev.json", _dataset_json()),
    _write(tmp_path, "a.json", _PREDICTIONS),
    f"--compare_to={_write(tmp_path, 'b.json', '[1')}",
  )
  assert result.returncode == 1
  assert result.stdout == ""
  lines = result.stderr.strip().splitlines()
  assert len(lines) == 1 and "prediction file" in lines[0]
  assert "b.json" in lines[0] and "Traceback" not in result.stderr


def test_compare_is_seeded_and_uses_every_metric():
  from a2d_tf.metrics import bootstrap

  units = {"f1": {"a": 1.0, "b": 0.5, "c": 0.0}, "exact_match": {"a": 1.0}}
  other = {"f1": {"a": 0.0, "b": 0.5, "c": 0.0}, "exact_match": {"a": 0.0}}
  first = bootstrap.paired_intervals(units, other, num_resamples=50, seed=3)
  assert first == bootstrap.paired_intervals(
    units, other, num_resamples=50, seed=3
  )
  assert set(first) == {"f1", "exact_match"}
  assert first["f1"]["difference"] == pytest.approx(100 / 3)
  with pytest.raises(ValueError, match="same units"):
    bootstrap.paired_intervals(
      units, {"f1": {"a": 0.0}, "exact_match": {"a": 0.0}}
    )


def test_cli_compare_to_narrativeqa_has_an_interval_on_rouge_l_only(tmp_path):
  refs = _write(tmp_path, "refs.json", _NQA_REFERENCES)
  result = _run(
    refs,
    _write(tmp_path, "a.json", _NQA_PREDICTIONS),
    f"--compare_to={_write(tmp_path, 'b.json', {})}",
    "--task=narrativeqa",
  )
  assert result.returncode == 0, result.stderr
  out = json.loads(result.stdout)
  assert set(out["difference"]) == {"rouge_l"}
  diff = out["difference"]["rouge_l"]
  assert diff["units"] == len(_NQA_REFERENCES)
  assert diff["difference"] == pytest.approx(
    out["scores"]["rouge_l"] - out["other_scores"]["rouge_l"]
  )
  assert diff["difference"] > 0
