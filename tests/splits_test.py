"""Tests of the held-out validation split."""

import pytest

from a2d_tf.data import splits
from a2d_tf.data.records import Answer, DataError, Record


def _records(articles, passages=3, questions=4):
  out = []
  for a in range(articles):
    for p in range(passages):
      context = f"Article {a} passage {p} says {a * 100 + p}."
      for q in range(questions):
        out.append(
          Record(
            id=f"a{a}p{p}q{q}",
            title=f"article_{a}",
            context=context,
            question=f"What does passage {p} say?",
            answers=(Answer(str(a * 100 + p), context.index("says") + 5),),
          )
        )
  return out


def test_validation_never_shares_a_passage_or_article_with_train():
  records = _records(articles=40)
  train, validation = splits.split_validation(records, 0.1, seed=1)
  assert validation and train
  assert len(train) + len(validation) == len(records)
  assert not {r.context for r in train} & {r.context for r in validation}
  assert not {r.title for r in train} & {r.title for r in validation}
  assert len(validation) >= 0.1 * len(records)
  # Whole articles: the smallest holdout over the target is taken.
  assert len(validation) < 0.1 * len(records) + 12


def test_same_passage_under_two_titles_stays_on_one_side():
  records = _records(articles=30)
  shared = records[0]
  # The first article's first passage again, under another article.
  twin = Record("twin", "article_29", shared.context, "Again?", shared.answers)
  train, validation = splits.split_validation([*records, twin], 0.2, seed=5)
  sides = [
    shared.context in {r.context for r in part} for part in (train, validation)
  ]
  assert sides.count(True) == 1
  assert {r.title for r in train}.isdisjoint({r.title for r in validation})


def test_split_is_seeded_and_independent_of_record_order():
  records = _records(articles=25)
  _, first = splits.split_validation(records, 0.1, seed=2)
  _, reordered = splits.split_validation(records[::-1], 0.1, seed=2)
  _, other_seed = splits.split_validation(records, 0.1, seed=3)
  assert {r.id for r in first} == {r.id for r in reordered}
  assert {r.id for r in first} != {r.id for r in other_seed}
  # Output keeps the input order.
  assert [r.id for r in first] == sorted(
    (r.id for r in first), key=[r.id for r in records].index
  )


def test_zero_fraction_keeps_everything_for_training():
  records = _records(articles=3)
  train, validation = splits.split_validation(records, 0.0, seed=1)
  assert train == records and validation == []


def test_never_holds_out_every_article():
  records = _records(articles=2)
  train, validation = splits.split_validation(records, 0.9, seed=1)
  assert train and validation


@pytest.mark.parametrize("fraction", [-0.1, 1.0, 1.5])
def test_fraction_out_of_range_is_refused(fraction):
  with pytest.raises(ValueError, match="validation_fraction"):
    splits.split_validation(_records(articles=3), fraction, seed=1)


def test_one_article_cannot_be_split():
  with pytest.raises(DataError, match="at least two articles"):
    splits.split_validation(_records(articles=1, passages=1), 0.1, seed=1)
