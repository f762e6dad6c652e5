"""The bad-input suite: one test per hostile case of issue 13, by section.

Each parametrized case has a readable id (`pytest tests/bad_input_test.py
-v` lists them). What runs elsewhere is named where it lives:

1. Checks before work (`config.validate` via `cli.resolve`, before any
   step): `test_config_value_is_refused_before_any_step`,
   `test_good_edge_values_are_accepted`, `test_flags_are_checked_together`,
   `test_every_problem_is_one_line_of_the_real_cli`,
   `test_ablation_case_id_is_checked_before_training`; every config field's
   rule or its absence: tests/config_test.py
   (`test_every_field_has_a_range_rule_or_is_listed_as_unranged`).
2. Text: `test_nasty_text_tokenizes_as_the_reference`,
   `test_nul_between_words_is_a_space_in_training_features`,
   `test_serving_answers_bad_rows_with_a_status`; served answers equal the
   offline ones on NUL / zero-width rows: tests/serving_test.py
   (`test_serving_default_fresh_process_matches_offline_predictions`).
3. Evaluate: `test_duplicate_question_ids_name_both_places`,
   `test_byte_order_mark_is_skipped_by_every_reader`,
   `test_prediction_file_with_a_duplicate_id_is_refused`.
4. A gated push: `test_model_blessing_criteria`, `test_infra_judge_cases`,
   `test_infra_check_of_a_broken_and_a_good_export`; push publishing
   nothing without a blessing: tests/publish_test.py
   (`test_push_publishes_nothing_without_a_blessing`); a run that is not
   blessed ends with exit 0 and says so last: tests/local_runner_test.py.
"""

import base64
import json
import os
import re
import subprocess
import sys
import unicodedata

import pytest
import tensorflow as tf
from absl import flags

from a2d_tf import blessing as blessing_lib
from a2d_tf import config as config_lib
from a2d_tf import evaluate, infra_validation, serving
from a2d_tf.config import get_config
from a2d_tf.data import features, narrativeqa, squad, synthetic, tokenization
from a2d_tf.data import vocab as vocab_lib
from a2d_tf.data.records import Answer, DataError, Record
from a2d_tf.metrics import adversarial
from a2d_tf.metrics import squad as squad_metrics
from a2d_tf.models.reader import build_reader
from pipelines import ablation, cli

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# ---------------------------------------------------------------------------
# 1. Checks before work


@pytest.fixture
def parsed_flags():
  """Parses flags for a test and restores the defaults afterwards."""

  def parse(*args):
    flags.FLAGS.unparse_flags()
    flags.FLAGS(["prog", *args])

  yield parse
  flags.FLAGS.unparse_flags()


def _problems(parse, *args):
  """The one-line problems `cli.resolve` reports for these flags."""
  parse("--preset=tiny", *args)
  with pytest.raises(config_lib.ConfigError) as raised:
    cli.resolve([], check_files=False)
  return list(raised.value.problems)


