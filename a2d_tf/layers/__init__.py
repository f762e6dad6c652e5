"""Keras layers of the Reinforced Mnemonic Reader."""
