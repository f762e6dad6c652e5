"""Tests of the serving export: raw text in a fresh process, CLI, contract."""

import base64
import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from a2d_tf import config as config_lib
from a2d_tf import inference, serving
from a2d_tf.config import get_config
from a2d_tf.data import dataset, features, synthetic, tokenization
from a2d_tf.data import vocab as vocab_lib
from a2d_tf.data.records import Record
from a2d_tf.models.reader import build_reader

CONFIG = get_config("tiny")
NUM_TRAIN, NUM_DEV = 12, 3

# Runs in a fresh interpreter (`python -I`: no PYTHONPATH, no cwd on the
# path) that refuses to import a2d_tf: the export must need only TensorFlow
# and tensorflow-text.
LOAD_SCRIPT = r"""
import base64
import json
import sys


class _NoA2D:
  def find_spec(self, name, path=None, target=None):
    if name.split(".")[0] == "a2d_tf":
      raise ImportError("a2d_tf must not be needed to serve: " + name)
    return None


sys.meta_path.insert(0, _NoA2D())
import tensorflow as tf
import tensorflow_text  # noqa: F401  (registers the tokenizer op)

request = json.load(open(sys.argv[1], encoding="utf-8"))
serve = tf.saved_model.load(request["path"]).signatures["serving_default"]


def answer(questions, contexts):
  out = serve(question=tf.constant(questions), context=tf.constant(contexts))
  return [
    {
      "answer": text.decode("utf-8"),
      "start_char": int(start),
      "end_char": int(end),
      "score": float(score),
      "status": status.decode("utf-8"),
    }
    for text, start, end, score, status in zip(
      out["answer"].numpy(),
      out["start_char"].numpy(),
      out["end_char"].numpy(),
      out["score"].numpy(),
      out["status"].numpy(),
    )
  ]


# Rows travel as base64: some are not UTF-8.
def raw(values):
  return [base64.b64decode(v) for v in values]


result = {
  "batch": answer(raw(request["questions"]), raw(request["contexts"])),
  "all_empty": answer(["", "Who?"], ["", "   "]),
  "a2d_imported": any(m.startswith("a2d_tf") for m in sys.modules),
}
json.dump(result, open(sys.argv[2], "w", encoding="utf-8"))
"""


def _record(record_id, context, question):
  return Record(record_id, "t", context, question, ())


def _serving_records(dev):
  """Dev questions plus the edge cases the contract names."""
  long_context = " ".join(r.context for r in dev[::4]) * 3
  unicode_context = "Café — 東京 🙂 «Zoë» naïve. " + dev[1].context
  return [
    dev[0],
    _record("long", long_context, dev[0].question),
    _record("unicode", unicode_context, dev[1].question),
    _record("unicode_question", dev[2].context, "Qui était-ce 🙂 ?"),
    _record("empty_context", "", dev[0].question),
    _record("empty_question", dev[0].context, ""),
    _record("blank_context", " \n\t ", dev[0].question),
    # Control and invisible characters are whitespace, in training features
    # and in serving alike.
    _record(
      "nul_question", dev[1].context, dev[1].question.replace(" ", "\x00 ", 1)
    ),
    _record(
      "nul_context",
      dev[2].context.replace(" ", "\x00\u200b", 3),
      dev[2].question,
    ),
    _record("invisible_question", dev[0].context, "\u200b\u2060\ufeff"),
    _record("invisible_context", "\u200d\x00\u200e", dev[0].question),
    dev[3],
  ]


# Rows that are not UTF-8, with the status each must get.
INVALID_ROWS = [
  (b"Who \xff?", b"Mafith Society showed its work.", "invalid_utf8_question"),
  (b"Who?", b"Mafith \xc0\x80 Society.", "invalid_utf8_context"),
  (b"Who?", b"\xed\xa0\x80 encoded surrogate", "invalid_utf8_context"),
]


def _expected_status(record):
  if not tokenization.tokenize(record.question):
    return "empty_question"
  if not tokenization.tokenize(record.context):
    return "empty_context"
  return "ok"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
  """A tiny reader trained for an epoch, its vocab, and the dev records."""
  from a2d_tf import training

  root = tmp_path_factory.mktemp("serving")
  corpus = synthetic.generate_corpus(NUM_TRAIN, NUM_DEV, seed=5)
  vocab = vocab_lib.build_vocabulary(corpus["train"], 1, 1, lowercase=True)
  features.write_split(
    corpus["train"], vocab, CONFIG.data, str(root / "data"), "train", True
  )
  train_ds = dataset.make_dataset(
    features.file_pattern(str(root / "data"), "train"),
    CONFIG.data,
    CONFIG.train.batch_size,
    training=True,
    seed=1,
  )
  reader = training.train(
    get_config("tiny", ["runtime.run_eagerly=true"]),
    training.CE,
    vocab.num_words,
    vocab.num_chars,
    train_ds,
    str(root / "train"),
    epochs=1,
  )
  return reader, vocab, corpus["dev"], root


