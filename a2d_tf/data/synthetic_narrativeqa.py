"""A NarrativeQA-layout directory generated from the embedded corpus.

The official NarrativeQA files (github.com/deepmind/narrativeqa) cannot be
downloaded here. This module writes a directory in their layout, so that
`--dataset=narrativeqa` can be run and tested end to end without them:

  DIR/documents.csv                        the document index (all columns)
  DIR/qaps.csv                             questions with two answers
  DIR/third_party/wikipedia/summaries.csv  one summary per document

Its text is the embedded synthetic corpus (`synthetic`): a document's
summary is `passages_per_document` consecutive passages, its questions are
theirs. Like NarrativeQA's, the two reference answers are free text written
apart from the summary: the first is the answer as the passage words it
(sometimes with a final full stop), the second a rewording by the answer's
type ("in Neska" for a place or year, "the Kuben Society" for an
organization or device, the last name alone for some people). A share of
the questions (`unanswerable`) gets two answers that share no word with any
summary ("unknown", "not stated"), the questions NarrativeQA's span rule
leaves without a training span. The tokenized columns split punctuation off
words, as NarrativeQA's do.

It is not NarrativeQA: its summaries are about 110 words a passage (real
ones about 600), its questions ask for one slot of one fact, and its scores
say nothing about the real data set.

  python -m a2d_tf.data.synthetic_narrativeqa --output_dir=/tmp/nqa
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import hashlib
import os
import random
from collections.abc import Sequence

from absl import app, flags

from a2d_tf.data import narrativeqa, synthetic
from a2d_tf.data.records import Record

DOCUMENT_COLUMNS = (
  "document_id",
  "set",
  "kind",
  "story_url",
  "story_file_size",
  "wiki_url",
  "wiki_title",
  "story_word_count",
  "story_start",
  "story_end",
)
QAPS_COLUMNS = (
  "document_id",
  "set",
  "question",
  "answer1",
  "answer2",
  "question_tokenized",
  "answer1_tokenized",
  "answer2_tokenized",
)
SUMMARY_COLUMNS = ("document_id", "set", "summary", "summary_tokenized")
# Answers of unanswerable questions: no word of them is in the corpus.
UNANSWERABLE = ("unknown", "not stated")


@dataclasses.dataclass(frozen=True)
class Layout:
  """The rows of the three files.

  Attributes:
    documents: `documents.csv` rows, `DOCUMENT_COLUMNS` each.
    qaps: `qaps.csv` rows, `QAPS_COLUMNS` each.
    summaries: `summaries.csv` rows, `SUMMARY_COLUMNS` each.
  """

  documents: list[tuple[str, ...]]
  qaps: list[tuple[str, ...]]
  summaries: list[tuple[str, ...]]

  def counts(self) -> dict[str, int]:
    """Documents and questions per split, e.g. `train_documents`."""
    counts = {}
    for split in narrativeqa.SPLITS:
      for name, rows in (
        ("documents", self.documents),
        ("questions", self.qaps),
      ):
        counts[f"{split}_{name}"] = sum(1 for row in rows if row[1] == split)
    counts["unanswerable_questions"] = sum(
      1 for row in self.qaps if row[3] == UNANSWERABLE[0]
    )
    return counts


def tokenized(text: str) -> str:
  """Words and punctuation marks of `text`, joined by single spaces."""
  return " ".join(synthetic.TOKEN_PATTERN.findall(text))


def _reworded(answer: str, rng: random.Random) -> str:
  """The second reference: the answer reworded by its type."""
  mentions = synthetic.entity_mentions(answer)
  kind = mentions[0].kind if len(mentions) == 1 else None
  if kind in (synthetic.PLACE, synthetic.YEAR):
    return f"in {answer}"
  if kind in (synthetic.ORG, synthetic.DEVICE):
    return f"the {answer}"
  if kind == synthetic.PERSON and rng.random() < 0.5:
    return answer.split()[-1]
  return answer


def _document_id(seed: int, split: str, index: int) -> str:
  """A 40-hex-digit id, the shape of NarrativeQA's."""
  key = f"a2d-synthetic-narrativeqa/{seed}/{split}/{index}"
  return hashlib.sha1(key.encode("utf-8")).hexdigest()


def _by_passage(records: Sequence[Record]) -> list[list[Record]]:
  """Records grouped by passage, in order."""
  groups: dict[str, list[Record]] = {}
  for record in records:
    groups.setdefault(record.context, []).append(record)
  return list(groups.values())


