"""Tests for a2d_tf.data.addsent (AddSent-style adversarial generation)."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys

import pytest

from a2d_tf.data import addsent
from a2d_tf.data import squad as squad_data
from a2d_tf.data.records import Answer, DataError, Record
from a2d_tf.metrics import adversarial, squad

_SEED = 7
# (title, context, [(id, question, answer text), ...]); answers are found in
# the context by the fixture.
_ARTICLES = (
  (
    "Super_Bowl_50",
    "The Denver Broncos defeated the Carolina Panthers in Super Bowl 50. "
    "The game was played on February 7, 2016, at Levi's Stadium in Santa "
    "Clara. Peyton Manning was the quarterback of the Broncos. The Broncos "
    "scored 24 points. The game was watched by 111 million viewers.",
    (
      (
        "56be4db0acb8001400a502ec",
        "Who was the quarterback of the Broncos?",
        "Peyton Manning",
      ),
      (
        "56be4db0acb8001400a502ed",
        "When was Super Bowl 50 played?",
        "February 7, 2016",
      ),
      (
        "56be4db0acb8001400a502ee",
        "How many points did the Broncos score?",
        "24",
      ),
      (
        "56be4db0acb8001400a502ef",
        "Which team did the Broncos defeat in Super Bowl 50?",
        "Carolina Panthers",
      ),
      (
        "56be4db0acb8001400a502f0",
        "Where was the game played?",
        "Levi's Stadium",
      ),
    ),
  ),
  (
    "Nikola_Tesla",
    "Nikola Tesla was born in 1856 in Smiljan. Tesla moved to New York in "
    "1884 and worked for Thomas Edison. In 1887 Tesla founded the Tesla "
    "Electric Company. Tesla died in New York in 1943.",
    (
      ("56dfa0d84a1a83140091ebb4", "In what year was Tesla born?", "1856"),
      (
        "56dfa0d84a1a83140091ebb5",
        "Who did Tesla work for in New York?",
        "Thomas Edison",
      ),
      ("56dfa0d84a1a83140091ebb6", "Where did Tesla die?", "New York"),
      (
        "q-tesla-4",
        "What company did Tesla found in 1887?",
        "Tesla Electric Company",
      ),
    ),
  ),
  (
    "Warsaw",
    "Warsaw is the capital of Poland. The city has 1,740,119 inhabitants. "
    "The Vistula River flows through Warsaw. Frederic Chopin lived in "
    "Warsaw until 1830. Marie Curie was born in Warsaw in 1867.",
    (
      (
        "57336755d058e614000b5a3c",
        "How many inhabitants does Warsaw have?",
        "1,740,119",
      ),
      (
        "57336755d058e614000b5a3d",
        "Which river flows through Warsaw?",
        "Vistula River",
      ),
      (
        "57336755d058e614000b5a3e",
        "Who lived in Warsaw until 1830?",
        "Frederic Chopin",
      ),
      (
        "57336755d058e614000b5a3f",
        "Who was born in Warsaw in 1867?",
        "Marie Curie",
      ),
    ),
  ),
  (
    "Amazon_rainforest",
    "The Amazon rainforest covers 5,500,000 square kilometres. Most of the "
    "forest is in Brazil. The largest trees grow near the river. Francisco "
    "de Orellana explored the Amazon River in 1542.",
    (
      (
        "5729e2316aef0514001550c4",
        "In which country is most of the forest?",
        "Brazil",
      ),
      (
        "5729e2316aef0514001550c5",
        "What grows near the river?",
        "The largest trees",
      ),
      (
        "5729e2316aef0514001550c6",
        "Who explored the Amazon River in 1542?",
        "Francisco de Orellana",
      ),
    ),
  ),
)
# Questions with no name, number or listed antonym: nothing to mutate.
_UNMUTABLE = ("56be4db0acb8001400a502f0", "5729e2316aef0514001550c5")


def _records() -> list[Record]:
  records = []
  for title, context, questions in _ARTICLES:
    for qid, question, text in questions:
      start = context.index(text)
      records.append(
        Record(qid, title, context, question, (Answer(text, start),))
      )
  return records


@pytest.fixture(scope="module")
def records():
  return _records()


@pytest.fixture(scope="module")
def result(records):
  return addsent.generate_adversarial(records, 0, _SEED)


def _by_id(records):
  return {r.id: r for r in records}


def test_generate_adversarial_follows_each_original_with_its_variant(
  records, result
):
  inputs = _by_id(records)
  out = result.records
  assert len(out) == 2 * result.stats.num_variants
  for original, variant in zip(out[::2], out[1::2], strict=True):
    assert original is inputs[original.id]
    assert variant.id == original.id + addsent.ADVERSARIAL_SUFFIX
    assert variant.title == original.title
    assert variant.question == original.question
  # Originals keep the input order.
  order = [r.id for r in records]
  kept = [r.id for r in out[::2]]
  assert kept == [qid for qid in order if qid in set(kept)]


def test_variants_group_under_their_original(result):
  ids = [r.id for r in result.records]
  groups = adversarial.group_by_original(ids)
  assert len(groups) == result.stats.num_variants
  for root, group in groups.items():
    assert group == [root, root + "-addsent"]
  # Ids with and without "-" of their own both group right.
  assert "q-tesla-4" in groups
  assert "56dfa0d84a1a83140091ebb4" in groups


def test_worst_case_metric_punishes_a_model_fooled_by_the_distractor(
  tmp_path, result
):
  path = tmp_path / "adversarial.json"
  squad_data.write_squad_json(list(result.records), str(path))
  assert _by_id(squad_data.read_squad_json(str(path))) == _by_id(result.records)
  with open(path, encoding="utf-8") as f:
    dataset = json.load(f)["data"]
  gold = {r.id: r.answers[0].text for r in result.records}
  clean = adversarial.evaluate_adversarial(dataset, gold)
  assert clean["f1"] == 100.0
  assert clean["num_variants"] == result.stats.num_variants
  fooled = dict(gold)
  for d in result.distractors:
    fooled[d.variant_id] = d.fake_answer
  assert adversarial.evaluate_adversarial(dataset, fooled)["f1"] == 0.0


def test_variant_context_is_the_original_plus_one_sentence(result):
  pairs = zip(result.records[::2], result.records[1::2], strict=True)
  for (original, variant), d in zip(pairs, result.distractors, strict=True):
    assert variant.context == original.context + " " + d.sentence
    assert d.sentence.endswith(".")
    assert d.sentence[0].isupper()
    assert variant.answers == original.answers
    for a in variant.answers:
      assert variant.context[a.start : a.start + len(a.text)] == a.text


def test_fake_answer_has_f1_zero_against_every_gold_answer(records, result):
  inputs = _by_id(records)
  assert result.distractors
  for d in result.distractors:
    golds = [a.text for a in inputs[d.original_id].answers]
    assert max(squad.f1_score(d.fake_answer, g) for g in golds) == 0
    assert d.fake_answer in d.sentence


def _normalized_run_in(needle: str, haystack: str) -> bool:
  padded = f" {squad.normalize_answer(haystack)} "
  return f" {squad.normalize_answer(needle)} " in padded


def test_distractor_never_contains_a_gold_answer(records, result):
  inputs = _by_id(records)
  for d in result.distractors:
    for a in inputs[d.original_id].answers:
      assert not _normalized_run_in(a.text, d.sentence)


def test_question_words_are_changed(records, result):
  inputs = _by_id(records)
  for d in result.distractors:
    original = inputs[d.original_id].question
    assert d.substitutions
    assert d.mutated_question != original
    for old, new in d.substitutions:
      assert old != new
      assert old in original
      assert new in d.mutated_question
      # The sentence keeps the mutated words, not the original ones.
      assert new in d.sentence


def test_numbers_and_years_are_shifted(result):
  by_id = {d.original_id: d for d in result.distractors}
  when = by_id["56be4db0acb8001400a502ed"]  # "When was Super Bowl 50 ..."
  fifty = [new for old, new in when.substitutions if old == "50"]
  assert fifty and fifty[0].isdigit() and fifty[0] != "50"
  assert not re.search(r"\b50\b", when.sentence)
  born = by_id["57336755d058e614000b5a3f"]  # "... born in Warsaw in 1867?"
  years = [new for old, new in born.substitutions if old == "1867"]
  assert years and re.fullmatch(r"1[89]\d\d", years[0])


@pytest.mark.parametrize(
  "qid, answer_type, shape",
  [
    # who -> a person's name (capitalized words)
    ("56be4db0acb8001400a502ec", "person", r"[A-Z][\w.'-]*( [A-Z][\w.'-]*)+"),
    # when, with a full date -> another date
    ("56be4db0acb8001400a502ed", "date", r"[A-Z][a-z]+ \d{1,2}, \d{4}"),
    # how many -> a number
    ("56be4db0acb8001400a502ee", "number", r"[\d,]+"),
    ("57336755d058e614000b5a3c", "number", r"[\d,]+"),
    # in what year -> a year
    ("56dfa0d84a1a83140091ebb4", "year", r"1\d{3}"),
  ],
)
def test_fake_answer_matches_the_gold_answer_type(
  result, qid, answer_type, shape
):
  d = {d.original_id: d for d in result.distractors}[qid]
  assert d.answer_type == answer_type
  assert re.fullmatch(shape, d.fake_answer), d.fake_answer


def test_templates_make_statements_from_common_wh_forms(result):
  d = {d.original_id: d for d in result.distractors}
  who = d["56be4db0acb8001400a502ec"]  # Who was the quarterback of X?
  assert who.template == "who_be"
  assert re.fullmatch(
    r"The quarterback of the .+ was " + re.escape(who.fake_answer) + r"\.",
    who.sentence,
  )
  many = d["56be4db0acb8001400a502ee"]  # How many points did X score?
  assert many.template == "how_many"
  assert re.fullmatch(
    r"The .+ scored " + re.escape(many.fake_answer) + r" points\.",
    many.sentence,
  )
  year = d["56dfa0d84a1a83140091ebb4"]  # In what year was X born?
  assert year.template == "what_time"
  assert re.fullmatch(
    r".+ was born in " + re.escape(year.fake_answer) + r"\.", year.sentence
  )
  which = d["57336755d058e614000b5a3d"]  # Which river flows through X?
  assert which.template == "what_np_subject"
  assert re.fullmatch(
    r"The river that flows through .+ is "
    + re.escape(which.fake_answer)
    + r"\.",
    which.sentence,
  )


def test_unmutable_questions_are_skipped_and_counted(result):
  stats = result.stats
  assert set(_UNMUTABLE) <= set(stats.skipped_ids[addsent.NO_SUBSTITUTION])
  assert stats.skipped[addsent.NO_SUBSTITUTION] == len(
    stats.skipped_ids[addsent.NO_SUBSTITUTION]
  )
  assert stats.num_sampled == stats.num_variants + sum(stats.skipped.values())
  assert set(stats.skipped) == set(addsent.SKIP_REASONS)
  kept = {r.id for r in result.records}
  for ids in stats.skipped_ids.values():
    assert not kept & set(ids)
  assert sum(stats.answer_types.values()) == stats.num_variants
  assert sum(stats.templates.values()) == stats.num_variants


def test_questions_without_gold_answer_are_counted(records):
  bare = dataclasses.replace(records[0], id="no-answer", answers=())
  result = addsent.generate_adversarial([*records, bare], 0, _SEED)
  assert result.stats.skipped_ids[addsent.NO_GOLD_ANSWER] == ("no-answer",)


def test_question_whose_mutation_keeps_the_gold_answer_is_counted(records):
  # The gold answer ("capital") is in the question and nothing changes it.
  context = "Warsaw is the capital of Poland."
  record = Record(
    "gold-in-question",
    "Warsaw_capital",
    context,
    "Is Warsaw a capital or a village?",
    (Answer("capital", context.index("capital")),),
  )
  result = addsent.generate_adversarial([*records, record], 0, _SEED)
  assert result.stats.skipped_ids[addsent.GOLD_IN_SENTENCE] == (
    "gold-in-question",
  )


def test_same_seed_gives_the_same_output(records, result):
  again = addsent.generate_adversarial(records, 0, _SEED)
  assert again == result


def test_output_does_not_depend_on_the_hash_seed(tmp_path):
  # A fresh interpreter per hash seed; it imports only the generator (no
  # TensorFlow), so this stays fast.
  inputs = tmp_path / "records.json"
  inputs.write_text(json.dumps([dataclasses.asdict(r) for r in _records()]))
  script = (
    "import json, sys\n"
    "from a2d_tf.data import addsent\n"
    "from a2d_tf.data.records import Answer, Record\n"
    "rows = json.load(open(sys.argv[1]))\n"
    "records = [Record(**{**r, 'answers': tuple(Answer(**a) for a in"
    " r['answers'])}) for r in rows]\n"
    "out = addsent.generate_adversarial(records, 0, 3)\n"
    "assert 'tensorflow' not in sys.modules\n"
    "print(json.dumps([[x.id, x.context] for x in out.records]))\n"
  )
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  outputs = set()
  for hash_seed in ("1", "2"):
    env = {**os.environ, "PYTHONHASHSEED": hash_seed, "PYTHONPATH": root}
    done = subprocess.run(
      [sys.executable, "-c", script, str(inputs)],
      env=env,
      capture_output=True,
      text=True,
      check=True,
    )
    outputs.add(done.stdout)
  assert len(outputs) == 1
  assert len(json.loads(outputs.pop())) > 10


def _sampled_ids(result) -> set[str]:
  kept = {r.id for r in result.records[::2]}
  skipped = {qid for ids in result.stats.skipped_ids.values() for qid in ids}
  return kept | skipped


def test_num_questions_samples_by_seed_in_input_order(records):
  sample = addsent.generate_adversarial(records, 5, _SEED)
  assert sample.stats.num_sampled == len(_sampled_ids(sample)) == 5
  assert addsent.generate_adversarial(records, 5, _SEED) == sample
  samples = {
    frozenset(_sampled_ids(addsent.generate_adversarial(records, 5, seed)))
    for seed in range(6)
  }
  assert len(samples) > 1
  order = [r.id for r in records]
  ids = [r.id for r in sample.records[::2]]
  assert ids == sorted(ids, key=order.index)


@pytest.mark.parametrize("extra", [0, 10])
def test_num_questions_zero_or_at_least_all_takes_all(records, extra):
  n = len(records) + extra if extra else 0
  stats = addsent.generate_adversarial(records, n, _SEED).stats
  assert stats.num_sampled == stats.num_records == len(records)


def test_a_question_gets_the_same_variant_in_any_sample(records):
  for seed in range(3):
    full = addsent.generate_adversarial(records, 0, seed)
    by_id = {d.original_id: d for d in full.distractors}
    sample = addsent.generate_adversarial(records, 6, seed)
    assert sample.distractors
    for d in sample.distractors:
      assert by_id[d.original_id] == d


@pytest.mark.parametrize("num_questions", [-1, 2.5, True])
def test_bad_num_questions_raises(records, num_questions):
  with pytest.raises(ValueError, match="num_questions"):
    addsent.generate_adversarial(records, num_questions, _SEED)


def test_duplicate_ids_raise(records):
  with pytest.raises(DataError, match="duplicate question id"):
    addsent.generate_adversarial([*records, records[0]], 0, _SEED)


def test_records_that_hold_variants_raise(result):
  with pytest.raises(DataError, match="already hold its variant"):
    addsent.generate_adversarial(list(result.records), 0, _SEED)


def test_make_adversarial_returns_the_records(records, result):
  assert addsent.make_adversarial(records, 0, _SEED) == list(result.records)


def test_summary_is_json_able(result):
  summary = json.loads(json.dumps(result.stats.summary()))
  assert summary["num_variants"] == result.stats.num_variants
  assert summary["skipped"][addsent.NO_SUBSTITUTION] >= len(_UNMUTABLE)


@pytest.mark.parametrize(
  "question",
  [
    "?",
    "Name the river.",
    "what's the capital of Poland",
    "Who?",
    "How many?",
    "In 1867, where, when and why did who go what?",
    "Was Curie born in 1867 or in 1868?",
    "Warum wurde Marie Curie 1867 in Warschau geboren?",
    "What did Marie Curie's lab 's result do to the ... ?",
  ],
)
def test_odd_questions_get_a_variant_or_a_counted_skip(records, question):
  context = "Marie Curie was born in Warsaw in 1867. She had a lab."
  record = Record(
    "odd", "Curie", context, question, (Answer("1867", context.index("1867")),)
  )
  result = addsent.generate_adversarial([*records, record], 0, _SEED)
  stats = result.stats
  assert stats.num_sampled == stats.num_variants + sum(stats.skipped.values())
  made = [d for d in result.distractors if d.original_id == "odd"]
  skipped = [r for r, ids in stats.skipped_ids.items() if "odd" in ids]
  assert len(made) + len(skipped) == 1
  for d in made:
    assert d.sentence.endswith((".", "?", "!"))
    assert squad.f1_score(d.fake_answer, "1867") == 0
    assert not _normalized_run_in("1867", d.sentence)


def test_answer_that_normalizes_to_nothing_does_not_break(records):
  context = "The Curie lab opened in 1932 in Warsaw."
  record = Record(
    "empty-gold", "Curie", context, "What opened in 1932?", (Answer("The", 0),)
  )
  result = addsent.generate_adversarial([*records, record], 0, _SEED)
  made = [d for d in result.distractors if d.original_id == "empty-gold"]
  assert len(made) == 1
  assert made[0].fake_answer in made[0].sentence


def test_question_without_a_fake_answer_of_its_type_is_counted():
  # One article only: no other article's person to serve as the fake answer.
  title, context, questions = _ARTICLES[2]
  qid, question, text = questions[3]  # Who was born in Warsaw in 1867?
  answer = Answer(text, context.index(text))
  record = Record(qid, title, context, question, (answer,))
  result = addsent.generate_adversarial([record], 0, _SEED)
  assert result.stats.skipped_ids[addsent.NO_FAKE_ANSWER] == (qid,)
  assert result.records == ()
