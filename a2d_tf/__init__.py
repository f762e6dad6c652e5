"""a2d: Attention-Guided Answer Distillation on the Reinforced Mnemonic Reader."""

__version__ = "0.1.0"
