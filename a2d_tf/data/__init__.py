"""Readers, tokenization, features and tf.data input for a2d."""