CONFIG_CASES = [
  ("tau_zero", "distill.temperature=0", "distill.temperature=0.0: must be > 0"),
  ("tau_negative", "distill.temperature=-1", "must be > 0"),
  ("tau_nan", "distill.temperature=nan", "must be a finite number"),
  ("tau_inf", "distill.temperature=inf", "must be a finite number"),
  ("epochs_negative", "train.epochs=-1", "train.epochs=-1: must be >= 1"),
  ("epochs_zero", "train.epochs=0", "train.epochs=0: must be >= 1"),
  ("student_epochs_negative", "distill.epochs=-1", "must be >= 0"),
  ("warmup_negative", "distill.warmup_epochs=-1", "must be >= 0"),
  ("passage_len_zero", "data.max_passage_len=0", "data.max_passage_len=0"),
  ("question_len_zero", "data.max_question_len=0", "data.max_question_len=0"),
  ("word_len_zero", "data.max_word_len=0", "data.max_word_len=0"),
  ("answer_len_zero", "model.max_answer_len=0", "model.max_answer_len=0"),
  ("num_teachers_zero", "teacher.num_teachers=0", "must be >= 1"),
  ("top_k_zero", "teacher.top_k=0", "teacher.top_k=0: must be >= 1"),
  ("batch_size_zero", "train.batch_size=0", "train.batch_size=0"),
  ("hidden_zero", "model.hidden=0", "model.hidden=0: must be >= 1"),
  ("word_dim_zero", "model.word_dim=0", "model.word_dim=0"),
  ("char_dim_zero", "model.char_dim=0", "model.char_dim=0"),
  ("char_hidden_zero", "model.char_hidden=0", "model.char_hidden=0"),
  ("aligner_hops_zero", "model.aligner_hops=0", "model.aligner_hops=0"),
  ("pointer_hops_zero", "model.pointer_hops=0", "model.pointer_hops=0"),
  ("num_shards_zero", "data.num_shards=0", "data.num_shards=0"),
  ("shuffle_buffer_zero", "data.shuffle_buffer=0", "data.shuffle_buffer=0"),
  ("min_word_count_zero", "data.min_word_count=0", "data.min_word_count=0"),
  ("min_char_count_zero", "data.min_char_count=0", "data.min_char_count=0"),
  ("synthetic_train_zero", "data.synthetic_train_size=0", "must be >= 1"),
  ("synthetic_dev_zero", "data.synthetic_dev_size=0", "must be >= 1"),
  ("tune_top_words_negative", "data.tune_top_words=-1", "must be >= 0"),
  ("adversarial_negative", "data.adversarial_questions=-1", "must be >= 0"),
  ("validation_fraction_one", "data.validation_fraction=1", "[0.0, 1.0)"),
  ("buckets_decreasing", "data.bucket_boundaries=120,100", "increasing"),
  ("buckets_zero", "data.bucket_boundaries=0,10", "increasing lengths >= 1"),
  ("ans_weight_negative", "distill.ans_weight=-5", "must be >= 0"),
  ("att_weight_negative", "distill.att_weight=-0.1", "must be >= 0"),
  ("dropout_one", "model.dropout=1", "model.dropout=1.0: must be in"),
  ("dropout_negative", "model.dropout=-0.1", "must be in [0.0, 1.0)"),
  ("char_encoder_unknown", "model.char_encoder=gru", "must be one of"),
  ("pointer_unknown", "model.pointer=span", "must be one of 'memory'"),
  ("learning_rate_zero", "train.learning_rate=0", "must be > 0"),
  ("clipnorm_negative", "train.clipnorm=-1", "train.clipnorm=-1.0"),
  ("lr_decay_zero", "train.lr_decay=0", "train.lr_decay=0.0: must be > 0"),
  ("patience_negative", "train.early_stopping_patience=-1", "must be >= 0"),
  ("seed_negative", "train.seed=-1", "train.seed=-1: must be in [0, "),
  ("version_negative", "export.version=-1", "export.version=-1: must be in"),
  ("version_beyond_int64", f"export.version={2**63}", "must be in [0, "),
  ("bless_threshold_off_scale", "export.min_f1_vs_single=200", "[-100.0"),
  ("steps_per_execution_zero", "runtime.steps_per_execution=0", ">= 1"),
  ("distribution_unknown", "runtime.distribution=ps", "must be one of"),
]


@pytest.mark.parametrize(
  "override, line",
  [c[1:] for c in CONFIG_CASES],
  ids=[c[0] for c in CONFIG_CASES],
)
def test_config_value_is_refused_before_any_step(parsed_flags, override, line):
  problems = _problems(parsed_flags, f"--override={override}")
  assert len(problems) == 1, problems
  assert line in problems[0]


CROSS_CASES = [
  (
    "stagewise_without_warmup",
    ["distill.stagewise=true", "distill.warmup_epochs=0"],
    "stage-wise training needs an attention warm-up",
  ),
  (
    "stagewise_without_att",
    ["distill.stagewise=true", "distill.use_att=false"],
    "it needs distill.use_att=true",
  ),
  (
    "student_seed_overflows",
    [f"train.seed={2**32 - 2}", "teacher.num_teachers=2"],
    "the student's seed train.seed + K",
  ),
]


@pytest.mark.parametrize(
  "overrides, line",
  [c[1:] for c in CROSS_CASES],
  ids=[c[0] for c in CROSS_CASES],
)
def test_fields_that_contradict_each_other_are_refused(
  parsed_flags, overrides, line
):
  problems = _problems(parsed_flags, *[f"--override={o}" for o in overrides])
  assert len(problems) == 1 and line in problems[0], problems


