"""Tests for the embedded synthetic corpus."""

from __future__ import annotations

import collections
import hashlib
import os
import re
import subprocess
import sys

import pytest

from a2d_tf.data import squad, synthetic

_NUM_TRAIN = 12
_NUM_DEV = 30
_SEED = 13


@pytest.fixture(scope="module")
def corpus():
  return synthetic.generate_corpus(_NUM_TRAIN, _NUM_DEV, _SEED)


def _sentence_of(context: str, start: int) -> str:
  """The sentence of `context` around character `start`."""
  begin = context.rfind(". ", 0, start)
  begin = 0 if begin < 0 else begin + 2
  end = context.find(".", start)
  return context[begin : end + 1]


def test_generate_corpus_same_seed_same_corpus(corpus):
  assert synthetic.generate_corpus(_NUM_TRAIN, _NUM_DEV, _SEED) == corpus


def test_generate_corpus_independent_of_hash_seed():
  # Pipeline caching relies on the corpus being the same in every process;
  # set iteration order, which follows PYTHONHASHSEED, must not leak in.
  code = (
    "import hashlib\n"
    "from a2d_tf.data import synthetic\n"
    "corpus = synthetic.generate_corpus(4, 4, 5)\n"
    "print(hashlib.sha256(repr(corpus).encode()).hexdigest())\n"
  )
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  env = {**os.environ, "PYTHONHASHSEED": "12345", "PYTHONPATH": root}
  result = subprocess.run(
    [sys.executable, "-c", code],
    env=env,
    capture_output=True,
    text=True,
    check=True,
  )
  local = synthetic.generate_corpus(4, 4, 5)
  expected = hashlib.sha256(repr(local).encode()).hexdigest()
  assert result.stdout.strip().splitlines()[-1] == expected


def test_generate_corpus_other_seed_other_corpus(corpus):
  other = synthetic.generate_corpus(_NUM_TRAIN, _NUM_DEV, _SEED + 1)
  assert other["train"] != corpus["train"]
  assert {r.context for r in other["dev"]}.isdisjoint(
    r.context for r in corpus["dev"]
  )


def test_generate_corpus_train_does_not_depend_on_dev_size(corpus):
  other = synthetic.generate_corpus(_NUM_TRAIN, 3, _SEED)
  assert other["train"] == corpus["train"]
  assert other["dev"] == corpus["dev"][: len(other["dev"])]


def test_generate_corpus_splits_non_empty_and_sized(corpus):
  for split in ("train", "dev", "adversarial"):
    assert corpus[split], split
  for split, passages in (("train", _NUM_TRAIN), ("dev", _NUM_DEV)):
    contexts = {r.context for r in corpus[split]}
    assert len(contexts) == passages
    per_passage = collections.Counter(r.context for r in corpus[split])
    assert set(per_passage.values()) <= {3, 4, 5}


def test_generate_corpus_ids_unique_and_without_dashes(corpus):
  ids = [r.id for split in ("train", "dev") for r in corpus[split]]
  assert len(ids) == len(set(ids))
  assert not any("-" in i for i in ids)


def test_generate_corpus_answer_offsets_exact(corpus):
  for split in ("train", "dev", "adversarial"):
    for record in corpus[split]:
      assert len(record.answers) == 1
      answer = record.answers[0]
      end = answer.start + len(answer.text)
      assert record.context[answer.start : end] == answer.text, record.id


def test_generate_corpus_passage_shape(corpus):
  for record in corpus["train"] + corpus["dev"]:
    sentences = record.context.count(".")
    assert 10 <= sentences <= 14
    tokens = re.findall(r"\w+|[^\w\s]", record.context)
    assert 60 <= len(tokens) <= 160
    assert record.question.endswith("?")


def test_generate_corpus_small_vocabulary():
  records = synthetic.generate_corpus(60, 0, _SEED)["train"]
  words = {
    w.lower()
    for r in records
    for w in re.findall(r"[^\W\d]+", r.context + " " + r.question)
  }
  assert 150 <= len(words) <= 450


def test_generate_corpus_answer_sentence_names_question_entities(corpus):
  for record in corpus["dev"]:
    sentence = _sentence_of(record.context, record.answers[0].start)
    named = synthetic.entity_mentions(record.question)
    assert named, record.question
    for mention in named:
      assert mention.text in sentence, (record.question, sentence)


def test_generate_corpus_same_type_distractors_present(corpus):
  for record in corpus["dev"]:
    gold = record.answers[0]
    (gold_mention,) = synthetic.entity_mentions(gold.text)
    named = {m.text for m in synthetic.entity_mentions(record.question)}
    # Same-type candidates, other than the gold, in sentences that mention an
    # entity of the question: the subject tied by a wrong relation.
    confusing = {
      m.text
      for m in synthetic.entity_mentions(record.context)
      if m.kind == gold_mention.kind
      and m.text != gold.text
      and any(n in _sentence_of(record.context, m.start) for n in named)
    }
    assert len(confusing) >= 2, record.id


