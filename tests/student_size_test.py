"""Tests of a student of another size than its teachers (`student_model`).

The config section and its defaults, the ATT hop mapping, and students of
other width, hops and word size trained on one knowledge batch made for
teachers of the `tiny` preset.
"""

import dataclasses

import keras
import numpy as np
import pytest
import tensorflow as tf

from a2d_tf import config as config_lib
from a2d_tf import losses
from a2d_tf.models import student as student_lib
from a2d_tf.models.reader import build_reader, count_params

TINY = config_lib.get_config("tiny")
TEACHER_HOPS = TINY.model.aligner_hops
WORD_VOCAB, CHAR_VOCAB, WORD_LEN = 30, 12, 4


def _config(*overrides):
  return config_lib.check(config_lib.get_config("tiny", list(overrides)))


def test_student_model_defaults_to_the_teachers_model():
  for name in config_lib.PRESETS:
    config = config_lib.get_config(name)
    assert config_lib.student_model_changes(config) == {}
    assert config_lib.resolve_student_model(config) == config.model


def test_student_model_has_every_model_field_but_the_decoder_limit():
  model = {f.name for f in dataclasses.fields(config_lib.ModelConfig)}
  student = {f.name for f in dataclasses.fields(config_lib.StudentModelConfig)}
  assert student == model - {"max_answer_len"}
  assert all(
    getattr(config_lib.StudentModelConfig(), name) is None for name in student
  )


def test_student_model_overrides_parse_as_the_teachers_fields():
  config = _config(
    "student_model.hidden=8",
    "student_model.aligner_hops=1",
    "student_model.question_em=true",
    "student_model.char_encoder=bilstm",
    "student_model.dropout=0.1",
  )
  assert config_lib.student_model_changes(config) == {
    "hidden": 8,
    "aligner_hops": 1,
    "question_em": True,
    "char_encoder": "bilstm",
    "dropout": 0.1,
  }
  resolved = config_lib.resolve_student_model(config)
  assert resolved.hidden == 8 and resolved.word_dim == TINY.model.word_dim
  # The teachers keep their architecture.
  assert config.model == TINY.model
  with pytest.raises(ValueError, match="invalid literal"):
    config_lib.get_config("tiny", ["student_model.hidden=big"])
  with pytest.raises(ValueError, match="has no field 'max_answer_len'"):
    config_lib.get_config("tiny", ["student_model.max_answer_len=9"])


def test_student_model_equal_to_the_teachers_is_no_change():
  config = _config(f"student_model.hidden={TINY.model.hidden}")
  assert config.student_model.hidden == TINY.model.hidden
  assert config_lib.student_model_changes(config) == {}


def test_student_model_round_trips_through_json():
  config = _config("student_model.hidden=8")
  again = config_lib.ExperimentConfig.from_dict(config.to_dict())
  assert again == config
  partial = config_lib.ExperimentConfig.from_dict(
    {"model": config.to_dict()["model"], "student_model": {"hidden": 8}}
  )
  assert config_lib.student_model_changes(partial) == {"hidden": 8}


def test_bad_student_model_and_hop_map_values_are_listed():
  config = config_lib.get_config(
    "tiny",
    [
      "student_model.hidden=0",
      "student_model.pointer=lstm",
      "student_model.dropout=1.5",
      "distill.attention_hops_map=first",
    ],
  )
  assert config_lib.validate(config) == [
    "student_model.hidden=0: must be >= 1",
    "student_model.pointer='lstm': must be one of 'memory', 'rmr'",
    "student_model.dropout=1.5: must be in [0.0, 1.0)",
    "distill.attention_hops_map='first': must be one of 'proportional', 'last'",
  ]