def test_wrongly_typed_values_from_a_dict_are_refused():
  # Components receive the config as a dict (`from_dict`).
  cfg = config_lib.ExperimentConfig.from_dict(
    {"train": {"epochs": 2.5}, "distill": {"use_kd": "no"}}
  )
  assert config_lib.validate(cfg) == [
    "train.epochs=2.5: must be an integer",
    "distill.use_kd='no': must be true or false",
  ]


@pytest.mark.parametrize(
  "args",
  [
    ["--override=export.version=0"],  # TF Serving's versions start at 0
    ["--timing_repeats=0"],  # documented as "skip timing"
    ["--override=model.dropout=0", "--override=train.clipnorm=0"],
    ["--override=distill.ans_weight=0", "--override=distill.att_weight=0"],
    ["--num_teachers=2", "--override=teacher.num_teachers=2"],
  ],
  ids=[
    "version_zero",
    "timing_zero",
    "no_dropout_no_clip",
    "zero_weights",
    "k_twice_same",
  ],
)
def test_good_edge_values_are_accepted(parsed_flags, args):
  parsed_flags("--preset=tiny", *args)
  inputs = cli.resolve([], check_files=False)
  assert config_lib.validate(inputs.config) == []
  assert cli.pipeline_kwargs(inputs)["timing_repeats"] == (
    0 if "--timing_repeats=0" in args else 3
  )


FLAG_CASES = [
  (
    "k_flag_and_override_disagree",
    ["--num_teachers=3", "--override=teacher.num_teachers=2"],
    "--num_teachers=3 and --override=teacher.num_teachers=2 disagree",
  ),
  (
    "train_file_with_synthetic",
    ["--dataset=synthetic", "--train_file=t.json", "--dev_file=d.json"],
    "--train_file and --dev_file are read only with --dataset=json",
  ),
  (
    "dev_file_with_tfds",
    ["--dataset=tfds", "--dev_file=d.json"],
    "--dev_file is read only with --dataset=json, not --dataset=tfds",
  ),
  (
    "train_file_alone",
    ["--train_file=t.json"],
    "--dataset=json (inferred from --train_file) needs --train_file and",
  ),
  ("json_without_files", ["--dataset=json"], "--dataset=json needs"),
  ("output_dir_empty", ["--output_dir="], "--output_dir is empty"),
  ("beam_arg_not_an_option", ["--beam_arg=runner=X"], "--beam_arg='runner=X'"),
]


@pytest.mark.parametrize(
  "args, line", [c[1:] for c in FLAG_CASES], ids=[c[0] for c in FLAG_CASES]
)
def test_flags_are_checked_together(parsed_flags, args, line):
  problems = _problems(parsed_flags, *args)
  assert len(problems) == 1 and line in problems[0], problems


def test_data_files_without_dataset_select_json_and_say_so(parsed_flags):
  parsed_flags("--train_file=t.json", "--dev_file=d.json")
  inputs = cli.resolve([], check_files=False)
  assert inputs.dataset == "json"
  assert cli.pipeline_kwargs(inputs)["dataset"] == "json"
  assert inputs.describe_dataset() == (
    "dataset json (inferred from --train_file and --dev_file)"
  )


def test_negative_timing_repeats_is_a_flag_error(parsed_flags):
  with pytest.raises(flags.IllegalFlagValueError):
    parsed_flags("--timing_repeats=-1")


def test_every_problem_is_one_line_of_the_real_cli(tmp_path):
  result = subprocess.run(
    [
      sys.executable,
      "-m",
      "pipelines.local_runner",
      f"--output_dir={tmp_path}",
      "--num_teachers=3",
      "--override=teacher.num_teachers=2",
      "--override=distill.temperature=0",
      "--override=export.version=-1",
      "--train_file=t.json",
      "--dataset=synthetic",
    ],
    cwd=ROOT,
    env={**os.environ, "PYTHONPATH": ROOT, "CUDA_VISIBLE_DEVICES": ""},
    capture_output=True,
    text=True,
    timeout=120,
  )
  assert result.returncode == 1
  lines = [x for x in result.stderr.splitlines() if x.strip()]
  assert len(lines) == 4, result.stderr
  assert all(x.startswith("a2d: error: ") for x in lines)
  assert "disagree" in lines[0] and "--dataset=json" in lines[1]
  assert "distill.temperature=0.0" in lines[2] and "export.version" in lines[3]
  assert not os.listdir(tmp_path)