def test_generate_corpus_answer_types_vary(corpus):
  kinds = collections.Counter(
    synthetic.entity_mentions(r.answers[0].text)[0].kind
    for r in corpus["train"] + corpus["dev"]
  )
  assert set(kinds) >= {
    synthetic.PERSON,
    synthetic.ORG,
    synthetic.PLACE,
    synthetic.YEAR,
    synthetic.COUNT,
  }
  assert max(kinds.values()) < 0.4 * sum(kinds.values())


def test_generate_corpus_question_paraphrases_vary(corpus):
  # Question wordings with entities blanked out: several per relation.
  shapes = set()
  for record in corpus["train"] + corpus["dev"]:
    shape = record.question
    for mention in synthetic.entity_mentions(record.question):
      shape = shape.replace(mention.text, "X")
    shapes.add(shape)
  assert len(shapes) >= 40


def test_adversarial_split_holds_originals_and_variants(corpus):
  dev = {r.id: r for r in corpus["dev"]}
  adversarial = corpus["adversarial"]
  originals = [r for r in adversarial if r.id in dev]
  variants = [r for r in adversarial if r.id not in dev]
  assert originals == corpus["dev"]
  assert len(variants) == len(dev)
  for variant in variants:
    assert variant.id.endswith(synthetic.ADVERSARIAL_SUFFIX)
    original = dev[variant.id.removesuffix(synthetic.ADVERSARIAL_SUFFIX)]
    assert variant.question == original.question
    assert variant.answers == original.answers
    assert variant.context.startswith(original.context + " ")


def test_adversarial_sentence_mimics_question_with_fake_entities(corpus):
  dev = {r.id: r for r in corpus["dev"]}
  for variant in corpus["adversarial"]:
    if variant.id in dev:
      continue
    original = dev[variant.id.removesuffix(synthetic.ADVERSARIAL_SUFFIX)]
    added = variant.context[len(original.context) + 1 :]
    assert added.endswith(".") and added.count(".") == 1
    added_mentions = synthetic.entity_mentions(added)
    passage_entities = {
      m.text for m in synthetic.entity_mentions(original.context)
    }
    # Only invented entities, one of them a fake answer of the gold's type.
    assert passage_entities.isdisjoint(m.text for m in added_mentions)
    (gold,) = synthetic.entity_mentions(original.answers[0].text)
    assert gold.kind in {m.kind for m in added_mentions}
    # It restates the question: an invented entity for each entity the
    # question names, plus the fake answer.
    question_kinds = [
      m.kind for m in synthetic.entity_mentions(original.question)
    ]
    assert sorted(m.kind for m in added_mentions) == sorted(
      [*question_kinds, gold.kind]
    ), (original.question, added)


def test_entity_mentions_finds_types_and_offsets():
  lex = synthetic.lexicon()
  person = f"{lex.first_names[0]} {lex.last_names[0]}"
  org = f"{lex.org_words[0]} {lex.org_kinds[0]}"
  device = f"{lex.device_words[0]} {lex.device_nouns[0]}"
  text = (
    f"In 1843, {person} founded {org} in {lex.places[0]}. "
    f"It has 412 employees and the {device}."
  )
  mentions = synthetic.entity_mentions(text)
  assert [(m.kind, m.text) for m in mentions] == [
    (synthetic.YEAR, "1843"),
    (synthetic.PERSON, person),
    (synthetic.ORG, org),
    (synthetic.PLACE, lex.places[0]),
    (synthetic.COUNT, "412"),
    (synthetic.DEVICE, device),
  ]
  for mention in mentions:
    assert text[mention.start : mention.end] == mention.text


def test_lexicon_words_disjoint_and_not_template_english():
  lex = synthetic.lexicon()
  groups = [
    lex.first_names,
    lex.last_names,
    lex.places,
    lex.org_words,
    lex.device_words,
  ]
  words = [w.lower() for group in groups for w in group]
  assert len(words) == len(set(words))
  assert synthetic.lexicon() is lex
  english = {"in", "the", "founded", "born", "guild", "lamp", "was", "by"}
  assert english.isdisjoint(words)


def test_write_corpus_files_read_back(tmp_path, corpus):
  paths = synthetic.write_corpus(
    str(tmp_path / "corpus"), _NUM_TRAIN, _NUM_DEV, _SEED
  )
  assert sorted(paths) == ["adversarial", "dev", "train"]
  for split, path in paths.items():
    assert path.endswith(f"{split}.json")
    assert squad.read_squad_json(path) == corpus[split]


@pytest.mark.parametrize(
  "num_train,num_dev",
  [(-1, 2), (2, -1), (1.5, 2)],
  ids=["train", "dev", "float"],
)
def test_generate_corpus_bad_sizes_raise(num_train, num_dev):
  with pytest.raises(ValueError, match="num_"):
    synthetic.generate_corpus(num_train, num_dev, 0)