@pytest.mark.parametrize(
  "student, teacher, mapping, pairs",
  [
    (2, 2, "last", ((0, 0), (1, 1))),
    (3, 3, "proportional", ((0, 0), (1, 1), (2, 2))),
    (1, 2, "last", ((0, 1),)),
    (1, 2, "proportional", ((0, 1),)),
    (2, 3, "proportional", ((0, 1), (1, 2))),
    (3, 2, "proportional", ((0, 0), (1, 1), (2, 1))),
    (1, 3, "proportional", ((0, 2),)),
    (3, 1, "proportional", ((0, 0), (1, 0), (2, 0))),
    (4, 2, "last", ((3, 1),)),
    (2, 12, "proportional", ((0, 5), (1, 11))),
  ],
)
def test_attention_hop_pairs(student, teacher, mapping, pairs):
  assert losses.attention_hop_pairs(student, teacher, mapping) == pairs


def test_attention_hop_pairs_rejects_bad_arguments():
  with pytest.raises(ValueError, match="mapping='first'"):
    losses.attention_hop_pairs(1, 2, "first")
  with pytest.raises(ValueError, match="student_hops=0"):
    losses.attention_hop_pairs(0, 2, "last")


def _attention(rng, batch, hops, lp, lq):
  scores = np.exp(rng.normal(size=(batch, hops, lp, lq)))
  return (scores / scores.sum(-1, keepdims=True)).astype(np.float32)


def _loss_inputs(student_hops, teacher_hops, seed=0):
  rng = np.random.default_rng(seed)
  size, lp, lq = 3, 6, 4
  passage_len = np.array([6, 4, 5], np.int32)
  question_len = np.array([4, 2, 3], np.int32)
  # Position values first: the same for any hop counts.
  outputs = {
    "start_logits": tf.constant(rng.normal(size=(size, lp)), tf.float32),
    "end_logits": tf.constant(rng.normal(size=(size, lp)), tf.float32),
  }
  batch = {
    "start": np.array([1, 0, 2], np.int32),
    "end": np.array([2, 3, 4], np.int32),
    "passage_len": passage_len,
    "question_len": question_len,
    "teacher_start_probs": _attention(rng, 1, 1, size, lp)[0, 0],
    "teacher_end_probs": _attention(rng, 1, 1, size, lp)[0, 0],
  }
  outputs["attention"] = tf.constant(
    _attention(rng, size, student_hops, lp, lq)
  )
  batch = {
    **batch,
    "teacher_attention": _attention(rng, size, teacher_hops, lp, lq),
    "confusing_start": np.array([3, -1, 0], np.int32),
    "confusing_end": np.array([4, -1, 1], np.int32),
  }
  return outputs, batch


def _np_att(student, teacher, passage_len, question_len):
  """`1/2 sum ||D - E||^2` over valid positions, mean over hops (NumPy)."""
  lp, lq = student.shape[2], student.shape[3]
  mask = (np.arange(lp)[None, :, None] < passage_len[:, None, None]) & (
    np.arange(lq)[None, None, :] < question_len[:, None, None]
  )
  diff = np.where(mask[:, None], student - teacher, 0.0)
  return (0.5 * np.square(diff).sum(axis=(2, 3))).mean(axis=1)


def test_equal_hops_give_todays_loss_bit_for_bit():
  outputs, batch = _loss_inputs(TEACHER_HOPS, TEACHER_HOPS)
  for mapping in config_lib.ATTENTION_HOPS_MAPS:
    config = config_lib.DistillConfig(attention_hops_map=mapping)
    today = losses.a2d_loss(outputs, batch, config)
    matched = losses.a2d_loss(outputs, batch, config, teacher_hops=TEACHER_HOPS)
    for name in ("ce", "kd", "ans", "att", "total"):
      assert np.array_equal(today[name].numpy(), matched[name].numpy()), name