def test_ablation_case_id_is_checked_before_training(parsed_flags, tmp_path):
  out = tmp_path / "ablation"
  parsed_flags(
    "--preset=tiny",
    f"--output_dir={out}",
    "--override=data.synthetic_train_size=6",
    "--override=data.synthetic_dev_size=2",
    "--case_id=no-such-question",
  )
  with pytest.raises(ValueError, match="not a question of the dev split"):
    ablation.run([])
  # Only the data step ran: no model was trained.
  steps = [d for d in os.listdir(out / "artifacts") if not d.startswith(".")]
  assert steps == ["example_gen"]
  parsed_flags(
    "--preset=tiny",
    f"--output_dir={tmp_path / 'other'}",
    "--variants=no_kd",
    "--case_id=x",
  )
  with pytest.raises(ValueError, match="add full to --variants"):
    ablation.run([])


# ---------------------------------------------------------------------------
# 2. Text

# Default-ignorable code points outside Cf that the tokenizer treats as
# whitespace (see `tokenization`).
_EXTRA_INVISIBLE = {
  0x034F,
  0x115F,
  0x1160,
  0x17B4,
  0x17B5,
  *range(0x180B, 0x1810),
  0x3164,
  *range(0xFE00, 0xFE10),
  0xFFA0,
  *range(0xE0100, 0xE01F0),
}


def _reference_tokens(text):
  """The tokenizer's rule in plain Python, from Unicode categories."""

  def invisible(ch):
    category = unicodedata.category(ch)
    return (
      ch.isspace()
      or category[0] == "Z"
      or category in ("Cc", "Cf")
      or ord(ch) in _EXTRA_INVISIBLE
    )

  tokens, start = [], None
  for i, ch in enumerate(text + " "):
    split = invisible(ch) or unicodedata.category(ch)[0] in "PS"
    if split and start is not None:
      tokens.append((text[start:i], start, i))
      start = None
    if i < len(text) and unicodedata.category(ch)[0] in "PS":
      tokens.append((ch, i, i + 1))
    elif not split and start is None:
      start = i
  return tokens


NASTY_TEXTS = [
  ("nul", "Who\x00 met ecole?"),
  ("nul_inside_word", "Who\x00met"),
  ("nul_only", "\x00\x00"),
  ("c0_controls", "a\x01b\x07c\x1bd\x1fe\x7ff"),
  ("c1_controls", "a\x85b\x9bc\x9fd"),
  ("zero_width_space", "x\u200by \u200b"),
  ("zero_width_joiners", "a\u200db\u200cc\u2060d"),
  ("bom_start_and_inside", "\ufeffHello\ufeffworld"),
  ("rtl_marks", "\u200fשלום\u200e abc \u202eevil\u202c"),
  ("arabic_with_marks", "مرحبا\u200f بالعالم\u061c!"),
  ("soft_hyphen", "co\u00adoperate"),
  ("combining_marks", "e\u0301cole nai\u0308ve \u0301x"),
  ("emoji", "I ❤️ TF 😀😀ok"),
  ("emoji_zwj_sequence", "👨\u200d👩\u200d👧 family"),
  ("emoji_skin_tone_flag", "👍🏽 🇩🇪"),
  ("variation_selector", "❤\ufe0f\ufe0e x"),
  ("cjk", "東京は日本の首都です。中文 文本，测试。"),
  ("hangul_filler", "\u3164\u115f 한국"),
  ("line_separators", "a\u2028b\u2029c\x0bd\x0ce"),
  ("invisible_only", "\u200b\u200c\u200d\ufeff\u2060\u00ad"),
]


@pytest.mark.parametrize(
  "text", [t for _, t in NASTY_TEXTS], ids=[n for n, _ in NASTY_TEXTS]
)
def test_nasty_text_tokenizes_as_the_reference(text):
  want = _reference_tokens(text)
  got = [(t.text, t.start, t.end) for t in tokenization.tokenize(text)]
  assert got == want
  for token, start, end in got:
    assert text[start:end] == token
  # The same tokens in a graph with an unknown batch size (tf.data and the
  # serving signature), next to another row.
  fn = tf.function(
    tokenization.tokenize_batch_tf,
    input_signature=[tf.TensorSpec([None], tf.string)],
  )
  tokens, starts, ends = fn(tf.constant([text, "x y"]))
  in_graph = [
    (t.decode("utf-8"), int(s), int(e))
    for t, s, e in zip(
      tokens.to_list()[0], starts.to_list()[0], ends.to_list()[0], strict=True
    )
  ]
  assert in_graph == want


