"""Feature-rich input embedding: words, characters and exact-match flags."""

from __future__ import annotations

import keras
import tensorflow as tf

from a2d_tf.layers.recurrent import (
  BiLSTM,
  check_rate,
  check_units,
  input_dropout,
)

CHAR_ENCODERS = ("bilstm", "cnn")


@keras.saving.register_keras_serializable(package="a2d")
class CharEncoder(keras.layers.Layer):
  """One vector per token from its characters (BiLSTM or CNN + max-pool).

  A character is valid when its id is not 0 (`[PAD]`; the feature spec pads
  each token's characters with 0 and stores no per-token length) and its
  token is valid under the explicit token mask. Padding characters never
  reach the summary: the CNN sees zeros there (as "same" zero padding would)
  and max-pools only valid positions; the BiLSTM gets the character mask and
  returns its final states. Tokens without any valid character get zeros.

  Args:
    char_vocab_size: Number of character ids (id 0 is padding).
    char_dim: Character embedding size.
    char_hidden: BiLSTM units per direction, or CNN filters.
    kind: "bilstm" or "cnn".
    dropout: Dropout rate on character embeddings.
    variational: Same dropout mask for every character of a token.
    kernel_size: CNN window (characters).
    use_cudnn: See `BiLSTM`.
    **kwargs: Base layer arguments.

  Call arguments:
    char_ids: int `[batch, seq_len, max_word_len]`.
    token_mask: bool `[batch, seq_len]`, true at valid tokens.
    training: Enables dropout.

  Returns:
    `[batch, seq_len, output_dim]`, `output_dim` = `2 * char_hidden`
    (BiLSTM) or `char_hidden` (CNN).
  """

  def __init__(
    self,
    char_vocab_size: int,
    char_dim: int,
    char_hidden: int,
    kind: str = "cnn",
    dropout: float = 0.0,
    variational: bool = True,
    kernel_size: int = 5,
    use_cudnn: str | bool = "auto",
    **kwargs,
  ):
    super().__init__(**kwargs)
    check_units("char_vocab_size", char_vocab_size)
    check_units("char_dim", char_dim)
    check_units("char_hidden", char_hidden)
    check_units("kernel_size", kernel_size)
    check_rate("dropout", dropout)
    if kind not in CHAR_ENCODERS:
      raise ValueError(
        f"kind must be one of {CHAR_ENCODERS}, received: kind={kind!r}"
      )
    self.char_vocab_size = char_vocab_size
    self.char_dim = char_dim
    self.char_hidden = char_hidden
    self.kind = kind
    self.dropout = dropout
    self.variational = variational
    self.kernel_size = kernel_size
    self.use_cudnn = use_cudnn
    policy = self.dtype_policy
    self.embedding = keras.layers.Embedding(
      char_vocab_size, char_dim, dtype=policy
    )
    if kind == "cnn":
      self.embedding_dropout = input_dropout(dropout, variational, policy)
      self.conv = keras.layers.Conv1D(
        char_hidden,
        kernel_size,
        padding="same",
        activation="relu",
        dtype=policy,
      )
      self.output_dim = char_hidden
    else:
      self.rnn = BiLSTM(
        char_hidden,
        dropout=dropout,
        variational=variational,
        return_sequences=False,
        use_cudnn=use_cudnn,
        dtype=policy,
      )
      self.output_dim = 2 * char_hidden

  def build(self, char_ids_shape):
    self.embedding.build(None)
    chars_shape = (None, char_ids_shape[-1], self.char_dim)
    if self.kind == "cnn":
      self.conv.build(chars_shape)
    else:
      self.rnn.build(chars_shape)
    self.built = True

  def call(self, char_ids, token_mask, training=None):
    char_ids = tf.cast(char_ids, tf.int32)
    shape = tf.shape(char_ids)
    flat_ids = tf.reshape(char_ids, [-1, shape[2]])
    valid_tokens = tf.reshape(tf.cast(token_mask, tf.bool), [-1, 1])
    char_mask = tf.logical_and(tf.not_equal(flat_ids, 0), valid_tokens)
    has_chars = tf.reduce_any(char_mask, axis=1, keepdims=True)
    chars = self.embedding(flat_ids)
    if self.kind == "cnn":
      chars = self.embedding_dropout(chars, training=training)
      chars = chars * tf.cast(char_mask, chars.dtype)[..., None]
      features = self.conv(chars)
      lowest = tf.constant(features.dtype.min, features.dtype)
      features = tf.where(char_mask[..., None], features, lowest)
      summary = tf.reduce_max(features, axis=1)
    else:
      summary = self.rnn(chars, char_mask, training=training)
    summary = tf.where(has_chars, summary, tf.zeros_like(summary))
    return tf.reshape(summary, [shape[0], shape[1], self.output_dim])

  def compute_output_shape(self, char_ids_shape):
    return (*tuple(char_ids_shape)[:2], self.output_dim)

  def get_config(self):
    return {
      **super().get_config(),
      "char_vocab_size": self.char_vocab_size,
      "char_dim": self.char_dim,
      "char_hidden": self.char_hidden,
      "kind": self.kind,
      "dropout": self.dropout,
      "variational": self.variational,
      "kernel_size": self.kernel_size,
      "use_cudnn": self.use_cudnn,
    }