def generate_layout(
  train_documents: int = 150,
  valid_documents: int = 25,
  test_documents: int = 25,
  passages_per_document: int = 1,
  unanswerable: float = 0.05,
  seed: int = 13,
) -> Layout:
  """Generates the rows of a NarrativeQA-layout directory.

  Args:
    train_documents: Documents in `train`.
    valid_documents: Documents in `valid`.
    test_documents: Documents in `test`.
    passages_per_document: Corpus passages per summary (3 to 5 questions
      each, about 110 words).
    unanswerable: Share of questions whose two answers share no word with
      any summary.
    seed: Seed of the corpus and of the answers' wording.

  Returns:
    The `Layout`; the same arguments give the same rows.

  Raises:
    ValueError: On negative counts, `passages_per_document` < 1 or
      `unanswerable` outside [0, 1].
  """
  sizes = {
    "train_documents": train_documents,
    "valid_documents": valid_documents,
    "test_documents": test_documents,
  }
  for name, value in sizes.items():
    if value < 0:
      raise ValueError(f"{name} must be >= 0, got {value}.")
  if passages_per_document < 1:
    raise ValueError(
      f"passages_per_document must be >= 1, got {passages_per_document}."
    )
  if not 0.0 <= unanswerable <= 1.0:
    raise ValueError(f"unanswerable must be in [0, 1], got {unanswerable}.")
  per = passages_per_document
  corpus = synthetic.generate_corpus(
    train_documents * per, (valid_documents + test_documents) * per, seed
  )
  held_out = _by_passage(corpus["dev"])
  passages = {
    "train": _by_passage(corpus["train"]),
    "valid": held_out[: valid_documents * per],
    "test": held_out[valid_documents * per :],
  }
  rng = random.Random(f"a2d-synthetic-narrativeqa/{seed}")
  layout = Layout([], [], [])
  for split, groups in passages.items():
    for index in range(len(groups) // per):
      document_id = _document_id(seed, split, index)
      chosen = groups[index * per : (index + 1) * per]
      summary = " ".join(group[0].context for group in chosen)
      summary_tokenized = tokenized(summary)
      kind = "gutenberg" if len(layout.documents) % 2 == 0 else "movie"
      layout.documents.append(
        (
          document_id,
          split,
          kind,
          "",
          "0",
          "",
          f"Synthetic story {split} {index}",
          str(len(summary_tokenized.split())),
          "",
          "",
        )
      )
      layout.summaries.append((document_id, split, summary, summary_tokenized))
      for record in (r for group in chosen for r in group):
        answer = record.answers[0].text
        if rng.random() < unanswerable:
          answers = UNANSWERABLE
        else:
          first = answer + ("." if rng.random() < 0.3 else "")
          answers = (first, _reworded(answer, rng))
        layout.qaps.append(
          (
            document_id,
            split,
            record.question,
            *answers,
            tokenized(record.question),
            *(tokenized(a) for a in answers),
          )
        )
  return layout


def _write(path: str, columns: Sequence[str], rows) -> None:
  os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
  with open(path, "w", encoding="utf-8", newline="") as f:
    writer = csv.writer(f)
    writer.writerow(columns)
    writer.writerows(rows)


def write_layout(directory: str, layout: Layout) -> dict[str, str]:
  """Writes the three files of `layout` under `directory` (created).

  Returns:
    "documents", "qaps", "summaries" -> the path written.
  """
  paths = {
    "documents": os.path.join(directory, narrativeqa.DOCUMENTS_FILE),
    "qaps": os.path.join(directory, narrativeqa.QAPS_FILE),
    "summaries": os.path.join(directory, narrativeqa.SUMMARIES_FILE),
  }
  _write(paths["documents"], DOCUMENT_COLUMNS, layout.documents)
  _write(paths["qaps"], QAPS_COLUMNS, layout.qaps)
  _write(paths["summaries"], SUMMARY_COLUMNS, layout.summaries)
  return paths


def _define_flags() -> dict[str, flags.FlagHolder]:
  """The command line's flags, defined only when run as a program.

  The library is imported beside the pipeline's CLI, which has its own
  `--output_dir`: flags defined at import would clash with it.
  """
  return {
    "output_dir": flags.DEFINE_string(
      "output_dir", None, "Directory to write the layout into.", required=True
    ),
    "train": flags.DEFINE_integer("train_documents", 150, "Train documents."),
    "valid": flags.DEFINE_integer("valid_documents", 25, "Valid documents."),
    "test": flags.DEFINE_integer("test_documents", 25, "Test documents."),
    "per": flags.DEFINE_integer(
      "passages_per_document", 1, "Corpus passages per summary."
    ),
    "unanswerable": flags.DEFINE_float(
      "unanswerable", 0.05, "Share of questions without an answer in the text."
    ),
    "seed": flags.DEFINE_integer("seed", 13, "Seed."),
  }


def main(defined: dict[str, flags.FlagHolder], argv: list[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  layout = generate_layout(
    defined["train"].value,
    defined["valid"].value,
    defined["test"].value,
    defined["per"].value,
    defined["unanswerable"].value,
    defined["seed"].value,
  )
  output_dir = defined["output_dir"].value
  write_layout(output_dir, layout)
  counts = ", ".join(f"{k}={v}" for k, v in layout.counts().items())
  print(f"wrote {output_dir}: {counts}")


if __name__ == "__main__":
  app.run(functools.partial(main, _define_flags()))
