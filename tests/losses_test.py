"""Tests of the A2D loss terms against NumPy references."""

import numpy as np
import pytest
import tensorflow as tf

from a2d_tf import losses
from a2d_tf.config import DistillConfig

# Batch of three: full, padded, and fully padded (a filler row).
PASSAGE_LEN = np.array([5, 3, 0], np.int32)
QUESTION_LEN = np.array([4, 2, 0], np.int32)
BATCH, LP, LQ, HOPS = 3, 5, 4, 2
START = np.array([1, 2, 0], np.int32)
END = np.array([3, 2, 0], np.int32)
TAU = 2.0


def _masks():
  passage = np.arange(LP)[None, :] < PASSAGE_LEN[:, None]
  question = np.arange(LQ)[None, :] < QUESTION_LEN[:, None]
  return passage, question


def _logits(seed):
  rng = np.random.default_rng(seed)
  logits = rng.normal(size=(BATCH, LP)).astype(np.float32)
  passage, _ = _masks()
  # Large values on padding: any leak into a softmax would dominate it.
  return np.where(passage, logits, 50.0).astype(np.float32)


def _distribution(seed, tau):
  passage, _ = _masks()
  logits = np.random.default_rng(seed).normal(size=(BATCH, LP))
  return _np_softmax(logits, passage, tau).astype(np.float32)


def _attention(seed):
  passage, question = _masks()
  rng = np.random.default_rng(seed)
  scores = rng.normal(size=(BATCH, HOPS, LP, LQ))
  mask = passage[:, None, :, None] & question[:, None, None, :]
  probs = np.where(mask, np.exp(scores), 0.0)
  denom = probs.sum(-1, keepdims=True)
  probs = np.divide(probs, denom, out=np.zeros_like(probs), where=denom > 0)
  # Garbage on padding, which the loss must ignore.
  return np.where(mask, probs, 7.0).astype(np.float32)


def _np_softmax(logits, mask, tau=1.0):
  out = np.zeros(logits.shape, np.float64)
  for b in range(logits.shape[0]):
    valid = mask[b]
    if valid.any():
      x = logits[b, valid].astype(np.float64) / tau
      e = np.exp(x - x.max())
      out[b, valid] = e / e.sum()
  return out


def _np_ce(start_logits, end_logits, start, end, mask):
  p1, p2 = _np_softmax(start_logits, mask), _np_softmax(end_logits, mask)
  out = np.zeros(len(start))
  grad1, grad2 = p1.copy(), p2.copy()
  for b in range(len(start)):
    if mask[b].any():
      out[b] = -np.log(p1[b, start[b]]) - np.log(p2[b, end[b]])
      grad1[b, start[b]] -= 1.0
      grad2[b, end[b]] -= 1.0
  return out, grad1, grad2


def _np_kd(start_logits, end_logits, q1, q2, mask, tau):
  out = np.zeros(start_logits.shape[0])
  grads = []
  for logits, q in ((start_logits, q1), (end_logits, q2)):
    p = _np_softmax(logits, mask, tau)
    q = np.where(mask, q, 0.0)
    for b in range(len(out)):
      valid = mask[b]
      out[b] -= np.sum(q[b, valid] * np.log(p[b, valid]))
    # d/dx of -sum q log softmax(x / tau) = (sum(q) p - q) / tau.
    grads.append((q.sum(-1, keepdims=True) * p - q) / tau)
  return out, grads[0], grads[1]


def _np_ans(start_logits, end_logits, start, end, cs, ce):
  out = np.zeros(len(start))
  grad1 = np.zeros_like(start_logits)
  grad2 = np.zeros_like(end_logits)
  for b in range(len(start)):
    for logits, grad, g, c in (
      (start_logits, grad1, start[b], cs[b]),
      (end_logits, grad2, end[b], ce[b]),
    ):
      if c < 0:
        continue
      margin = 1.0 - logits[b, g] + logits[b, c]
      if margin > 0:
        out[b] += margin
        grad[b, g] -= 1.0
        grad[b, c] += 1.0
  return out, grad1, grad2


def _np_att(student, teacher, passage, question):
  mask = passage[:, None, :, None] & question[:, None, None, :]
  diff = np.where(mask, student - teacher, 0.0)
  per_hop = 0.5 * np.sum(diff**2, axis=(2, 3))
  return per_hop.mean(axis=1), diff / student.shape[1]


