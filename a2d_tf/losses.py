"""A2D loss terms as pure functions of tensors and masks.

Every term returns a per-example float32 loss of shape `[batch]`; padded
positions never contribute to a value or receive a gradient, and an example
whose passage is fully padded (length 0, e.g. a filler row of an uneven
batch) contributes exactly zero. Inputs of any float dtype (e.g. float16 or
bfloat16 logits under mixed precision) are computed in float32.

Reduction (chosen once, used by the student and by plain reader training):
`reduce_loss` sums the per-example losses and divides by the GLOBAL batch
size, i.e. the number of examples over all replicas in this step. On one
device that is the batch mean. Under `tf.distribute` each replica divides its
own sum by the same global size, so the per-replica gradients, which the
Keras optimizer all-reduces by SUM, add up to exactly the gradient of the
batch mean on a single device. Unlike `tf.nn.compute_average_loss`, which
assumes `per_replica_batch * num_replicas`, the global size is all-reduced
from the real per-replica sizes, so an unevenly split last batch is still the
true mean.

Joint objective (`a2d_loss`), per example:
`L = CE + tau**2 * KD + gamma * ANS + delta * ATT`, where the teacher
distributions in KD were softened at the same temperature tau by the
knowledge step.

A student of another size: CE, KD and ANS read passage positions only and
do not depend on the reader's width; ATT compares `[passage_len,
question_len]` distributions per hop, and a student with other aligner
hops than its teachers is matched hop by hop by `attention_hop_pairs`.
"""

from __future__ import annotations

import tensorflow as tf

from a2d_tf import masking
from a2d_tf.config import ATTENTION_HOPS_MAPS, DistillConfig


def _valid_rows(mask: tf.Tensor) -> tf.Tensor:
  """float32 `[batch]`: 1 for rows with at least one valid position."""
  return tf.cast(tf.reduce_any(tf.cast(mask, tf.bool), axis=-1), tf.float32)


def _masked_log_softmax(
  logits: tf.Tensor, mask: tf.Tensor, temperature: float = 1.0
) -> tf.Tensor:
  """log softmax of `logits / temperature` over valid positions.

  Masked positions hold a large finite negative (never -inf or NaN) and pass
  no gradient to `logits`.
  """
  scaled = masking.mask_logits(logits, mask) / temperature
  return tf.nn.log_softmax(scaled, axis=-1)


def _gather(values: tf.Tensor, index: tf.Tensor) -> tf.Tensor:
  """`values[b, index[b]]` for `values` `[batch, len]`, `index` `[batch]`."""
  index = tf.cast(index, tf.int32)
  return tf.gather(values, index, axis=1, batch_dims=1)


def ce_loss(
  start_logits: tf.Tensor,
  end_logits: tf.Tensor,
  start: tf.Tensor,
  end: tf.Tensor,
  passage_mask: tf.Tensor,
) -> tf.Tensor:
  """Span cross-entropy `-log p1[start] - log p2[end]` with masked softmax.

  Args:
    start_logits: `[batch, passage_len]` start scores (beta_1).
    end_logits: `[batch, passage_len]` end scores (beta_2).
    start: int `[batch]` gold start token positions.
    end: int `[batch]` gold end token positions.
    passage_mask: bool `[batch, passage_len]`, true at valid passage tokens.

  Returns:
    float32 `[batch]`; zero for fully padded rows.
  """
  start_logp = _masked_log_softmax(start_logits, passage_mask)
  end_logp = _masked_log_softmax(end_logits, passage_mask)
  loss = -_gather(start_logp, start) - _gather(end_logp, end)
  return loss * _valid_rows(passage_mask)


