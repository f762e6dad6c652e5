"""Question types by their wh-word, for the per-type analysis (Figure 4).

A plain text rule, the same for any reader's records (real SQuAD or the
embedded corpus): the first wh-word of the question decides its type.
"""

from __future__ import annotations

import re

QUESTION_TYPES = (
  "what",
  "who",
  "which",
  "when",
  "where",
  "why",
  "how",
  "other",
)


def question_type(question: str) -> str:
  """The question's first wh-word, for per-type analysis.

  Args:
    question: Question text.

  Returns:
    One of `QUESTION_TYPES`: `what`, `who` (also for whom / whose), `which`,
    `when`, `where`, `why`, `how`, or `other` when there is none.
  """
  for word in re.findall(r"[a-z]+", question.lower()):
    if word in ("whom", "whose"):
      return "who"
    if word in QUESTION_TYPES[:-1]:
      return word
  return "other"
