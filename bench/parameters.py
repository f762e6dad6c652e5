"""Trainable parameters per block of the reader, per preset and pointer.

  python -m bench.parameters
  python -m bench.parameters --paper_word_vocab=90000 \\
      --paper_trainable_words=5000

Builds each reader with `build_reader` and counts its weights with
`count_params` (nothing is trained): for `tiny` and `small` with the
vocabulary of the embedded corpus at the preset's sizes (no pretrained
vectors: every word row trains), for `paper` with a SQuAD-scale vocabulary
given by the flags and frozen GloVe rows except the first
`--paper_trainable_words` ids (the specials, tuned question words and words
without a vector; see `a2d_tf.data.vocab`). Prints a Markdown table (one row
per preset and pointer: word embedding, character encoder, encoder,
aligner, pointer, trainable total, frozen word rows) and, as the last line,
one JSON object with the same counts.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys

from absl import app, flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

_PAPER_WORDS = flags.DEFINE_integer(
  "paper_word_vocab", 90000, "Word ids of the paper preset.", lower_bound=3
)
_PAPER_CHARS = flags.DEFINE_integer(
  "paper_char_vocab", 1200, "Character ids of the paper preset.", lower_bound=3
)
_PAPER_TRAINABLE = flags.DEFINE_integer(
  "paper_trainable_words",
  2,
  "Word rows of the paper preset that train beside frozen GloVe (2: the "
  "specials only).",
  lower_bound=2,
)
_POINTERS = flags.DEFINE_list("pointers", ["memory", "rmr"], "Pointers.")

BLOCKS = ("word_embedding", "char_encoder", "encoder", "aligner", "pointer")


def _vocab_sizes(config) -> tuple[int, int]:
  from a2d_tf.data import synthetic
  from a2d_tf.data import vocab as vocab_lib

  data = config.data
  corpus = synthetic.generate_corpus(
    data.synthetic_train_size, 0, data.synthetic_seed
  )
  vocab = vocab_lib.build_vocabulary(
    corpus["train"],
    data.min_word_count,
    data.min_char_count,
    data.lowercase_words,
  )
  return vocab.num_words, vocab.num_chars


def main(argv: list[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  import numpy as np

  from a2d_tf import config as config_lib
  from a2d_tf.data.vocab import WordVectors
  from a2d_tf.models.reader import build_reader, count_params

  rows = []
  for preset in ("tiny", "small", "paper"):
    config = config_lib.get_config(preset)
    vectors = None
    if preset == "paper":
      words, chars = _PAPER_WORDS.value, _PAPER_CHARS.value
      matrix = np.zeros((words, config.model.word_dim), np.float32)
      vectors = WordVectors(matrix, _PAPER_TRAINABLE.value)
    else:
      words, chars = _vocab_sizes(config)
    for pointer in _POINTERS.value:
      model_config = dataclasses.replace(config.model, pointer=pointer)
      reader = build_reader(model_config, words, chars, vectors)
      counts = count_params(reader)
      rows.append(
        {
          "preset": preset,
          "pointer": pointer,
          "word_vocab": words,
          "char_vocab": chars,
          "blocks": {block: counts[f"block/{block}"] for block in BLOCKS},
          "trainable": counts["trainable"],
          "frozen_words": counts["block/frozen_words"],
        }
      )
  header = ["preset", "pointer", "words / chars", *BLOCKS, "trainable"]
  print("| " + " | ".join([*header, "frozen word rows"]) + " |")
  print("|" + "---|" * (len(header) + 1))
  for row in rows:
    cells = [
      f"`{row['preset']}`",
      row["pointer"],
      f"{row['word_vocab']:,} / {row['char_vocab']:,}",
      *(f"{row['blocks'][block]:,}" for block in BLOCKS),
      f"**{row['trainable']:,}**",
      f"{row['frozen_words']:,}",
    ]
    print("| " + " | ".join(cells) + " |")
  print(json.dumps(rows))


if __name__ == "__main__":
  app.run(main)