def test_ce_loss_matches_numpy_and_zero_on_padded_row():
  passage, _ = _masks()
  s, e = _logits(0), _logits(1)
  got = losses.ce_loss(s, e, START, END, passage).numpy()
  want, _, _ = _np_ce(s, e, START, END, passage)
  assert got.dtype == np.float32
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
  assert got[2] == 0.0
  assert np.all(np.isfinite(got))


def test_ce_loss_gradient_matches_analytic_and_masked_zero():
  passage, _ = _masks()
  s, e = tf.constant(_logits(0)), tf.constant(_logits(1))
  with tf.GradientTape() as tape:
    tape.watch([s, e])
    loss = tf.reduce_sum(losses.ce_loss(s, e, START, END, passage))
  gs, ge = tape.gradient(loss, [s, e])
  _, want_s, want_e = _np_ce(s.numpy(), e.numpy(), START, END, passage)
  np.testing.assert_allclose(gs.numpy(), want_s, atol=1e-6)
  np.testing.assert_allclose(ge.numpy(), want_e, atol=1e-6)
  assert np.all(gs.numpy()[~passage] == 0.0)
  assert np.all(ge.numpy()[~passage] == 0.0)


def test_ce_loss_padding_values_change_nothing():
  passage, _ = _masks()
  s, e = _logits(0), _logits(1)
  other_s = np.where(passage, s, -3.0).astype(np.float32)
  np.testing.assert_allclose(
    losses.ce_loss(s, e, START, END, passage).numpy(),
    losses.ce_loss(other_s, e, START, END, passage).numpy(),
    rtol=1e-6,
  )


def test_kd_loss_matches_numpy_with_temperature():
  passage, _ = _masks()
  s, e = _logits(2), _logits(3)
  q1, q2 = _distribution(4, TAU), _distribution(5, TAU)
  got = losses.kd_loss(s, e, q1, q2, passage, TAU).numpy()
  want, _, _ = _np_kd(s, e, q1, q2, passage, TAU)
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
  assert got[2] == 0.0
  # Equal distributions: the soft CE is the teacher entropy, its minimum.
  p1 = _np_softmax(s, passage, TAU).astype(np.float32)
  p2 = _np_softmax(e, passage, TAU).astype(np.float32)
  at_min = losses.kd_loss(s, e, p1, p2, passage, TAU).numpy()
  assert np.all(at_min[:2] < got[:2])


def test_kd_loss_gradient_matches_analytic_and_masked_zero():
  passage, _ = _masks()
  s, e = tf.constant(_logits(2)), tf.constant(_logits(3))
  q1, q2 = _distribution(4, TAU), _distribution(5, TAU)
  # Teacher mass on padding (if any) must be ignored.
  q1_noisy = np.where(passage, q1, 0.5).astype(np.float32)
  with tf.GradientTape() as tape:
    tape.watch([s, e])
    loss = tf.reduce_sum(losses.kd_loss(s, e, q1_noisy, q2, passage, TAU))
  gs, ge = tape.gradient(loss, [s, e])
  _, want_s, want_e = _np_kd(s.numpy(), e.numpy(), q1, q2, passage, TAU)
  np.testing.assert_allclose(gs.numpy(), want_s, atol=1e-6)
  np.testing.assert_allclose(ge.numpy(), want_e, atol=1e-6)
  assert np.all(gs.numpy()[~passage] == 0.0)
  assert np.all(np.isfinite(gs.numpy()))


def test_kd_loss_rejects_nonpositive_temperature():
  passage, _ = _masks()
  s = _logits(0)
  q = _distribution(1, 1.0)
  with pytest.raises(ValueError, match="temperature must be > 0, got 0"):
    losses.kd_loss(s, s, q, q, passage, 0.0)


def test_ans_loss_matches_numpy_and_zero_without_confusing():
  s = np.array(
    [[0.0, 2.0, 1.5, 0.0, 9.0], [0.0, 0.0, 3.0, 0.5, 0.0], [0.0] * 5],
    np.float32,
  )
  e = np.array(
    [[0.0, 0.0, 0.0, 0.2, 0.9], [0.0, 0.0, 1.0, 4.0, 0.0], [0.0] * 5],
    np.float32,
  )
  cs = np.array([2, 1, -1], np.int32)
  ce = np.array([4, -1, -1], np.int32)
  got = losses.ans_loss(s, e, START, END, cs, ce).numpy()
  # Row 0: max(0, 1 - 2 + 1.5) + max(0, 1 - 0.2 + 0.9); row 1: start only,
  # margin 1 - 3 + 0 < 0; row 2: no confusing span.
  np.testing.assert_allclose(got, [0.5 + 1.7, 0.0, 0.0], rtol=1e-6)
  want, _, _ = _np_ans(s, e, START, END, cs, ce)
  np.testing.assert_allclose(got, want, rtol=1e-6)


