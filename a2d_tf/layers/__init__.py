"""Keras layers of the Reinforced Mnemonic Reader."""

from a2d_tf.layers.alignment import (
  InteractiveAlignment,
  IterativeAligner,
  SelfAlignment,
)
from a2d_tf.layers.embedding import (
  CharEncoder,
  InputEmbedding,
  PartlyFrozenEmbedding,
)
from a2d_tf.layers.fusion import SemanticFusionUnit
from a2d_tf.layers.pointer import (
  BoundaryScorer,
  MemoryAnswerPointer,
  QuestionSummary,
  RMRAnswerPointer,
)
from a2d_tf.layers.recurrent import BiLSTM

__all__ = [
  "BiLSTM",
  "BoundaryScorer",
  "CharEncoder",
  "InputEmbedding",
  "InteractiveAlignment",
  "IterativeAligner",
  "MemoryAnswerPointer",
  "PartlyFrozenEmbedding",
  "QuestionSummary",
  "RMRAnswerPointer",
  "SelfAlignment",
  "SemanticFusionUnit",
]