@pytest.mark.parametrize(
  "student_hops, teacher_hops, mapping",
  [
    (1, 2, "last"),
    (1, 2, "proportional"),
    (3, 2, "proportional"),
    (3, 2, "last"),
  ],
)
def test_other_hops_match_the_mapped_teacher_hops(
  student_hops, teacher_hops, mapping
):
  outputs, batch = _loss_inputs(student_hops, teacher_hops)
  config = config_lib.DistillConfig(attention_hops_map=mapping)
  got = losses.a2d_loss(outputs, batch, config, teacher_hops=teacher_hops)
  pairs = losses.attention_hop_pairs(student_hops, teacher_hops, mapping)
  student = outputs["attention"].numpy()[:, [s for s, _ in pairs]]
  teacher = batch["teacher_attention"][:, [t for _, t in pairs]]
  want = _np_att(student, teacher, batch["passage_len"], batch["question_len"])
  np.testing.assert_allclose(got["att"].numpy(), want, rtol=1e-5)
  assert np.all(want > 0)
  # The answer terms read passage positions only: the same for any hops.
  same_hops = losses.a2d_loss(*_loss_inputs(teacher_hops, teacher_hops), config)
  for name in ("ce", "kd", "ans"):
    np.testing.assert_array_equal(got[name].numpy(), same_hops[name].numpy())


def test_att_gradient_reaches_the_matched_student_hops_only():
  outputs, batch = _loss_inputs(3, 2)
  attention = tf.Variable(outputs["attention"])
  config = config_lib.DistillConfig(attention_hops_map="last")
  with tf.GradientTape() as tape:
    terms = losses.a2d_loss(
      {**outputs, "attention": attention}, batch, config, teacher_hops=2
    )
    total = tf.reduce_sum(terms["att"])
  grad = tape.gradient(total, attention).numpy()
  # "last": student hop 2 against teacher hop 1, hops 0 and 1 untouched.
  assert np.all(grad[:, :2] == 0.0)
  assert np.any(grad[:, 2] != 0.0)
  # dATT/dD = D - E on valid positions (one pair: the mean is that pair).
  lp, lq = grad.shape[2], grad.shape[3]
  mask = (
    np.arange(lp)[None, :, None] < batch["passage_len"][:, None, None]
  ) & (np.arange(lq)[None, None, :] < batch["question_len"][:, None, None])
  want = np.where(
    mask,
    outputs["attention"].numpy()[:, 2] - batch["teacher_attention"][:, 1],
    0.0,
  )
  np.testing.assert_allclose(grad[:, 2], want, rtol=1e-5, atol=1e-7)


def test_knowledge_with_other_hops_than_the_teachers_is_refused():
  outputs, batch = _loss_inputs(1, 3)
  with pytest.raises(tf.errors.InvalidArgumentError, match="another number"):
    losses.a2d_loss(outputs, batch, config_lib.DistillConfig(), teacher_hops=2)


def _knowledge_batch(size=4, seed=0, teacher_hops=TEACHER_HOPS):
  """A batch of the knowledge dataset's keys, with padding on both sides."""
  rng = np.random.default_rng(seed)
  lp, lq = 7, 4
  passage_len = np.array([7, 5, 6, 3][:size], np.int32)
  question_len = np.array([4, 2, 3, 4][:size], np.int32)
  p_mask = np.arange(lp)[None] < passage_len[:, None]
  q_mask = np.arange(lq)[None] < question_len[:, None]

  def ids(mask, vocab):
    return np.where(mask, rng.integers(2, vocab, mask.shape), 0).astype(
      np.int32
    )

  def dist(mask, shape):
    x = np.where(mask, np.exp(rng.normal(size=shape)), 0.0)
    total = x.sum(-1, keepdims=True)
    return np.divide(x, total, out=np.zeros_like(x), where=total > 0).astype(
      np.float32
    )

  att_mask = np.broadcast_to(
    p_mask[:, None, :, None] & q_mask[:, None, None, :],
    (size, teacher_hops, lp, lq),
  )
  return {
    "question_ids": ids(q_mask, WORD_VOCAB),
    "passage_ids": ids(p_mask, WORD_VOCAB),
    "question_chars": ids(np.repeat(q_mask[..., None], WORD_LEN, -1), 12),
    "passage_chars": ids(np.repeat(p_mask[..., None], WORD_LEN, -1), 12),
    "question_em": np.zeros((size, lq, 2), np.float32),
    "passage_em": np.where(
      p_mask[..., None], rng.integers(0, 2, (size, lp, 2)), 0
    ).astype(np.float32),
    "question_len": question_len,
    "passage_len": passage_len,
    "start": np.array([1, 0, 2, 1], np.int32)[:size],
    "end": np.array([2, 1, 4, 2], np.int32)[:size],
    "teacher_start_probs": dist(p_mask, (size, lp)),
    "teacher_end_probs": dist(p_mask, (size, lp)),
    "teacher_attention": dist(att_mask, (size, teacher_hops, lp, lq)),
    "confusing_start": np.array([3, -1, 0, 2], np.int32)[:size],
    "confusing_end": np.array([4, -1, 1, 2], np.int32)[:size],
  }