def test_ans_loss_gradient_matches_analytic():
  s, e = tf.constant(_logits(6)), tf.constant(_logits(7))
  cs = np.array([3, 0, -1], np.int32)
  ce = np.array([0, 1, -1], np.int32)
  with tf.GradientTape() as tape:
    tape.watch([s, e])
    loss = tf.reduce_sum(losses.ans_loss(s, e, START, END, cs, ce))
  gs, ge = tape.gradient(loss, [s, e])
  _, want_s, want_e = _np_ans(s.numpy(), e.numpy(), START, END, cs, ce)
  np.testing.assert_allclose(gs.numpy(), want_s, atol=1e-6)
  np.testing.assert_allclose(ge.numpy(), want_e, atol=1e-6)
  assert np.all(gs.numpy()[2] == 0.0)


def test_ans_loss_with_mask_ignores_confusing_index_on_padding():
  passage, _ = _masks()
  s, e = _logits(6), _logits(7)
  cs = np.array([-1, 4, 0], np.int32)  # Row 1: position 4 is padding.
  ce = np.array([-1, -1, 0], np.int32)  # Row 2: fully padded.
  got = losses.ans_loss(s, e, START, END, cs, ce, passage).numpy()
  np.testing.assert_array_equal(got, [0.0, 0.0, 0.0])
  unmasked = losses.ans_loss(s, e, START, END, cs, ce).numpy()
  assert unmasked[1] > 40.0  # The padded 50.0 would otherwise count.


def test_att_loss_matches_numpy_and_ignores_padding():
  passage, question = _masks()
  student, teacher = _attention(8), _attention(9)
  got = losses.att_loss(student, teacher, passage, question).numpy()
  want, _ = _np_att(student, teacher, passage, question)
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)
  assert got[2] == 0.0
  assert got[0] > 0.0
  same = losses.att_loss(student, student, passage, question).numpy()
  np.testing.assert_array_equal(same, [0.0, 0.0, 0.0])


def test_att_loss_gradient_matches_analytic_and_masked_zero():
  passage, question = _masks()
  student = tf.constant(_attention(8))
  teacher = _attention(9)
  with tf.GradientTape() as tape:
    tape.watch(student)
    loss = tf.reduce_sum(losses.att_loss(student, teacher, passage, question))
  grad = tape.gradient(loss, student).numpy()
  _, want = _np_att(student.numpy(), teacher, passage, question)
  np.testing.assert_allclose(grad, want, atol=1e-6)
  mask = passage[:, None, :, None] & question[:, None, None, :]
  assert np.all(grad[~np.broadcast_to(mask, grad.shape)] == 0.0)


def _knowledge_batch():
  return {
    "start": START,
    "end": END,
    "passage_len": PASSAGE_LEN,
    "question_len": QUESTION_LEN,
    "teacher_start_probs": _distribution(4, TAU),
    "teacher_end_probs": _distribution(5, TAU),
    "teacher_attention": _attention(9),
    "confusing_start": np.array([3, 0, -1], np.int32),
    "confusing_end": np.array([0, -1, -1], np.int32),
  }


def _outputs():
  return {
    "start_logits": tf.constant(_logits(0)),
    "end_logits": tf.constant(_logits(1)),
    "attention": tf.constant(_attention(8)),
  }


