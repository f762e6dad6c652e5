"""NarrativeQA BLEU-1, BLEU-4 and ROUGE-L with the COCO caption code.

Earlier NarrativeQA results were scored with the MS COCO caption evaluation
code (for example the released evaluation script of Bauer et al. 2018); this
module calls the same code, `pycocoevalcap` (`bleu.bleu.Bleu` and
`rouge.rouge.Rouge`, pure Python, none of its Java parts), so the numbers
are comparable:

- Preprocessing: lowercase, then whitespace tokens joined by single spaces.
  Texts are expected tokenized already, as the `*_tokenized` columns of
  NarrativeQA and spans of its tokenized summaries are; nothing else is
  stripped (punctuation tokens count).
- BLEU-n: corpus-level BLEU of `Bleu(4).compute_score`: clipped n-gram
  counts summed over all questions against both references, brevity
  penalty `exp(1 - r / c)` when the total hypothesis length `c` is below
  the total of each question's closest reference length `r` (ties go to
  the shorter reference). COCO adds 1e-15 / 1e-9 to every precision, so a
  hypothesis shorter than n words still gets a small nonzero BLEU-n (for
  example about 0.0316 for a perfect 3-word answer's BLEU-4).
- ROUGE-L: mean over questions of COCO's sentence ROUGE-L, where
  `P = max_r LCS / len(hyp)` and `R = max_r LCS / len(r)` are maximised
  separately over the references and combined as
  `(1 + beta^2) P R / (R + beta^2 P)` with beta = 1.2.

Scores are in percent (0 to 100), as NarrativeQA tables report them. A
question without a prediction is scored with an empty answer (0 ROUGE-L, no
n-grams, its closest reference length still counted for the brevity
penalty) and listed in `missing_ids`; predictions for unknown ids are
ignored.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

from pycocoevalcap.bleu.bleu import Bleu
from pycocoevalcap.rouge.rouge import Rouge

from a2d_tf.data.records import DataError


def normalize(text: str) -> str:
  """Lowercases and joins the whitespace tokens of `text` by single spaces."""
  return " ".join(text.lower().split())


@dataclasses.dataclass(frozen=True)
class NarrativeQAEvaluation:
  """Scores of a set of NarrativeQA predictions.

  Attributes:
    bleu_1: Corpus BLEU-1 in percent.
    bleu_4: Corpus BLEU-4 in percent.
    rouge_l: Mean ROUGE-L in percent.
    rouge_l_by_id: Question id -> ROUGE-L in [0, 1].
    missing_ids: Ids without a prediction (scored as empty answers), in
      reference order.
  """

  bleu_1: float
  bleu_4: float
  rouge_l: float
  rouge_l_by_id: dict[str, float]
  missing_ids: tuple[str, ...]

  def summary(self) -> dict[str, float]:
    """`{"bleu_1", "bleu_4", "rouge_l"}` in percent."""
    return {
      "bleu_1": self.bleu_1,
      "bleu_4": self.bleu_4,
      "rouge_l": self.rouge_l,
    }


def evaluate_with_details(
  references: Mapping[str, Sequence[str]], predictions: Mapping[str, str]
) -> NarrativeQAEvaluation:
  """Scores predictions against the references with pycocoevalcap.

  Args:
    references: Question id -> reference answers (NarrativeQA has two).
    predictions: Question id -> predicted answer text.

  Returns:
    A `NarrativeQAEvaluation`.

  Raises:
    DataError: No questions, or a question without references or with a
      reference that is not a string.
    TypeError: A prediction is not a string.
  """
  if not references:
    raise DataError("the dataset has no questions", field="references")
  gts: dict[str, list[str]] = {}
  res: dict[str, list[str]] = {}
  missing = []
  for qid, refs in references.items():
    if isinstance(refs, str) or not refs:
      raise DataError(
        "expected a non-empty list of reference answers",
        record_id=qid,
        field="references",
      )
    if not all(isinstance(r, str) for r in refs):
      raise DataError(
        "every reference answer must be a string",
        record_id=qid,
        field="references",
      )
    prediction = predictions.get(qid)
    if prediction is None:
      missing.append(qid)
      prediction = ""
    elif not isinstance(prediction, str):
      raise TypeError(
        f"the prediction for {qid!r} must be a string, got "
        f"{type(prediction).__name__}"
      )
    gts[qid] = [normalize(r) for r in refs]
    res[qid] = [normalize(prediction)]
  bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
  rouge_mean, rouge_scores = Rouge().compute_score(gts, res)
  return NarrativeQAEvaluation(
    bleu_1=100.0 * float(bleu[0]),
    bleu_4=100.0 * float(bleu[3]),
    rouge_l=100.0 * float(rouge_mean),
    rouge_l_by_id={
      qid: float(score) for qid, score in zip(gts, rouge_scores, strict=True)
    },
    missing_ids=tuple(missing),
  )


def evaluate_narrativeqa(
  references: Mapping[str, Sequence[str]], predictions: Mapping[str, str]
) -> dict[str, float]:
  """`{"bleu_1", "bleu_4", "rouge_l"}` in percent; see the module docstring.

  Args:
    references: Question id -> reference answers.
    predictions: Question id -> predicted answer text.

  Returns:
    The three scores in percent.
  """
  return evaluate_with_details(references, predictions).summary()