def kd_loss(
  start_logits: tf.Tensor,
  end_logits: tf.Tensor,
  teacher_start_probs: tf.Tensor,
  teacher_end_probs: tf.Tensor,
  passage_mask: tf.Tensor,
  temperature: float,
) -> tf.Tensor:
  """Soft cross-entropy with the teachers' softened span distributions.

  `-sum_j q1_j log softmax(beta_1 / tau)_j - sum_j q2_j log softmax(beta_2 /
  tau)_j` over valid positions j. The `tau**2` weight is applied by
  `a2d_loss`, not here.

  Args:
    start_logits: `[batch, passage_len]` student start scores.
    end_logits: `[batch, passage_len]` student end scores.
    teacher_start_probs: `[batch, passage_len]` teacher start distribution
      q1, computed at the same temperature (zero or ignored on padding).
    teacher_end_probs: `[batch, passage_len]` teacher end distribution q2.
    passage_mask: bool `[batch, passage_len]`.
    temperature: tau > 0.

  Returns:
    float32 `[batch]`; zero for fully padded rows.
  """
  if temperature <= 0:
    raise ValueError(f"temperature must be > 0, got {temperature}.")
  mask = tf.cast(passage_mask, tf.bool)
  terms = []
  for logits, probs in (
    (start_logits, teacher_start_probs),
    (end_logits, teacher_end_probs),
  ):
    logp = _masked_log_softmax(logits, mask, temperature)
    cross = tf.cast(probs, tf.float32) * logp
    cross = tf.where(mask, cross, tf.zeros_like(cross))
    terms.append(-tf.reduce_sum(cross, axis=-1))
  return terms[0] + terms[1]


def ans_loss(
  start_logits: tf.Tensor,
  end_logits: tf.Tensor,
  start: tf.Tensor,
  end: tf.Tensor,
  confusing_start: tf.Tensor,
  confusing_end: tf.Tensor,
  passage_mask: tf.Tensor | None = None,
) -> tf.Tensor:
  """Hinge loss pushing the gold span above the confusing span.

  `max(0, 1 - beta_1[start] + beta_1[i]) + max(0, 1 - beta_2[end] +
  beta_2[j])` on pre-softmax scores, with `(i, j)` the confusing span.

  Args:
    start_logits: `[batch, passage_len]` start scores (pre-softmax).
    end_logits: `[batch, passage_len]` end scores (pre-softmax).
    start: int `[batch]` gold start positions.
    end: int `[batch]` gold end positions.
    confusing_start: int `[batch]` confusing start i, -1 when none.
    confusing_end: int `[batch]` confusing end j, -1 when none.
    passage_mask: Optional bool `[batch, passage_len]`; when given, a term
      whose gold or confusing position is padding is zero as well.

  Returns:
    float32 `[batch]`; each of the two hinge terms is zero where its
    confusing index is -1.
  """
  total = tf.zeros(tf.shape(start)[:1], tf.float32)
  for logits, gold, confusing in (
    (start_logits, start, confusing_start),
    (end_logits, end, confusing_end),
  ):
    logits = tf.cast(logits, tf.float32)
    confusing = tf.cast(confusing, tf.int32)
    valid = confusing >= 0
    safe_confusing = tf.maximum(confusing, 0)
    if passage_mask is not None:
      mask = tf.cast(passage_mask, tf.bool)
      valid = valid & _gather(mask, gold) & _gather(mask, safe_confusing)
    hinge = tf.nn.relu(
      1.0 - _gather(logits, gold) + _gather(logits, safe_confusing)
    )
    total += tf.where(valid, hinge, tf.zeros_like(hinge))
  return total


def att_loss(
  student_attention: tf.Tensor,
  teacher_attention: tf.Tensor,
  passage_mask: tf.Tensor,
  question_mask: tf.Tensor,
) -> tf.Tensor:
  """Attention matching `1/2 sum_j ||D_j - E_j||^2`, averaged over hops.

  For each hop, the squared distance between the student's (D) and the
  teachers' (E) alignment distributions is summed over valid passage words j
  and valid question words, halved, then the hops are reduced by their MEAN
  (so the scale does not grow with the number of hops T).

  Args:
    student_attention: `[batch, hops, passage_len, question_len]`.
    teacher_attention: `[batch, hops, passage_len, question_len]`.
    passage_mask: bool `[batch, passage_len]`.
    question_mask: bool `[batch, question_len]`.

  Returns:
    float32 `[batch]`; zero for fully padded rows.
  """
  mask = (
    tf.cast(passage_mask, tf.bool)[:, None, :, None]
    & tf.cast(question_mask, tf.bool)[:, None, None, :]
  )
  diff = tf.cast(student_attention, tf.float32) - tf.cast(
    teacher_attention, tf.float32
  )
  diff = tf.where(mask, diff, tf.zeros_like(diff))
  per_hop = 0.5 * tf.reduce_sum(tf.square(diff), axis=[2, 3])
  return tf.reduce_mean(per_hop, axis=1)


