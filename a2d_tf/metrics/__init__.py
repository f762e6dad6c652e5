"""Evaluation metrics: SQuAD EM/F1, adversarial worst case, NarrativeQA."""