def test_nul_is_whitespace_with_code_point_offsets():
  tokens = tokenization.tokenize("Who\x00 met ecole?")
  assert [(t.text, t.start, t.end) for t in tokens] == [
    ("Who", 0, 3),
    ("met", 5, 8),
    ("ecole", 9, 14),
    ("?", 14, 15),
  ]


def test_nul_between_words_is_a_space_in_training_features():
  context = "Anna met Bob\x00in Paris.\u200b Carl stayed."
  record = Record(
    "q1", "t", context, "Who\x00 met\u200b Bob?", (Answer("Anna", 0),)
  )
  vocab = vocab_lib.build_vocabulary([record], 1, 1, lowercase=True)
  data = get_config("tiny").data
  (example,), skipped = features.featurize([record], vocab, data, True)
  assert sum(skipped.values()) == 0
  feature = example.features.feature
  question_ids = list(feature["question_ids"].int64_list.value)
  assert question_ids == [vocab.word_id(w) for w in ("Who", "met", "Bob", "?")]
  starts = list(feature["passage_char_starts"].int64_list.value)
  ends = list(feature["passage_char_ends"].int64_list.value)
  words = [context[s:e] for s, e in zip(starts, ends, strict=True)]
  assert words == [
    "Anna",
    "met",
    "Bob",
    "in",
    "Paris",
    ".",
    "Carl",
    "stayed",
    ".",
  ]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
  """An untrained tiny reader exported for serving (answers are arbitrary;
  statuses and shapes are not)."""
  config = get_config("tiny")
  corpus = synthetic.generate_corpus(6, 2, seed=5)
  vocab = vocab_lib.build_vocabulary(corpus["train"], 1, 1, lowercase=True)
  reader = build_reader(config.model, vocab.num_words, vocab.num_chars)
  root = tmp_path_factory.mktemp("bad_input_serving")
  return serving.export_serving_model(reader, vocab, config, str(root), 1)


_CONTEXT = "Mafith Society showed its work in Gairbelle in 1897."
SERVING_ROWS = [
  ("ok", b"Where did Mafith Society show its work?", _CONTEXT.encode(), "ok"),
  (
    "ok_with_nul_and_zwsp",
    "Where\x00 did\u200b Mafith show?".encode(),
    _CONTEXT.replace(" ", "\x00", 2).encode(),
    "ok",
  ),
  (
    "invalid_question",
    b"Who \xff?",
    _CONTEXT.encode(),
    "invalid_utf8_question",
  ),
  ("invalid_context", b"Who?", b"Mafith \xfe Society.", "invalid_utf8_context"),
  ("overlong_nul", b"Who?", b"Mafith \xc0\x80.", "invalid_utf8_context"),
  ("encoded_surrogate", b"Who?", b"\xed\xa0\x80 x", "invalid_utf8_context"),
  ("truncated_sequence", b"Who \xe2\x82?", b"x y", "invalid_utf8_question"),
  ("both_invalid", b"\xff", b"\xff", "invalid_utf8_question"),
  ("empty_question", b"", _CONTEXT.encode(), "empty_question"),
  ("empty_context", b"Who?", b"", "empty_context"),
  ("whitespace_context", b"Who?", b" \n\t ", "empty_context"),
  (
    "zwsp_only_question",
    "\u200b".encode(),
    _CONTEXT.encode(),
    "empty_question",
  ),
  ("bom_only_context", b"Who?", "\ufeff\u2060".encode(), "empty_context"),
  ("nul_only_question", b"\x00\x00", _CONTEXT.encode(), "empty_question"),
  ("rtl_marks_only_context", b"Who?", "\u200f\u200e".encode(), "empty_context"),
]


@pytest.fixture(scope="module")
def served(exported):
  """`serving_default` on every row above, in one mixed batch."""
  fn = tf.saved_model.load(exported).signatures[serving.SERVING_SIGNATURE]
  out = fn(
    question=tf.constant([q for _, q, _, _ in SERVING_ROWS]),
    context=tf.constant([c for _, _, c, _ in SERVING_ROWS]),
  )
  return {key: value.numpy() for key, value in out.items()}