@pytest.fixture(scope="module")
def exported(trained):
  reader, vocab, _, root = trained
  path = serving.export_serving_model(
    reader, vocab, CONFIG, str(root / "serving"), version=3
  )
  return path


def _offline(reader, vocab, records, out_dir):
  features.write_split(records, vocab, CONFIG.data, out_dir, "serve", False)
  ds = dataset.make_dataset(
    features.file_pattern(out_dir, "serve"),
    CONFIG.data,
    batch_size=3,
    training=False,
    with_metadata=True,
  )
  predictions, _ = inference.predict(
    [reader], ds, {r.id: r for r in records}, CONFIG.model.max_answer_len
  )
  return predictions


def _b64(values):
  return [base64.b64encode(v).decode("ascii") for v in values]


def _serve_in_fresh_process(path, records, work_dir, extra_rows=()):
  request = os.path.join(work_dir, "request.json")
  response = os.path.join(work_dir, "response.json")
  script = os.path.join(work_dir, "load.py")
  with open(script, "w") as f:
    f.write(LOAD_SCRIPT)
  questions = [r.question.encode("utf-8") for r in records]
  contexts = [r.context.encode("utf-8") for r in records]
  questions += [q for q, _, _ in extra_rows]
  contexts += [c for _, c, _ in extra_rows]
  with open(request, "w", encoding="utf-8") as f:
    json.dump(
      {"path": path, "questions": _b64(questions), "contexts": _b64(contexts)},
      f,
    )
  env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
  proc = subprocess.run(
    [sys.executable, "-I", script, request, response],
    cwd=work_dir,
    env=env,
    capture_output=True,
    text=True,
    timeout=300,
  )
  assert proc.returncode == 0, proc.stderr[-3000:]
  with open(response, encoding="utf-8") as f:
    return json.load(f)


def test_export_writes_integer_version_folder(exported, trained):
  root = trained[3]
  assert exported == os.path.join(str(root / "serving"), "3")
  assert os.listdir(root / "serving") == ["3"]
  assert tf.saved_model.contains_saved_model(exported)
  with open(os.path.join(exported, serving.METADATA_FILE)) as f:
    metadata = json.load(f)
  assert metadata["max_passage_len"] == CONFIG.data.max_passage_len
  assert metadata["max_answer_len"] == CONFIG.model.max_answer_len


def test_serving_default_fresh_process_matches_offline_predictions(
  exported, trained, tmp_path
):
  reader, vocab, dev, _ = trained
  records = _serving_records(dev)
  long_tokens = tokenization.tokenize(records[1].context)
  assert len(long_tokens) > CONFIG.data.max_passage_len
  offline = _offline(reader, vocab, records, str(tmp_path / "offline"))

  result = _serve_in_fresh_process(
    exported, records, str(tmp_path), INVALID_ROWS
  )

  assert not result["a2d_imported"]
  answered, invalid = result["batch"][: len(records)], result["batch"][-3:]
  served = dict(zip([r.id for r in records], answered, strict=True))
  for got, (_, _, status) in zip(invalid, INVALID_ROWS, strict=True):
    assert got == {
      "answer": "",
      "start_char": -1,
      "end_char": -1,
      "score": 0.0,
      "status": status,
    }
  for record in records:
    got = served[record.id]
    assert (
      record.context[got["start_char"] : got["end_char"]] == got["answer"]
    ), record.id
    status = _expected_status(record)
    assert got["status"] == status, record.id
    if status != "ok":
      assert record.id not in offline
      assert got == {
        "answer": "",
        "start_char": -1,
        "end_char": -1,
        "score": 0.0,
        "status": status,
      }, record.id
      continue
    want = offline[record.id]
    assert got["answer"] == want.text, record.id
    assert (got["start_char"], got["end_char"]) == (
      want.start_char,
      want.end_char,
    ), record.id
    np.testing.assert_allclose(got["score"], want.score, rtol=1e-4)
    assert got["answer"], record.id
  # Truncation: the long context is answered from its kept tokens only.
  kept_end = long_tokens[CONFIG.data.max_passage_len - 1].end
  assert served["long"]["end_char"] <= kept_end
  # Offsets count code points: the emoji and accents before the answer
  # would shift byte offsets.
  assert served["unicode"]["start_char"] >= 0
  for got in result["all_empty"]:
    assert got["answer"] == "" and got["score"] == 0.0
  assert [got["status"] for got in result["all_empty"]] == [
    "empty_question",
    "empty_context",
  ]
  # A NUL between words is a space: the question keeps its later words.
  assert served["nul_question"]["status"] == "ok"


