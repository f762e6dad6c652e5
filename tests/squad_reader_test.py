"""Tests for the SQuAD JSON and TFDS readers and the SQuAD JSON writer."""

from __future__ import annotations

import copy
import json
import os

import pytest
import tensorflow_datasets as tfds

from a2d_tf.data import squad
from a2d_tf.data.records import Answer, DataError, Record

_CONTEXT = "Karvo Delmin founded Ostrella Guild in 1843. It grew."
_CONTEXT2 = "Ostrella Guild is based in Norvik."


def _doc():
  """A small valid SQuAD v1.1 document (two articles, three questions)."""
  return {
    "version": "1.1",
    "data": [
      {
        "title": "Ostrella",
        "paragraphs": [
          {
            "context": _CONTEXT,
            "qas": [
              {
                "id": "q1",
                "question": "Who founded Ostrella Guild?",
                "answers": [
                  {"answer_start": 0, "text": "Karvo Delmin"},
                  {"answer_start": 6, "text": "Delmin"},
                ],
              },
              {
                "id": "q2",
                "question": "When was Ostrella Guild founded?",
                "answers": [{"answer_start": 39, "text": "1843"}],
              },
            ],
          }
        ],
      },
      {
        "title": "Norvik",
        "paragraphs": [
          {
            "context": _CONTEXT2,
            "qas": [
              {
                "id": "q3",
                "question": "Where is Ostrella Guild based?",
                "answers": [{"answer_start": 27, "text": "Norvik"}],
              }
            ],
          }
        ],
      },
    ],
  }


def _write(tmp_path, doc, name="data.json") -> str:
  path = os.path.join(tmp_path, name)
  with open(path, "w", encoding="utf-8") as f:
    json.dump(doc, f)
  return path


def _write_bytes(tmp_path, raw: bytes, name="data.json") -> str:
  path = os.path.join(tmp_path, name)
  with open(path, "wb") as f:
    f.write(raw)
  return path


def test_read_squad_json_valid_file_gives_records(tmp_path):
  records = squad.read_squad_json(_write(tmp_path, _doc()))
  assert [r.id for r in records] == ["q1", "q2", "q3"]
  assert records[0] == Record(
    id="q1",
    title="Ostrella",
    context=_CONTEXT,
    question="Who founded Ostrella Guild?",
    answers=(Answer("Karvo Delmin", 0), Answer("Delmin", 6)),
  )
  assert records[2].title == "Norvik"
  for record in records:
    for answer in record.answers:
      end = answer.start + len(answer.text)
      assert record.context[answer.start : end] == answer.text


def test_read_squad_json_adversarial_ids_kept(tmp_path):
  doc = _doc()
  variant = copy.deepcopy(doc["data"][0]["paragraphs"][0])
  variant["context"] += " Marlo Tessen founded Brivalle Works in 1907."
  variant["qas"] = variant["qas"][1:]
  variant["qas"][0]["id"] = "q2-high-conf-turk0"
  doc["data"][0]["paragraphs"].append(variant)
  records = squad.read_squad_json(_write(tmp_path, doc))
  assert [r.id for r in records] == ["q1", "q2", "q2-high-conf-turk0", "q3"]
  assert records[2].answers == records[1].answers


def test_read_squad_json_answer_text_mismatch_kept(tmp_path):
  doc = _doc()
  doc["data"][0]["paragraphs"][0]["qas"][1]["answers"][0]["text"] = "1844"
  records = squad.read_squad_json(_write(tmp_path, doc))
  assert records[1].answers == (Answer("1844", 39),)


def test_read_squad_json_unicode_offsets_are_code_points(tmp_path):
  context = "Zoë visited Ærø in 1901 🙂 and left."
  doc = {
    "version": "1.1",
    "data": [
      {
        "title": "t",
        "paragraphs": [
          {
            "context": context,
            "qas": [
              {
                "id": "u1",
                "question": "Which year?",
                "answers": [
                  {"answer_start": context.index("1901"), "text": "1901"}
                ],
              },
              {
                "id": "u2",
                "question": "What after the smile?",
                "answers": [
                  {"answer_start": context.index("and"), "text": "and left"}
                ],
              },
            ],
          }
        ],
      }
    ],
  }
  raw = json.dumps(doc, ensure_ascii=False).encode("utf-8")
  records = squad.read_squad_json(_write_bytes(tmp_path, raw))
  for record in records:
    answer = record.answers[0]
    end = answer.start + len(answer.text)
    assert record.context[answer.start : end] == answer.text