@pytest.mark.parametrize(
  "row", range(len(SERVING_ROWS)), ids=[r[0] for r in SERVING_ROWS]
)
def test_serving_answers_bad_rows_with_a_status(served, row):
  _, _, context, status = SERVING_ROWS[row]
  got = {key: served[key][row] for key in serving.SERVING_OUTPUTS}
  assert got["status"].decode() == status
  if status != "ok":
    assert (got["answer"], got["start_char"], got["end_char"]) == (b"", -1, -1)
    assert got["score"] == 0.0
    return
  text = context.decode("utf-8")
  start, end = int(got["start_char"]), int(got["end_char"])
  assert 0 <= start < end <= len(text)
  assert text[start:end] == got["answer"].decode("utf-8")
  assert 0.0 < got["score"] <= 1.0


# ---------------------------------------------------------------------------
# 3. Evaluate


def _squad_doc(*qas_by_paragraph):
  return {
    "version": "1.1",
    "data": [
      {
        "title": "t",
        "paragraphs": [
          {
            "context": "Anna met Bob in Paris.",
            "qas": [
              {
                "id": qid,
                "question": "Who met Bob?",
                "answers": [{"text": "Anna", "answer_start": 0}],
              }
              for qid in qas
            ],
          }
          for qas in qas_by_paragraph
        ],
      }
    ],
  }


def _write(path, content, bom=False):
  text = content if isinstance(content, str) else json.dumps(content)
  path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8"))
  return str(path)


@pytest.fixture
def run_evaluate(capsys):
  """`python -m a2d_tf.evaluate` in this process: (status, stdout, stderr)."""

  def run(dataset, predictions, task="squad"):
    flags.FLAGS.unparse_flags()
    flags.FLAGS(["prog", f"--task={task}"])
    try:
      status = evaluate.main(["prog", dataset, predictions])
    finally:
      flags.FLAGS.unparse_flags()
    captured = capsys.readouterr()
    return status, captured.out, captured.err

  return run


DUPLICATE_READERS = [
  "evaluate_cli",
  "evaluate_cli_adversarial",
  "pipeline_reader",
  "squad_metrics",
  "adversarial_metrics",
]


@pytest.mark.parametrize("reader", DUPLICATE_READERS)
def test_duplicate_question_ids_name_both_places(
  tmp_path, run_evaluate, reader
):
  doc = _squad_doc(["q1", "q2"], ["q3", "q1"])
  where = r"first at data\[0\]\.paragraphs\[0\]\.qas\[0\], again at " + (
    r"data\[0\]\.paragraphs\[1\]\.qas\[1\]"
  )
  if reader.startswith("evaluate_cli"):
    task = "adversarial" if reader.endswith("adversarial") else "squad"
    status, out, err = run_evaluate(
      _write(tmp_path / "dev.json", doc),
      _write(tmp_path / "pred.json", {"q1": "Anna"}),
      task,
    )
    assert status == 1 and not out
    assert err.startswith("error: dataset file ") and "record q1" in err
    assert re.search(where, err), err
    return
  with pytest.raises(DataError, match=where) as raised:
    if reader == "pipeline_reader":
      squad.read_squad_json(_write(tmp_path / "dev.json", doc))
    elif reader == "squad_metrics":
      squad_metrics.evaluate(doc["data"], {"q1": "Anna"})
    else:
      adversarial.evaluate_adversarial(doc["data"], {"q1": "Anna"})
  assert raised.value.record_id == "q1" and raised.value.field == "id"


BOM_READERS = [
  "evaluate_cli",
  "pipeline_squad_reader",
  "narrativeqa_references",
  "glove_vectors",
]