def attention_hop_pairs(
  student_hops: int, teacher_hops: int, mapping: str
) -> tuple[tuple[int, int], ...]:
  """Which teacher hop ATT matches with which student hop.

  With equal counts every hop is matched with its own, whatever `mapping`
  (the paper's ATT). Otherwise, for S student hops and T teacher hops:

  - "proportional": student hop s (0-based) with teacher hop
    `ceil((s + 1) * T / S) - 1`, the teacher hop at the same relative
    depth; every student hop is matched, the last with the last (S = 1,
    T = 2: (0, 1); S = 2, T = 3: (0, 1), (1, 2); S = 3, T = 2: (0, 0),
    (1, 1), (2, 1)).
  - "last": the student's last hop with the teachers' last, and no other.

  Args:
    student_hops: The student's aligner hops S (>= 1).
    teacher_hops: The teachers' aligner hops T (>= 1).
    mapping: One of `config.ATTENTION_HOPS_MAPS`.

  Returns:
    `(student hop, teacher hop)` pairs in student hop order.

  Raises:
    ValueError: On hop counts below 1 or an unknown mapping.
  """
  if student_hops < 1 or teacher_hops < 1:
    raise ValueError(
      "hop counts must be >= 1, received: student_hops="
      f"{student_hops}, teacher_hops={teacher_hops}"
    )
  if mapping not in ATTENTION_HOPS_MAPS:
    raise ValueError(
      f"mapping must be one of {ATTENTION_HOPS_MAPS}, received: "
      f"mapping={mapping!r}"
    )
  if student_hops == teacher_hops:
    return tuple((h, h) for h in range(student_hops))
  if mapping == "last":
    return ((student_hops - 1, teacher_hops - 1),)
  # ceil((s + 1) * T / S) in integers.
  return tuple(
    (s, -(-(s + 1) * teacher_hops // student_hops) - 1)
    for s in range(student_hops)
  )


def matched_attention(
  student_attention: tf.Tensor,
  teacher_attention: tf.Tensor,
  teacher_hops: int | None,
  mapping: str,
) -> tuple[tf.Tensor, tf.Tensor]:
  """The student and teacher attention hops ATT compares, hop by hop.

  Args:
    student_attention: `[batch, student_hops, passage_len, question_len]`
      with a static hop count.
    teacher_attention: `[batch, teacher_hops, passage_len, question_len]`,
      all the teachers' hops as the knowledge stores them.
    teacher_hops: The teachers' hop count T; None takes it to be the
      student's (the inputs are returned unchanged).
    mapping: See `attention_hop_pairs`.

  Returns:
    Both tensors with the same hops, `[batch, pairs, passage_len,
    question_len]`: unchanged when the counts are equal, else gathered by
    `attention_hop_pairs`.

  Raises:
    ValueError: The student's hop count is not static.
    InvalidArgumentError: (when run) The knowledge holds another number of
      hops than `teacher_hops`.
  """
  student_hops = student_attention.shape[1]
  if teacher_hops is None or student_hops == teacher_hops:
    return student_attention, teacher_attention
  if student_hops is None:
    raise ValueError(
      "the student's attention needs a static hop axis to be matched "
      f"with {teacher_hops} teacher hops"
    )
  pairs = attention_hop_pairs(int(student_hops), int(teacher_hops), mapping)
  check = tf.debugging.assert_equal(
    tf.shape(teacher_attention)[1],
    int(teacher_hops),
    message="teacher_attention holds another number of hops than the "
    "teachers' model.aligner_hops; was the knowledge written by other "
    "teachers?",
  )
  with tf.control_dependencies([check]):
    teacher = tf.gather(teacher_attention, [t for _, t in pairs], axis=1)
  student = tf.gather(student_attention, [s for s, _ in pairs], axis=1)
  return student, teacher


def a2d_loss(
  outputs: dict[str, tf.Tensor],
  batch: dict[str, tf.Tensor],
  config: DistillConfig,
  answer_weight: float | tf.Tensor = 1.0,
  attention_weight: float | tf.Tensor = 1.0,
  teacher_hops: int | None = None,
) -> dict[str, tf.Tensor]:
  """The joint A2D loss `CE + tau**2 KD + gamma ANS + delta ATT` per example.

  Masks are built from `passage_len` / `question_len`. A term switched off in
  `config` is not computed (its knowledge keys may be absent from `batch`)
  and is reported as zeros.

  Args:
    outputs: Student outputs: `start_logits`, `end_logits` `[batch,
      passage_len]` and, when ATT is on, `attention` `[batch, hops,
      passage_len, question_len]`.
    batch: Model input plus knowledge: `start`, `end`, `passage_len`,
      `question_len` `[batch]`, and as the switches need them
      `teacher_start_probs`, `teacher_end_probs`, `teacher_attention`,
      `confusing_start`, `confusing_end`.
    config: Weights (temperature, ans_weight, att_weight) and switches
      (use_kd, use_ans, use_att).
    answer_weight: Multiplier of the answer terms CE, KD and ANS in `total`
      (0 during stage-wise attention warm-up).
    attention_weight: Multiplier of the ATT term in `total` (0 in the
      stage-wise answer phase).
    teacher_hops: The teachers' aligner hops; when the student's attention
      has another number, ATT compares the hops `config.attention_hops_map`
      pairs (`matched_attention`). None: the same as the student's.

  Returns:
    Dict of float32 `[batch]` tensors: the unweighted terms `ce`, `kd`,
    `ans`, `att` and the weighted `total`.
  """
  start_logits = outputs["start_logits"]
  end_logits = outputs["end_logits"]
  passage_len = tf.shape(start_logits)[1]
  passage_mask = masking.sequence_mask(batch["passage_len"], passage_len)
  zeros = tf.zeros(tf.shape(start_logits)[:1], tf.float32)
  tau = float(config.temperature)

  ce = ce_loss(
    start_logits, end_logits, batch["start"], batch["end"], passage_mask
  )
  kd = zeros
  if config.use_kd:
    kd = kd_loss(
      start_logits,
      end_logits,
      batch["teacher_start_probs"],
      batch["teacher_end_probs"],
      passage_mask,
      tau,
    )
  ans = zeros
  if config.use_ans:
    ans = ans_loss(
      start_logits,
      end_logits,
      batch["start"],
      batch["end"],
      batch["confusing_start"],
      batch["confusing_end"],
      passage_mask,
    )
  att = zeros
  if config.use_att:
    attention = outputs["attention"]
    question_mask = masking.sequence_mask(
      batch["question_len"], tf.shape(attention)[3]
    )
    student_attention, teacher_attention = matched_attention(
      attention,
      batch["teacher_attention"],
      teacher_hops,
      config.attention_hops_map,
    )
    att = att_loss(
      student_attention, teacher_attention, passage_mask, question_mask
    )
  answer_weight = tf.cast(answer_weight, tf.float32)
  attention_weight = tf.cast(attention_weight, tf.float32)
  total = answer_weight * (
    ce + tau**2 * kd + float(config.ans_weight) * ans
  ) + attention_weight * (float(config.att_weight) * att)
  return {"ce": ce, "kd": kd, "ans": ans, "att": att, "total": total}


def global_batch_size(per_example_loss: tf.Tensor) -> tf.Tensor:
  """Examples in this step over all replicas, as float32.

  In a replica context of a multi-replica strategy the per-replica batch
  sizes are all-reduced by SUM; otherwise (one replica, or a cross-replica
  context) it is the local batch size.
  """
  size = tf.cast(tf.shape(per_example_loss)[0], tf.float32)
  context = tf.distribute.get_replica_context()
  if context is not None and context.num_replicas_in_sync > 1:
    size = context.all_reduce(tf.distribute.ReduceOp.SUM, size)
  return size


def global_sums(values: list[tf.Tensor]) -> list[tf.Tensor]:
  """`values` summed over all replicas in a multi-replica replica context.

  Elsewhere (one replica, or a cross-replica context) they are returned as
  given. Every replica gets the same sums.
  """
  context = tf.distribute.get_replica_context()
  if context is not None and context.num_replicas_in_sync > 1:
    return list(context.all_reduce(tf.distribute.ReduceOp.SUM, values))
  return list(values)


def reduce_loss(
  per_example_loss: tf.Tensor,
  global_batch: tf.Tensor | int | None = None,
) -> tf.Tensor:
  """Sums a `[batch]` loss and divides by the global batch size.

  Args:
    per_example_loss: float `[batch]` (this replica's examples).
    global_batch: Examples over all replicas; by default the real sizes are
      all-reduced (see `global_batch_size`).

  Returns:
    float32 scalar: the batch mean on one device; under `tf.distribute` this
    replica's share, such that the replicas' gradients sum to the
    single-device gradient of the global batch mean.
  """
  per_example_loss = tf.cast(per_example_loss, tf.float32)
  if global_batch is None:
    global_batch = global_batch_size(per_example_loss)
  global_batch = tf.maximum(tf.cast(global_batch, tf.float32), 1.0)
  return tf.reduce_sum(per_example_loss) / global_batch
