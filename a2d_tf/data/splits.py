"""Held-out validation split for model selection.

Teachers and the student keep the weights of their best epoch on a
validation split carved out of the training data, so the reported sets
(dev, adversarial sets) are only ever reported, never selected on.

The split is by article: every question of an article (records that share
a title) goes to the same side, and so does every question about the same
passage text, even under another title. No passage is on both sides, so the
validation score measures what the dev set measures, answers about unseen
passages. Articles are ordered by a seeded hash of their key, which makes
the split independent of record order and stable across runs, and articles
are held out in that order until they hold at least `fraction` of the
questions (at least one article, never all of them).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from a2d_tf.data.records import DataError, Record


def _groups(records: Sequence[Record]) -> dict[int, list[int]]:
  """Record indices grouped by connected title / context (union-find)."""
  parent: dict[str, str] = {}

  def find(key: str) -> str:
    while parent[key] != key:
      parent[key] = parent[parent[key]]
      key = parent[key]
    return key

  def union(a: str, b: str) -> None:
    parent.setdefault(a, a)
    parent.setdefault(b, b)
    root_a, root_b = find(a), find(b)
    if root_a != root_b:
      parent[max(root_a, root_b)] = min(root_a, root_b)

  for record in records:
    title = record.title or record.context
    union(f"title\x1f{title}", f"ctx\x1f{record.context}")
  roots: dict[str, list[int]] = {}
  for i, record in enumerate(records):
    roots.setdefault(find(f"ctx\x1f{record.context}"), []).append(i)
  return dict(enumerate(roots.values()))


def split_validation(
  records: Sequence[Record], fraction: float, seed: int
) -> tuple[list[Record], list[Record]]:
  """Splits training records into (train, validation) by article.

  Args:
    records: The training split.
    fraction: Share of the questions held out (whole articles, so the
      validation split holds at least this share), in [0, 1). 0 returns all
      records as train and no validation records.
    seed: Seed of the article order.

  Returns:
    `(train, validation)`, each in the input order.

  Raises:
    ValueError: If `fraction` is outside [0, 1).
    DataError: If `fraction` > 0 and the records hold fewer than two
      articles, so nothing can be held out and something left to train on.
  """
  if not 0.0 <= fraction < 1.0:
    raise ValueError(
      f"data.validation_fraction must be in [0, 1), received: {fraction}"
    )
  records = list(records)
  if fraction == 0.0:
    return records, []
  groups = _groups(records)
  if len(groups) < 2:
    raise DataError(
      f"data.validation_fraction={fraction} needs at least two articles "
      f"(passages) in the training split, found {len(groups)}",
      field="title",
    )

  def order(group: int) -> str:
    # The group's smallest (title, context) names it whatever the order.
    name = min(
      f"{records[i].title}\x1f{records[i].context}" for i in groups[group]
    )
    key = f"{seed}\x1f{name}"
    return hashlib.sha256(key.encode("utf-8")).hexdigest()

  ranked = sorted(groups, key=order)
  target = fraction * len(records)
  validation_idx: set[int] = set()
  for group in ranked[:-1]:
    validation_idx.update(groups[group])
    if len(validation_idx) >= target:
      break
  train = [r for i, r in enumerate(records) if i not in validation_idx]
  validation = [r for i, r in enumerate(records) if i in validation_idx]
  return train, validation