@pytest.mark.parametrize("reader", BOM_READERS)
def test_byte_order_mark_is_skipped_by_every_reader(
  tmp_path, run_evaluate, reader
):
  doc = _squad_doc(["q1"])
  if reader == "evaluate_cli":
    status, out, err = run_evaluate(
      _write(tmp_path / "dev.json", doc, bom=True),
      _write(tmp_path / "pred.json", {"q1": "Anna"}, bom=True),
    )
    assert status == 0, err
    assert json.loads(out) == {"exact_match": 100.0, "f1": 100.0}
  elif reader == "pipeline_squad_reader":
    (record,) = squad.read_squad_json(_write(tmp_path / "d.json", doc, True))
    assert record.id == "q1"
  elif reader == "narrativeqa_references":
    path = _write(tmp_path / "refs.json", {"q1": ["a b"]}, bom=True)
    assert narrativeqa.read_references(path) == {"q1": ["a b"]}
  else:
    vocab = vocab_lib.Vocabulary(["the", "cat"], ["t"], lowercase=True)
    path = _write(tmp_path / "glove.txt", "the 0.5 0.5\ncat 1 1\n", bom=True)
    _, found = vocab_lib.load_glove(path, vocab, 2, seed=0)
    assert found == 2  # "the" on the first line, after the BOM, is found


def test_prediction_file_with_a_duplicate_id_is_refused(tmp_path, run_evaluate):
  predictions = tmp_path / "pred.json"
  predictions.write_text('{"q1": "Anna", "q1": "Bob"}', encoding="utf-8")
  status, out, err = run_evaluate(
    _write(tmp_path / "dev.json", _squad_doc(["q1"])), str(predictions)
  )
  assert status == 1 and not out
  assert "key 'q1' occurs twice" in err


# ---------------------------------------------------------------------------
# 4. A gated push


def _set(single, ensemble, student, primary=None):
  metric = primary or "f1"
  scored = {
    "single": {metric: single},
    "ensemble": {metric: ensemble},
    "student": {metric: student},
    "intervals": {
      "student_minus_single": {
        metric: [student - single - 1, student - single + 1]
      },
      "student_minus_ensemble": {
        metric: [student - ensemble - 1, student - ensemble + 1]
      },
    },
  }
  if primary:
    scored["primary"] = primary
  return scored


BLESSING_CASES = [
  ("all_pass", {"dev": _set(50, 53, 51)}, True, "student F1 - single mean"),
  (
    "below_single",
    {"dev": _set(50, 53, 48.5)},
    False,
    "dev: student F1 - single mean = -1.5 < -1",
  ),
  (
    "far_below_ensemble",
    {"dev": _set(50, 60, 54)},
    False,
    "dev: student F1 - ensemble = -6.0 < -5",
  ),
  (
    "adversarial_set_fails",
    {"dev": _set(50, 53, 51), "adversarial": _set(40, 45, 30)},
    False,
    "adversarial: student F1 - single mean = -10.0 < -1; adversarial: "
    "student F1 - ensemble = -15.0 < -5",
  ),
  (
    # A NarrativeQA set has no F1: it is judged on its primary ROUGE-L.
    "narrativeqa_rouge_passes",
    {"dev": _set(30, 32, 31, "rouge_l"), "test": _set(29, 31, 30, "rouge_l")},
    True,
    "student ROUGE-L - single mean >= -1 and student ROUGE-L - ensemble "
    ">= -5 on dev, test",
  ),
  (
    "narrativeqa_rouge_fails",
    {"dev": _set(30, 32, 31, "rouge_l"), "test": _set(29, 31, 27, "rouge_l")},
    False,
    "test: student ROUGE-L - single mean = -2.0 < -1",
  ),
  (
    "no_scored_set",
    {"narrativeqa": {"student": {"rouge_l": 1.0}}},
    False,
    "no evaluation set",
  ),
]


@pytest.mark.parametrize(
  "sets, blessed, reason",
  [c[1:] for c in BLESSING_CASES],
  ids=[c[0] for c in BLESSING_CASES],
)
def test_model_blessing_criteria(sets, blessed, reason):
  verdict = blessing_lib.model_blessing({"sets": sets}, -1.0, -5.0)
  assert verdict["blessed"] is blessed
  assert reason in verdict["reason"]
  markdown = blessing_lib.render_markdown(
    blessing_lib.combine(verdict, {"blessed": True, "reason": "ok"})
  )
  assert ("**not blessed**" in markdown) is not blessed
  for name in sets:
    assert f"| {name} |" in markdown
  for c in verdict["criteria"]:
    assert c["metric"] == sets[c["set"]].get("primary", "f1")
    label = {"f1": "F1", "rouge_l": "ROUGE-L"}[c["metric"]]
    assert f"| {label} |" in markdown


