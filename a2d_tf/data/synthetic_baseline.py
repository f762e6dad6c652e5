"""The type-matching baseline of the embedded synthetic corpus.

A reader that knows answer types but no relations: it finds the corpus'
entities by their lexicon (`synthetic.entity_mentions`), takes the
expected answer type from question keywords (`expected_answer_type`) and
answers with the passage entity of that type nearest the question's own
entities (`type_matching_baseline`). Every question of the corpus has
same-type distractors tied to the question's entities, so this baseline
scores low while the relations are learnable: the tests (and the README)
use it as the floor a trained reader must clear.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from a2d_tf.data.records import Record
from a2d_tf.data.synthetic import (
  COUNT,
  DEVICE,
  ORG,
  PERSON,
  PLACE,
  TOKEN_PATTERN,
  YEAR,
  Mention,
  entity_mentions,
)

# Keyword rules for the expected answer type, tried in order.
_TYPE_RULES = (
  (COUNT, r"\bhow many\b|\bpopulation\b|\bsize\b"),
  (YEAR, r"\bwhen\b|\byear\b"),
  (PLACE, r"\bwhere\b|\btown\b|\bcity\b|\bbirthplace\b"),
  (PERSON, r"\bwho\b|\bwhom\b|\bperson\b"),
  (ORG, r"\borganization\b"),
  (DEVICE, r"\bdevice\b|\binvent\b"),
)

# Words that say nothing about which entity is meant.
_STOPWORDS = frozenset(
  "what who whom which when where why how many did does do is was are were "
  "the a an in of by to for there from its has have".split()
)


def expected_answer_type(question: str) -> str | None:
  """The entity type a question asks for, from keywords; None if unknown."""
  lowered = question.lower()
  for kind, pattern in _TYPE_RULES:
    if re.search(pattern, lowered):
      return kind
  return None


def _gap(a: Mention | int, b: Mention) -> int:
  """Tokens between two mentions (or a token index and a mention); 0 if they
  overlap."""
  first, last = (a, a) if isinstance(a, int) else (a.first_token, a.last_token)
  if last < b.first_token:
    return b.first_token - last
  if b.last_token < first:
    return first - b.last_token
  return 0


def type_matching_baseline(
  records: Sequence[Record], anchors: str = "entities"
) -> dict[str, str]:
  """Answers with the passage entity of the expected type nearest the question.

  A type-only reader: it knows the answer type (from question keywords) and
  every entity's type (from the lexicon), but not the relations. Among the
  passage's mentions of the expected type that the question does not itself
  mention, it picks the one fewest tokens away from an anchor, the earliest
  on ties.

  Args:
    records: Records of the synthetic corpus.
    anchors: `"entities"`: passage mentions of the entities the question
      names (its subject), so the relation is not used at all. `"words"`:
      passage tokens equal to any question word but stopwords, which lets
      relation words that the question shares with a sentence count too.

  Returns:
    Record id -> predicted answer text (`""` when there is no candidate).
  """
  if anchors not in ("entities", "words"):
    raise ValueError(f"anchors must be 'entities' or 'words', got {anchors!r}")
  predictions = {}
  for record in records:
    kind = expected_answer_type(record.question)
    named = {m.text for m in entity_mentions(record.question)}
    mentions = entity_mentions(record.context)
    candidates = [m for m in mentions if m.kind == kind and m.text not in named]
    if anchors == "entities":
      points: list[Mention | int] = [m for m in mentions if m.text in named]
    else:
      words = {
        w.lower()
        for w in re.findall(r"\w+", record.question)
        if w.lower() not in _STOPWORDS
      }
      points = [
        i
        for i, t in enumerate(TOKEN_PATTERN.finditer(record.context))
        if t.group().lower() in words
      ]

    def distance(mention: Mention, points=points) -> int:
      return min((_gap(p, mention) for p in points), default=0)

    best = min(candidates, key=distance, default=None)
    predictions[record.id] = best.text if best else ""
  return predictions