def test_predict_features_equals_reader(exported, trained, tmp_path):
  reader, vocab, dev, _ = trained
  records = dev[:3]
  features.write_split(records, vocab, CONFIG.data, str(tmp_path), "dev", False)
  batch = next(
    iter(
      dataset.make_dataset(
        features.file_pattern(str(tmp_path), "dev"),
        CONFIG.data,
        batch_size=3,
        training=False,
      )
    )
  )
  inputs = {key: batch[key] for key in reader.input_keys}
  assert "question_em" not in inputs
  loaded = tf.saved_model.load(exported)
  served = loaded.signatures[serving.FEATURES_SIGNATURE](**inputs)
  expected = reader(inputs, training=False)
  assert sorted(served) == sorted(serving.FEATURE_OUTPUTS)
  for key in serving.FEATURE_OUTPUTS:
    np.testing.assert_allclose(
      served[key].numpy(), expected[key].numpy(), rtol=1e-5, atol=1e-5
    )


def test_question_em_reader_serves_its_offline_answers(trained, tmp_path):
  _, vocab, dev, _ = trained
  model_config = dataclasses.replace(
    CONFIG.model, question_em=True, pointer="rmr"
  )
  reader = build_reader(model_config, vocab.num_words, vocab.num_chars)
  path = serving.export_serving_model(
    reader, vocab, CONFIG, str(tmp_path / "serving"), version=1
  )
  records = [r for r in _serving_records(dev) if _expected_status(r) == "ok"]
  offline = _offline(reader, vocab, records, str(tmp_path / "offline"))
  loaded = tf.saved_model.load(path)
  served = loaded.signatures[serving.SERVING_SIGNATURE](
    question=tf.constant([r.question for r in records]),
    context=tf.constant([r.context for r in records]),
  )
  for row, record in enumerate(records):
    want = offline[record.id]
    assert served["answer"][row].numpy().decode() == want.text, record.id
    assert int(served["start_char"][row]) == want.start_char, record.id
    np.testing.assert_allclose(served["score"][row], want.score, rtol=1e-4)
  # predict_features takes the question flags and answers as the reader.
  features_fn = loaded.signatures[serving.FEATURES_SIGNATURE]
  assert "question_em" in features_fn.structured_input_signature[1]
  batch = next(
    iter(
      dataset.make_dataset(
        features.file_pattern(str(tmp_path / "offline"), "serve"),
        CONFIG.data,
        batch_size=4,
        training=False,
      )
    )
  )
  inputs = {key: batch[key] for key in reader.input_keys}
  expected = reader(inputs, training=False)
  got = features_fn(**inputs)
  for key in serving.FEATURE_OUTPUTS:
    np.testing.assert_allclose(got[key], expected[key], rtol=1e-5, atol=1e-5)