def test_read_squad_json_gfile_path_scheme(tmp_path):
  # tf.io.gfile handles file:// URLs as it handles gs:// ones.
  path = _write(tmp_path, _doc())
  assert len(squad.read_squad_json("file://" + path)) == 3


def _set(doc, path, value):
  """Sets (or with value=DELETE removes) doc[path[0]][path[1]]..."""
  target = doc
  for key in path[:-1]:
    target = target[key]
  if value is _DELETE:
    del target[path[-1]]
  else:
    target[path[-1]] = value


_DELETE = object()
_P0 = ("data", 0, "paragraphs", 0)
_Q1 = (*_P0, "qas", 1)

# (case name, path into the document, new value, expected record id,
#  expected field).
_BAD_FIELDS = [
  ("missing_data", ("data",), _DELETE, "", "'data'"),
  ("data_not_list", ("data",), {"a": 1}, "", "'data'"),
  (
    "missing_paragraphs",
    ("data", 0, "paragraphs"),
    _DELETE,
    "data[0]",
    "'paragraphs'",
  ),
  ("missing_context", (*_P0, "context"), _DELETE, "q1", "'context'"),
  ("context_not_string", (*_P0, "context"), 17, "q1", "'context'"),
  ("missing_qas", (*_P0, "qas"), _DELETE, "data[0].paragraphs[0]", "'qas'"),
  ("missing_question", (*_Q1, "question"), _DELETE, "q2", "'question'"),
  ("question_not_string", (*_Q1, "question"), ["x"], "q2", "'question'"),
  ("question_blank", (*_Q1, "question"), " \t\n", "q2", "'question'"),
  ("missing_id", (*_Q1, "id"), _DELETE, "data[0].paragraphs[0].qas[1]", "'id'"),
  ("id_not_string", (*_Q1, "id"), 7, "data[0].paragraphs[0].qas[1]", "'id'"),
  ("missing_answers", (*_Q1, "answers"), _DELETE, "q2", "'answers'"),
  ("empty_answers", (*_Q1, "answers"), [], "q2", "'answers'"),
  (
    "answer_start_negative",
    (*_Q1, "answers", 0, "answer_start"),
    -1,
    "q2",
    "answers[0].answer_start",
  ),
  (
    "answer_start_past_end",
    (*_Q1, "answers", 0, "answer_start"),
    len(_CONTEXT) - 2,
    "q2",
    "answers[0].answer_start",
  ),
  (
    "answer_start_not_int",
    (*_Q1, "answers", 0, "answer_start"),
    "39",
    "q2",
    "answers[0].answer_start",
  ),
  (
    "answer_start_float",
    (*_Q1, "answers", 0, "answer_start"),
    39.0,
    "q2",
    "answers[0].answer_start",
  ),
  (
    "answer_start_missing",
    (*_Q1, "answers", 0, "answer_start"),
    _DELETE,
    "q2",
    "answers[0].answer_start",
  ),
  (
    "answer_text_not_string",
    (*_Q1, "answers", 0, "text"),
    1843,
    "q2",
    "answers[0].text",
  ),
  (
    "answer_text_empty",
    (*_Q1, "answers", 0, "text"),
    "",
    "q2",
    "answers[0].text",
  ),
  ("duplicate_id", (*_Q1, "id"), "q1", "q1", "'id'"),
]


@pytest.mark.parametrize(
  "path,value,record_id,field",
  [case[1:] for case in _BAD_FIELDS],
  ids=[case[0] for case in _BAD_FIELDS],
)
def test_read_squad_json_bad_field_raises_data_error(
  tmp_path, path, value, record_id, field
):
  doc = _doc()
  _set(doc, path, value)
  file_path = _write(tmp_path, doc)
  with pytest.raises(DataError) as info:
    squad.read_squad_json(file_path)
  message = str(info.value)
  assert file_path in message
  assert record_id in message
  assert field in message
  assert info.value.path == file_path