def test_a2d_loss_total_is_weighted_sum_of_terms():
  config = DistillConfig(temperature=TAU, ans_weight=0.3, att_weight=0.1)
  batch, outputs = _knowledge_batch(), _outputs()
  got = {
    k: v.numpy() for k, v in losses.a2d_loss(outputs, batch, config).items()
  }
  passage, question = _masks()
  s, e = outputs["start_logits"].numpy(), outputs["end_logits"].numpy()
  ce, _, _ = _np_ce(s, e, START, END, passage)
  kd, _, _ = _np_kd(
    s,
    e,
    batch["teacher_start_probs"],
    batch["teacher_end_probs"],
    passage,
    TAU,
  )
  ans, _, _ = _np_ans(
    s, e, START, END, batch["confusing_start"], batch["confusing_end"]
  )
  att, _ = _np_att(
    outputs["attention"].numpy(),
    batch["teacher_attention"],
    passage,
    question,
  )
  for name, want in (("ce", ce), ("kd", kd), ("ans", ans), ("att", att)):
    np.testing.assert_allclose(got[name], want, rtol=1e-5, atol=1e-6)
    assert np.any(want != 0.0), name
  np.testing.assert_allclose(
    got["total"], ce + TAU**2 * kd + 0.3 * ans + 0.1 * att, rtol=1e-5
  )
  assert got["total"][2] == 0.0


@pytest.mark.parametrize("switch", ["use_kd", "use_ans", "use_att"])
def test_a2d_loss_switch_off_zeroes_term_without_its_knowledge(switch):
  term, keys = {
    "use_kd": ("kd", ["teacher_start_probs", "teacher_end_probs"]),
    "use_ans": ("ans", ["confusing_start", "confusing_end"]),
    "use_att": ("att", ["teacher_attention"]),
  }[switch]
  config = DistillConfig(temperature=TAU)
  full = losses.a2d_loss(_outputs(), _knowledge_batch(), config)
  batch = {k: v for k, v in _knowledge_batch().items() if k not in keys}
  off = losses.a2d_loss(
    _outputs(), batch, DistillConfig(temperature=TAU, **{switch: False})
  )
  np.testing.assert_array_equal(off[term].numpy(), np.zeros(BATCH))
  weight = {"kd": TAU**2, "ans": config.ans_weight, "att": config.att_weight}
  np.testing.assert_allclose(
    off["total"].numpy(),
    full["total"].numpy() - weight[term] * full[term].numpy(),
    rtol=1e-5,
    atol=1e-6,
  )


def test_a2d_loss_phase_weights_select_attention_or_answer():
  config = DistillConfig(temperature=TAU)
  batch, outputs = _knowledge_batch(), _outputs()
  joint = losses.a2d_loss(outputs, batch, config)
  warmup = losses.a2d_loss(outputs, batch, config, 0.0, 1.0)
  answer = losses.a2d_loss(outputs, batch, config, 1.0, 0.0)
  np.testing.assert_allclose(
    warmup["total"].numpy(), config.att_weight * joint["att"].numpy()
  )
  np.testing.assert_allclose(
    answer["total"].numpy(),
    joint["total"].numpy() - config.att_weight * joint["att"].numpy(),
    rtol=1e-5,
    atol=1e-6,
  )


def test_a2d_loss_gradient_matches_finite_differences():
  config = DistillConfig(temperature=TAU)
  batch, outputs = _knowledge_batch(), _outputs()
  start_logits = tf.Variable(outputs["start_logits"])

  def total(values):
    out = dict(outputs, start_logits=values)
    return tf.reduce_sum(losses.a2d_loss(out, batch, config)["total"])

  with tf.GradientTape() as tape:
    loss = total(start_logits)
  grad = tape.gradient(loss, start_logits).numpy()
  passage, _ = _masks()
  eps = 1e-2
  base = start_logits.numpy()
  for b, j in zip(*np.nonzero(passage), strict=True):
    plus, minus = base.copy(), base.copy()
    plus[b, j] += eps
    minus[b, j] -= eps
    numeric = (total(plus).numpy() - total(minus).numpy()) / (2 * eps)
    np.testing.assert_allclose(grad[b, j], numeric, atol=2e-3)
  assert np.all(grad[~passage] == 0.0)


def test_a2d_loss_half_precision_inputs_give_float32():
  config = DistillConfig(temperature=TAU)
  outputs = {k: tf.cast(v, tf.float16) for k, v in _outputs().items()}
  got = losses.a2d_loss(outputs, _knowledge_batch(), config)
  assert got["total"].dtype == tf.float32
  assert np.all(np.isfinite(got["total"].numpy()))


def test_reduce_loss_is_batch_mean_on_one_device():
  per_example = tf.constant([1.0, 2.0, 6.0])
  assert losses.reduce_loss(per_example).numpy() == pytest.approx(3.0)
  assert losses.reduce_loss(per_example, 6).numpy() == pytest.approx(1.5)
  assert losses.reduce_loss(tf.zeros([0])).numpy() == 0.0