def test_smaller_student_serves_with_its_own_architecture(trained, tmp_path):
  # The export reads the architecture from the reader it is given (the
  # student's own `.keras` config); the experiment config supplies only
  # the data limits and the decoder's answer length, shared by all.
  _, vocab, dev, _ = trained
  config = get_config(
    "tiny",
    [
      f"student_model.hidden={CONFIG.model.hidden // 2}",
      "student_model.aligner_hops=1",
    ],
  )
  reader = build_reader(
    config_lib.resolve_student_model(config), vocab.num_words, vocab.num_chars
  )
  path = serving.export_serving_model(
    reader, vocab, config, str(tmp_path / "serving"), version=1
  )
  records = [r for r in _serving_records(dev) if _expected_status(r) == "ok"]
  offline = _offline(reader, vocab, records, str(tmp_path / "offline"))
  loaded = tf.saved_model.load(path)
  served = loaded.signatures[serving.SERVING_SIGNATURE](
    question=tf.constant([r.question for r in records]),
    context=tf.constant([r.context for r in records]),
  )
  for row, record in enumerate(records):
    assert served["answer"][row].numpy().decode() == offline[record.id].text
  features_fn = loaded.signatures[serving.FEATURES_SIGNATURE]
  batch = next(
    iter(
      dataset.make_dataset(
        features.file_pattern(str(tmp_path / "offline"), "serve"),
        CONFIG.data,
        batch_size=4,
        training=False,
      )
    )
  )
  got = features_fn(**{key: batch[key] for key in reader.input_keys})
  assert got["attention"].shape[1] == 1
  kernels = [v for v in loaded.variables if "recurrent_kernel" in v.name]
  assert {int(v.shape[0]) for v in kernels} == {CONFIG.model.hidden // 2}


def _cli_signatures(text):
  """`{signature: {(io, name): (dtype, shape)}}` from `show --all` output."""
  signatures = {}
  blocks = re.split(r"^signature_def\['([^']+)'\]:$", text, flags=re.M)
  for name, body in zip(blocks[1::2], blocks[2::2], strict=True):
    tensors = re.findall(
      r"(inputs|outputs)\['([^']+)'\] tensor_info:\s+dtype: (\w+)\s+"
      r"shape: (\([^)]*\))",
      body,
    )
    signatures[name] = {(io, n): (d, s) for io, n, d, s in tensors}
  return signatures


def test_saved_model_cli_lists_both_signatures(exported):
  cli = shutil.which("saved_model_cli")
  command = (
    [cli]
    if cli
    else [sys.executable, "-m", "tensorflow.python.tools.saved_model_cli"]
  )
  proc = subprocess.run(
    [*command, "show", "--all", "--dir", exported],
    capture_output=True,
    text=True,
    timeout=300,
  )
  assert proc.returncode == 0, proc.stderr[-3000:]
  signatures = _cli_signatures(proc.stdout)
  w = str(CONFIG.data.max_word_len)
  hops = str(CONFIG.model.aligner_hops)
  assert signatures["serving_default"] == {
    ("inputs", "question"): ("DT_STRING", "(-1)"),
    ("inputs", "context"): ("DT_STRING", "(-1)"),
    ("outputs", "answer"): ("DT_STRING", "(-1)"),
    ("outputs", "start_char"): ("DT_INT64", "(-1)"),
    ("outputs", "end_char"): ("DT_INT64", "(-1)"),
    ("outputs", "score"): ("DT_FLOAT", "(-1)"),
    ("outputs", "status"): ("DT_STRING", "(-1)"),
  }
  assert signatures["predict_features"] == {
    ("inputs", "question_ids"): ("DT_INT32", "(-1, -1)"),
    ("inputs", "passage_ids"): ("DT_INT32", "(-1, -1)"),
    ("inputs", "question_chars"): ("DT_INT32", f"(-1, -1, {w})"),
    ("inputs", "passage_chars"): ("DT_INT32", f"(-1, -1, {w})"),
    ("inputs", "passage_em"): ("DT_FLOAT", "(-1, -1, 2)"),
    ("inputs", "question_len"): ("DT_INT32", "(-1)"),
    ("inputs", "passage_len"): ("DT_INT32", "(-1)"),
    ("outputs", "start_logits"): ("DT_FLOAT", "(-1, -1)"),
    ("outputs", "end_logits"): ("DT_FLOAT", "(-1, -1)"),
    ("outputs", "attention"): ("DT_FLOAT", f"(-1, {hops}, -1, -1)"),
  }
  assert "Method name is: tensorflow/serving/predict" in proc.stdout


def test_export_refuses_to_overwrite_a_version(exported, trained):
  reader, vocab, _, root = trained
  with pytest.raises(FileExistsError, match="new version"):
    serving.export_serving_model(
      reader, vocab, CONFIG, str(root / "serving"), version=3
    )


@pytest.mark.parametrize("version", [-1, "2", 1.0, True])
def test_export_rejects_non_integer_version(tmp_path, version):
  vocab = vocab_lib.Vocabulary(["a"], ["a"], lowercase=True)
  reader = build_reader(CONFIG.model, vocab.num_words, vocab.num_chars)
  with pytest.raises(ValueError, match="version"):
    serving.export_serving_model(reader, vocab, CONFIG, str(tmp_path), version)
  assert not os.listdir(tmp_path)


def test_export_rejects_other_vocabulary(tmp_path):
  vocab = vocab_lib.Vocabulary(["a", "b"], ["a"], lowercase=True)
  reader = build_reader(CONFIG.model, vocab.num_words + 1, vocab.num_chars)
  with pytest.raises(ValueError, match="word_vocab_size"):
    serving.export_serving_model(reader, vocab, CONFIG, str(tmp_path), 1)


def test_portable_reader_keeps_outputs_without_cudnn():
  model = dataclasses.replace(CONFIG.model, hidden=4, word_dim=6)
  reader = build_reader(model, 9, 7)
  portable = serving._portable_reader(reader)
  assert portable.get_config()["use_cudnn"] is False
  rng = np.random.default_rng(0)
  inputs = {
    "question_ids": rng.integers(0, 9, (2, 3)).astype(np.int32),
    "passage_ids": rng.integers(0, 9, (2, 5)).astype(np.int32),
    "question_chars": rng.integers(0, 7, (2, 3, 4)).astype(np.int32),
    "passage_chars": rng.integers(0, 7, (2, 5, 4)).astype(np.int32),
    "passage_em": rng.integers(0, 2, (2, 5, 2)).astype(np.float32),
    "question_len": np.array([3, 2], np.int32),
    "passage_len": np.array([5, 4], np.int32),
  }
  for key in ("start_logits", "attention"):
    np.testing.assert_allclose(
      portable(inputs)[key].numpy(), reader(inputs)[key].numpy(), rtol=1e-6
    )