def test_read_squad_json_duplicate_id_names_both_places(tmp_path):
  doc = _doc()
  doc["data"][1]["paragraphs"][0]["qas"][0]["id"] = "q2"
  with pytest.raises(DataError, match=r"qas\[1\].*qas\[0\]") as info:
    squad.read_squad_json(_write(tmp_path, doc))
  assert info.value.record_id == "q2"
  assert info.value.field == "id"


def test_read_squad_json_malformed_json_names_line_and_column(tmp_path):
  raw = b'{"data": [\n  {"title": "x",\n   "paragraphs": [}\n]}'
  path = _write_bytes(tmp_path, raw)
  with pytest.raises(DataError, match=r"line 3 column 19") as info:
    squad.read_squad_json(path)
  assert path in str(info.value)


def test_read_squad_json_truncated_file_raises(tmp_path):
  raw = json.dumps(_doc()).encode("utf-8")[:-40]
  path = _write_bytes(tmp_path, raw)
  with pytest.raises(DataError, match="malformed JSON at line 1"):
    squad.read_squad_json(path)


@pytest.mark.parametrize("raw", [b"", b"  \n\t"], ids=["empty", "blank"])
def test_read_squad_json_empty_file_raises(tmp_path, raw):
  path = _write_bytes(tmp_path, raw)
  with pytest.raises(DataError, match="empty") as info:
    squad.read_squad_json(path)
  assert path in str(info.value)


def test_read_squad_json_missing_file_raises(tmp_path):
  path = os.path.join(tmp_path, "nope.json")
  with pytest.raises(DataError) as info:
    squad.read_squad_json(path)
  assert path in str(info.value)


def test_read_squad_json_top_level_not_object_raises(tmp_path):
  path = _write(tmp_path, [1, 2])
  with pytest.raises(DataError, match="top level"):
    squad.read_squad_json(path)


def test_read_squad_json_invalid_utf8_names_record_and_field(tmp_path):
  raw = json.dumps(_doc()).encode("utf-8")
  raw = raw.replace(b"When was", b"When \xff\xfe was")
  path = _write_bytes(tmp_path, raw)
  with pytest.raises(DataError, match="UTF-8") as info:
    squad.read_squad_json(path)
  message = str(info.value)
  assert path in message
  assert "q2" in message
  assert "'question'" in message
  assert "0xff at line 1 column" in message


def test_read_squad_json_invalid_utf8_outside_fields_raises(tmp_path):
  raw = json.dumps(_doc()).encode("utf-8")
  raw = raw.replace(b'"version": "1.1"', b'"version": "1.\xc3"')
  path = _write_bytes(tmp_path, raw)
  with pytest.raises(DataError, match="invalid UTF-8 byte 0xc3") as info:
    squad.read_squad_json(path)
  assert path in str(info.value)


def test_read_squad_json_lone_surrogate_escape_raises(tmp_path):
  doc = _doc()
  doc["data"][0]["paragraphs"][0]["qas"][0]["question"] = "Who \ud800?"
  path = _write(tmp_path, doc)  # json.dump writes the \\ud800 escape.
  with pytest.raises(DataError, match="surrogate") as info:
    squad.read_squad_json(path)
  assert "q1" in str(info.value)


def test_read_squad_json_prediction_input_without_answers(tmp_path):
  doc = _doc()
  qas = doc["data"][0]["paragraphs"][0]["qas"]
  del qas[0]["answers"]
  qas[1]["answers"] = []
  path = _write(tmp_path, doc)
  records = squad.read_squad_json(path, require_answers=False)
  assert records[0].answers == ()
  assert records[1].answers == ()
  assert records[2].answers == (Answer("Norvik", 27),)
  with pytest.raises(DataError, match="q1"):
    squad.read_squad_json(path)


