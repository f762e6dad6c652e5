"""a2d: Attention-Guided Answer Distillation on the RMR reader."""

__version__ = "0.1.0"
