"""Tests for the wh-word question types of the per-type analysis."""

from __future__ import annotations

import pytest

from a2d_tf.data import question_types, synthetic


@pytest.fixture(scope="module")
def corpus():
  return synthetic.generate_corpus(12, 30, 13)


@pytest.mark.parametrize(
  "question,expected",
  [
    ("What year was Ostrella Guild set up?", "what"),
    ("In what year did Karvo Delmin establish it?", "what"),
    ("Who founded Ostrella Guild?", "who"),
    ("Ostrella Guild was set up by whom?", "who"),
    ("Whose lamp is it?", "who"),
    ("Which organization is based in Norvik?", "which"),
    ("When was Karvo Delmin born?", "when"),
    ("Where is Ostrella Guild located?", "where"),
    ("Why did it close?", "why"),
    ("How many bridges does Norvik have?", "how"),
    ("Name the founder of Ostrella Guild.", "other"),
    ("Somewhere else?", "other"),
  ],
)
def test_question_type_first_wh_word(question, expected):
  assert question_types.question_type(question) == expected


def test_question_type_generated_questions_all_covered(corpus):
  types = {
    question_types.question_type(r.question)
    for r in corpus["train"] + corpus["dev"]
  }
  assert types <= set(question_types.QUESTION_TYPES) - {"other"}
  assert len(types) >= 5