@keras.saving.register_keras_serializable(package="a2d")
class PartlyFrozenEmbedding(keras.layers.Layer):
  """A word embedding whose first rows train and whose other rows are frozen.

  Ids `[0, num_trainable)` look up a trainable `[num_trainable, dim]`
  block (`trainable_rows`); ids `[num_trainable, vocab_size)` look up a
  frozen `[vocab_size - num_trainable, dim]` block (`frozen_rows`), a
  non-trainable weight no optimizer sees, so pretrained vectors stay
  exactly as loaded. `a2d_tf.data.vocab` lays a vocabulary out this way
  (specials, tuned question words and words without a pretrained vector
  first). Both blocks are weights, so `.keras` files keep them.

  Args:
    vocab_size: Number of ids.
    dim: Embedding size.
    num_trainable: Rows that train, `0 < num_trainable < vocab_size`.
    **kwargs: Base layer arguments.

  Call arguments:
    ids: int `[...]`.

  Returns:
    `[..., dim]` in the compute dtype.
  """

  def __init__(self, vocab_size: int, dim: int, num_trainable: int, **kwargs):
    super().__init__(**kwargs)
    check_units("vocab_size", vocab_size)
    check_units("dim", dim)
    if not 0 < num_trainable < vocab_size:
      raise ValueError(
        "num_trainable must be in (0, vocab_size), received: "
        f"num_trainable={num_trainable}, vocab_size={vocab_size}"
      )
    self.vocab_size = vocab_size
    self.dim = dim
    self.num_trainable = num_trainable

  def build(self, input_shape=None):
    self.trainable_rows = self.add_weight(
      shape=(self.num_trainable, self.dim),
      initializer="uniform",
      name="trainable_rows",
    )
    self.frozen_rows = self.add_weight(
      shape=(self.vocab_size - self.num_trainable, self.dim),
      initializer="uniform",
      trainable=False,
      name="frozen_rows",
    )
    self.built = True

  def call(self, ids):
    ids = tf.cast(ids, tf.int32)
    tuned = ids < self.num_trainable
    from_trainable = tf.gather(
      self.trainable_rows, tf.minimum(ids, self.num_trainable - 1)
    )
    from_frozen = tf.gather(
      self.frozen_rows, tf.maximum(ids - self.num_trainable, 0)
    )
    vectors = tf.where(tuned[..., None], from_trainable, from_frozen)
    return tf.cast(vectors, self.compute_dtype)

  def assign_matrix(self, matrix) -> None:
    """Sets all `[vocab_size, dim]` rows (e.g. pretrained vectors)."""
    matrix = tf.convert_to_tensor(matrix, self.trainable_rows.dtype)
    self.trainable_rows.assign(matrix[: self.num_trainable])
    self.frozen_rows.assign(matrix[self.num_trainable :])

  def compute_output_shape(self, input_shape):
    return (*tuple(input_shape), self.dim)

  def get_config(self):
    return {
      **super().get_config(),
      "vocab_size": self.vocab_size,
      "dim": self.dim,
      "num_trainable": self.num_trainable,
    }