def _train_on(config, batch, steps=3):
  keras.utils.set_random_seed(0)
  student = student_lib.build_student(config, WORD_VOCAB, CHAR_VOCAB)
  student.compile(optimizer=keras.optimizers.Adam(0.01), run_eagerly=True)
  before = [v.numpy().copy() for v in student.trainable_variables]
  logs = [student.train_on_batch(batch, return_dict=True) for _ in range(steps)]
  moved = any(
    not np.array_equal(a, v.numpy())
    for a, v in zip(before, student.trainable_variables, strict=True)
  )
  return student, logs, moved


@pytest.mark.parametrize(
  "overrides",
  [
    ("student_model.hidden=8",),
    ("student_model.aligner_hops=1",),
    ("student_model.aligner_hops=3", "distill.attention_hops_map=last"),
    ("student_model.word_dim=12", "student_model.char_hidden=4"),
    ("student_model.pointer=rmr", "student_model.question_em=true"),
  ],
)
def test_smaller_or_other_student_trains_on_the_same_knowledge(overrides):
  config = _config(*overrides)
  batch = _knowledge_batch()
  student, logs, moved = _train_on(config, batch)
  assert moved
  for step in logs:
    assert all(np.isfinite(v) for v in step.values()), step
    for term in ("ce", "kd", "ans", "att"):
      assert step[term] > 0.0, (term, step)
  resolved = config_lib.resolve_student_model(config)
  outputs = student(batch)
  assert outputs["attention"].shape[1] == resolved.aligner_hops
  assert outputs["start_logits"].shape == batch["teacher_start_probs"].shape
  assert student.teacher_hops == TEACHER_HOPS


def test_half_width_student_has_fewer_parameters_and_saves(tmp_path):
  config = _config(f"student_model.hidden={TINY.model.hidden // 2}")
  student, _, _ = _train_on(config, _knowledge_batch(), steps=1)
  teacher = build_reader(TINY.model, WORD_VOCAB, CHAR_VOCAB)
  small = count_params(student.reader)["trainable"]
  assert small < 0.6 * count_params(teacher)["trainable"]
  assert student.reader.get_config()["hidden"] == TINY.model.hidden // 2
  path = str(tmp_path / "student.keras")
  student.save(path)
  restored = keras.saving.load_model(path)
  assert restored.teacher_hops == TEACHER_HOPS
  assert restored.reader.get_config()["hidden"] == TINY.model.hidden // 2


def test_other_word_dim_learns_its_own_vectors_and_refuses_glove():
  config = _config("student_model.word_dim=12")
  keras.utils.set_random_seed(0)
  student = student_lib.build_student(config, WORD_VOCAB, CHAR_VOCAB)
  embeddings = [
    v for v in student.reader.trainable_variables if "embedding" in v.path
  ]
  assert [tuple(v.shape) for v in embeddings][0] == (WORD_VOCAB, 12)
  glove = np.zeros((WORD_VOCAB, TINY.model.word_dim), np.float32)
  with pytest.raises(ValueError, match="student_model.word_dim=12"):
    student_lib.build_student(config, WORD_VOCAB, CHAR_VOCAB, glove)