def _response(**changes):
  """What the canary script reports for a model that answers correctly."""
  canaries = infra_validation.CANARIES
  answers, starts, ends, scores = [], [], [], []
  for _, question, context, status in canaries:
    del question
    if status == "ok":
      word = context.decode("utf-8").split()[0]
      answers.append(word.encode())
      starts.append(0)
      ends.append(len(word))
      scores.append(0.5)
    else:
      answers.append(b"")
      starts.append(-1)
      ends.append(-1)
      scores.append(0.0)
  values = {
    "answer": ("string", answers),
    "start_char": ("int64", starts),
    "end_char": ("int64", ends),
    "score": ("float32", scores),
    "status": ("string", [c[3].encode() for c in canaries]),
  }
  outputs = {}
  for key, (dtype, column) in values.items():
    if dtype == "string":
      column = [base64.b64encode(v).decode() for v in column]
    outputs[key] = {"dtype": dtype, "shape": [len(canaries)], "values": column}
  response = {"signatures": ["serving_default"], "outputs": outputs}
  for key, value in changes.items():
    if key == "drop":
      del outputs[value]
    else:
      response[key] = value
  return {
    "returncode": 0,
    "stderr_tail": "",
    "seconds": 1.0,
    "response": response,
  }


def _with_row(result, key, row, value):
  column = result["response"]["outputs"][key]
  if column["dtype"] == "string":
    value = base64.b64encode(value).decode()
  column["values"][row] = value
  return result


_EMPTY_ROW = [c[3] for c in infra_validation.CANARIES].index("empty_context")
INFRA_CASES = [
  ("answers_correctly", _response(), True, "answered 7 canary rows"),
  (
    "does_not_load",
    {
      "returncode": 1,
      "stderr_tail": "OSError: SavedModel file does not exist",
      "seconds": 1.0,
      "response": None,
    },
    False,
    "did not load and answer in a fresh process: OSError",
  ),
  (
    "times_out",
    {
      "returncode": None,
      "stderr_tail": "timed out after 600s",
      "seconds": 600.0,
      "response": None,
    },
    False,
    "timed out after 600s",
  ),
  ("imports_a2d", _response(a2d_imported=["a2d_tf"]), False, "imported a2d"),
  ("no_status_output", _response(drop="status"), False, "no output 'status'"),
  (
    "no_signature",
    {
      "returncode": 0,
      "stderr_tail": "",
      "seconds": 1.0,
      "response": {"signatures": []},
    },
    False,
    "no serving_default signature",
  ),
  (
    "empty_row_gets_ok",
    _with_row(_response(), "status", _EMPTY_ROW, b"ok"),
    False,
    "canary empty_context: status 'ok', expected 'empty_context'",
  ),
  (
    "empty_row_gets_garbage",
    _with_row(_response(), "answer", _EMPTY_ROW, b"\xff\xfe"),
    False,
    "an unanswerable row returned",
  ),
  (
    "answer_not_in_context",
    _with_row(_response(), "answer", 0, b"nonsense"),
    False,
    "canary plain: answer 'nonsense' is not context[0:",
  ),
  (
    "score_not_a_probability",
    _with_row(_response(), "score", 0, 3.0),
    False,
    "score 3.0 is not a probability",
  ),
]


@pytest.mark.parametrize(
  "result, blessed, reason",
  [c[1:] for c in INFRA_CASES],
  ids=[c[0] for c in INFRA_CASES],
)
def test_infra_judge_cases(result, blessed, reason):
  verdict = infra_validation.judge(result)
  assert verdict["blessed"] is blessed
  assert reason in verdict["reason"], verdict["reason"]


def test_infra_check_of_a_broken_and_a_good_export(exported, tmp_path):
  broken = tmp_path / "1"
  broken.mkdir()
  (broken / "saved_model.pb").write_bytes(b"not a SavedModel")
  verdict = infra_validation.check_serving_model(str(broken))
  assert not verdict["blessed"]
  assert "did not load" in verdict["reason"]
  verdict = infra_validation.check_serving_model(exported)
  assert verdict["blessed"], verdict["reason"]
  assert [r["status"] for r in verdict["canaries"]] == [
    c[3] for c in infra_validation.CANARIES
  ]
  combined = blessing_lib.combine(
    blessing_lib.model_blessing({"sets": {"dev": _set(50, 53, 40)}}, -1, -5),
    verdict,
  )
  assert not combined["blessed"]
  assert combined["reason"].startswith("model not blessed (dev: ")
  assert "infra" not in combined["reason"]