def test_read_squad_json_prediction_input_checks_given_answers(tmp_path):
  doc = _doc()
  doc["data"][0]["paragraphs"][0]["qas"][1]["answers"][0]["answer_start"] = 99
  with pytest.raises(DataError, match="answer_start"):
    squad.read_squad_json(_write(tmp_path, doc), require_answers=False)


def test_write_squad_json_round_trip(tmp_path):
  records = squad.read_squad_json(_write(tmp_path, _doc()))
  out = os.path.join(tmp_path, "nested", "dir", "out.json")
  squad.write_squad_json(records, out)
  assert squad.read_squad_json(out) == records
  assert os.listdir(os.path.dirname(out)) == ["out.json"]


def test_write_squad_json_official_layout(tmp_path):
  records = squad.read_squad_json(_write(tmp_path, _doc()))
  out = os.path.join(tmp_path, "out.json")
  squad.write_squad_json(records, out, version="adversarial-1.1")
  with open(out, encoding="utf-8") as f:
    written = json.load(f)
  assert written == {**_doc(), "version": "adversarial-1.1"}


def test_write_squad_json_groups_by_title_and_context(tmp_path):
  def record(qid, title, context):
    return Record(qid, title, context, "Q?", (Answer(context[:1], 0),))

  records = [
    record("a", "T1", "c1"),
    record("b", "T2", "c3"),
    record("c", "T1", "c2"),
    record("d", "T1", "c1"),
  ]
  out = os.path.join(tmp_path, "out.json")
  squad.write_squad_json(records, out)
  with open(out, encoding="utf-8") as f:
    data = json.load(f)["data"]
  layout = [
    (
      a["title"],
      [(p["context"], [q["id"] for q in p["qas"]]) for p in a["paragraphs"]],
    )
    for a in data
  ]
  assert layout == [
    ("T1", [("c1", ["a", "d"]), ("c2", ["c"])]),
    ("T2", [("c3", ["b"])]),
  ]
  assert [r.id for r in squad.read_squad_json(out)] == ["a", "d", "c", "b"]


def test_write_squad_json_keeps_non_ascii(tmp_path):
  records = [Record("z", "Ærø", "Zoë 🙂 x", "Who?", (Answer("x", 6),))]
  out = os.path.join(tmp_path, "out.json")
  squad.write_squad_json(records, out)
  with open(out, "rb") as f:
    assert "Zoë 🙂".encode() in f.read()
  assert squad.read_squad_json(out) == records


def test_read_tfds_squad_mock_data_gives_records():
  with tfds.testing.mock_data(
    num_examples=5, policy=tfds.testing.MockPolicy.USE_CODE
  ):
    records = squad.read_tfds_squad("validation")
  assert len(records) == 5
  assert len({r.id for r in records}) == 5
  for record in records:
    assert isinstance(record.context, str)
    assert isinstance(record.question, str)
    assert isinstance(record.title, str)
    for answer in record.answers:
      assert isinstance(answer.text, str)
      assert isinstance(answer.start, int)


def test_read_tfds_squad_max_examples_limits(tmp_path):
  with tfds.testing.mock_data(
    num_examples=6, policy=tfds.testing.MockPolicy.USE_CODE
  ):
    records = squad.read_tfds_squad(
      "train", data_dir=str(tmp_path), max_examples=2
    )
  assert len(records) == 2


def test_read_tfds_squad_converts_fields():
  def as_dataset(self, split, **kwargs):
    del self, split, kwargs
    import tensorflow as tf

    return tf.data.Dataset.from_tensors(
      {
        "id": b"abc",
        "title": "Ærø".encode(),
        "context": b"Karvo founded it in 1843.",
        "question": b"When?",
        "answers": {
          "text": tf.constant([b"1843", b"in 1843"]),
          "answer_start": tf.constant([20, 17], tf.int32),
        },
      }
    )

  with tfds.testing.mock_data(
    policy=tfds.testing.MockPolicy.USE_CODE, as_dataset_fn=as_dataset
  ):
    records = squad.read_tfds_squad("validation")
  assert records == [
    Record(
      id="abc",
      title="Ærø",
      context="Karvo founded it in 1843.",
      question="When?",
      answers=(Answer("1843", 20), Answer("in 1843", 17)),
    )
  ]