@keras.saving.register_keras_serializable(package="a2d")
class InputEmbedding(keras.layers.Layer):
  """`[word embedding; character encoding; token features]` per token.

  Args:
    word_vocab_size: Number of word ids (0 = `[PAD]`, 1 = `[UNK]`).
    word_dim: Word embedding size.
    char_vocab_size: Number of character ids.
    char_dim: Character embedding size.
    char_hidden: Character encoder units (see `CharEncoder`).
    char_encoder: "bilstm" or "cnn".
    num_features: Width of the per-token feature vector (exact match).
    trainable_words: Train the word embedding; False freezes it (used with a
      pretrained GloVe matrix assigned after building).
    num_trainable_words: With `trainable_words=False`, the first this many
      word ids still train (`PartlyFrozenEmbedding`: specials, tuned
      question words, words without a pretrained vector); 0 freezes every
      row. Must be 0 when `trainable_words` is True.
    dropout: Dropout rate inside the character encoder.
    variational: Variational dropout in the character encoder.
    use_cudnn: See `BiLSTM`.
    **kwargs: Base layer arguments.

  Call arguments:
    word_ids: int `[batch, seq_len]`.
    char_ids: int `[batch, seq_len, max_word_len]`.
    features: float `[batch, seq_len, num_features]`.
    token_mask: bool `[batch, seq_len]`.
    training: Enables dropout.

  Returns:
    `[batch, seq_len, output_dim]`, zero at padded tokens.
  """

  def __init__(
    self,
    word_vocab_size: int,
    word_dim: int,
    char_vocab_size: int,
    char_dim: int,
    char_hidden: int,
    char_encoder: str = "cnn",
    num_features: int = 2,
    trainable_words: bool = True,
    dropout: float = 0.0,
    variational: bool = True,
    use_cudnn: str | bool = "auto",
    num_trainable_words: int = 0,
    **kwargs,
  ):
    super().__init__(**kwargs)
    check_units("word_vocab_size", word_vocab_size)
    check_units("word_dim", word_dim)
    if num_features < 0:
      raise ValueError(
        f"num_features must be >= 0, received: num_features={num_features}"
      )
    if num_trainable_words and (
      trainable_words or not 0 < num_trainable_words < word_vocab_size
    ):
      raise ValueError(
        "num_trainable_words needs trainable_words=False and a value in "
        f"(0, word_vocab_size), received: num_trainable_words="
        f"{num_trainable_words}, trainable_words={trainable_words}, "
        f"word_vocab_size={word_vocab_size}"
      )
    self.word_vocab_size = word_vocab_size
    self.word_dim = word_dim
    self.char_vocab_size = char_vocab_size
    self.char_dim = char_dim
    self.char_hidden = char_hidden
    self.char_encoder = char_encoder
    self.num_features = num_features
    self.trainable_words = trainable_words
    self.dropout = dropout
    self.variational = variational
    self.use_cudnn = use_cudnn
    self.num_trainable_words = num_trainable_words
    if num_trainable_words:
      self.word_embedding = PartlyFrozenEmbedding(
        word_vocab_size,
        word_dim,
        num_trainable_words,
        dtype=self.dtype_policy,
        name="word_embedding",
      )
    else:
      self.word_embedding = keras.layers.Embedding(
        word_vocab_size,
        word_dim,
        trainable=trainable_words,
        dtype=self.dtype_policy,
        name="word_embedding",
      )
    self.char_encoding = CharEncoder(
      char_vocab_size,
      char_dim,
      char_hidden,
      kind=char_encoder,
      dropout=dropout,
      variational=variational,
      use_cudnn=use_cudnn,
      dtype=self.dtype_policy,
      name="char_encoder",
    )
    self.output_dim = word_dim + self.char_encoding.output_dim + num_features

  def build(self, word_ids_shape, char_ids_shape):
    self.word_embedding.build(None)
    self.char_encoding.build(char_ids_shape)
    self.built = True

  def assign_word_vectors(self, matrix) -> None:
    """Sets the `[word_vocab_size, word_dim]` word rows (e.g. GloVe)."""
    if self.num_trainable_words:
      self.word_embedding.assign_matrix(matrix)
    else:
      self.word_embedding.embeddings.assign(matrix)

  def call(self, word_ids, char_ids, features, token_mask, training=None):
    words = self.word_embedding(tf.cast(word_ids, tf.int32))
    chars = self.char_encoding(char_ids, token_mask, training=training)
    parts = [words, tf.cast(chars, words.dtype)]
    if self.num_features:
      parts.append(tf.cast(features, words.dtype))
    outputs = tf.concat(parts, axis=-1)
    return outputs * tf.cast(token_mask, outputs.dtype)[..., None]

  def compute_output_shape(self, word_ids_shape, char_ids_shape):
    return (*tuple(word_ids_shape), self.output_dim)

  def get_config(self):
    return {
      **super().get_config(),
      "word_vocab_size": self.word_vocab_size,
      "word_dim": self.word_dim,
      "char_vocab_size": self.char_vocab_size,
      "char_dim": self.char_dim,
      "char_hidden": self.char_hidden,
      "char_encoder": self.char_encoder,
      "num_features": self.num_features,
      "trainable_words": self.trainable_words,
      "dropout": self.dropout,
      "variational": self.variational,
      "use_cudnn": self.use_cudnn,
      "num_trainable_words": self.num_trainable_words,
    }
