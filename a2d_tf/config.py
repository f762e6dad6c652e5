"""Experiment configuration: frozen dataclasses and named presets.

One `ExperimentConfig` flows one way through the library: CLIs build it from a
preset plus `--override=section.field=value` strings, check it with `check`
(the one place values are validated) before any step runs, every run writes
the resolved config as JSON next to its outputs, and components receive it
as a JSON-able dict (`to_dict` / `from_dict`).

What a model *is* (data, model, student_model, train, teacher, distill,
export) is apart from how a run *executes* (`runtime`: strategy, precision,
XLA, cuDNN, determinism, batch padding, logging cadence): the pipeline
passes `runtime` to its steps outside every cache key. `student_model` holds
the student's architecture as changes to the teachers' `model` (none by
default: the paper's student copies a teacher).
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from collections.abc import Callable
from typing import Any


@dataclasses.dataclass(frozen=True)
class DataConfig:
  """Data and featurization settings.

  Attributes:
    max_passage_len: Passage tokens kept; longer passages are truncated and
      training examples whose answer falls outside are skipped and counted.
    max_question_len: Question tokens kept.
    max_word_len: Characters kept per token for the character encoder.
    min_word_count: Minimum training-split count for a word to enter the word
      vocabulary.
    min_char_count: Minimum training-split count for a character.
    lowercase_words: Whether word ids are looked up on lowercased tokens.
    num_shards: Number of TFRecord shards written per split.
    bucket_boundaries: Passage-length boundaries for length bucketing in the
      training input function.
    shuffle_buffer: Shuffle buffer size (examples) for training input.
    synthetic_train_size: Passages in the embedded corpus' train split.
    synthetic_dev_size: Passages in the embedded corpus' dev split.
    synthetic_seed: Seed of the embedded corpus generator.
    tune_top_words: With pretrained vectors (`--glove_file`), the N most
      frequent training-question words keep training from their pretrained
      vectors, as DrQA's `tune_partial` does (DrQA uses 1000); 0 freezes
      every word that has a vector. Words without a vector always train.
      It decides the vocabulary's id layout (see `a2d_tf.data.vocab`), so it
      lives here with the transform's other settings; without pretrained
      vectors every row trains and it has no effect.
    validation_fraction: Share of the training questions held out, by
      article, as the validation split on which teachers and the student
      keep their best epoch (`data.splits`); 0 keeps the last epoch. The
      dev and evaluation sets are only ever reported, never selected on.
    split_seed: Seed of the validation split and of the generated
      adversarial sample.
    adversarial_questions: For real SQuAD data (`json`, `tfds`): dev
      questions that get a generated AddSent-style variant in an
      `adversarial` evaluation set (`data.addsent`); 0 makes none. The
      embedded corpus brings its own adversarial split.
    max_passage_words: For NarrativeQA (`--dataset=narrativeqa`): words of
      each tokenized summary kept as the passage (800 in the paper); the
      transform then keeps `max_passage_len` tokens of it. Other datasets
      do not read it.
  """

  max_passage_len: int = 400
  max_question_len: int = 50
  max_word_len: int = 16
  min_word_count: int = 1
  min_char_count: int = 1
  lowercase_words: bool = True
  num_shards: int = 2
  bucket_boundaries: tuple[int, ...] = (100, 120, 140, 200, 300)
  shuffle_buffer: int = 10000
  synthetic_train_size: int = 600
  synthetic_dev_size: int = 100
  synthetic_seed: int = 13
  tune_top_words: int = 0
  validation_fraction: float = 0.05
  split_seed: int = 0
  adversarial_questions: int = 0
  max_passage_words: int = 800


@dataclasses.dataclass(frozen=True)
class ModelConfig:
  """Reinforced Mnemonic Reader sizes.

  Attributes:
    word_dim: Word embedding size (300 with GloVe in the paper).
    char_dim: Character embedding size.
    char_hidden: Character encoder units (per direction for the BiLSTM, filters
      for the CNN).
    char_encoder: "bilstm" or "cnn".
    hidden: Hidden units per direction of every BiLSTM (100 in the paper).
    aligner_hops: Iterative aligner hops T (3 in the paper).
    pointer: Answer pointer: "memory" (the earlier Mnemonic Reader's
      memory-based pointer, `pointer_hops` hops) or "rmr" (the IJCAI 2018
      RMR pointer: question summary, start, one SFU update, end; it has
      no hops).
    pointer_hops: Memory-based answer pointer hops L (2 in the Mnemonic
      Reader); unused by the "rmr" pointer.
    question_em: Give question tokens their own exact-match flags (the word
      occurs in the passage, exact and lowercased), as RMR does; False
      feeds the question zero flags.
    dropout: Dropout rate on layer inputs.
    variational_dropout: Use the same dropout mask over time for LSTM inputs.
    max_answer_len: Longest span (tokens) the decoder returns.
  """

  word_dim: int = 48
  char_dim: int = 16
  char_hidden: int = 16
  char_encoder: str = "cnn"
  hidden: int = 32
  aligner_hops: int = 2
  pointer: str = "memory"
  pointer_hops: int = 2
  question_em: bool = False
  dropout: float = 0.0
  variational_dropout: bool = True
  max_answer_len: int = 15


# What `StudentModelConfig` leaves out of `ModelConfig`: every system decodes
# spans alike, so the reports compare readers, not decoders.
_SHARED_MODEL_FIELDS = ("max_answer_len",)


@dataclasses.dataclass(frozen=True)
class StudentModelConfig:
  """The student's reader, as changes to the teachers' `model` section.

  Every field is a `ModelConfig` field; None (the default of each) takes
  the teachers' value, so by default the student has exactly a teacher's
  architecture, as in the paper. `--override=student_model.hidden=16`
  gives it 16 units per direction and keeps the rest. `resolve_student_model`
  returns the student's `ModelConfig`, `student_model_changes` the fields
  that differ from the teachers' (the only ones in the student step's cache
  key, so a value equal to the teachers' keeps the default student).
  `max_answer_len` is not here: every system decodes with `model`'s.

  What a student of another shape learns from the same knowledge (README,
  "A student of another size"): the answer terms (CE, KD, ANS) read passage
  positions only; ATT maps the student's aligner hops to the teachers' by
  `distill.attention_hops_map` when their counts differ; a student of
  another `word_dim` learns its own word vectors (the vocabulary, and so
  every id, is shared) and cannot take the teachers' pretrained ones.

  Attributes:
    word_dim: Word embedding size.
    char_dim: Character embedding size.
    char_hidden: Character encoder units.
    char_encoder: "bilstm" or "cnn".
    hidden: Hidden units per direction of every BiLSTM.
    aligner_hops: Iterative aligner hops.
    pointer: Answer pointer, "memory" or "rmr".
    pointer_hops: Memory-based answer pointer hops.
    question_em: Question exact-match flags.
    dropout: Dropout rate on layer inputs.
    variational_dropout: Same dropout mask over time for LSTM inputs.
  """

  word_dim: int | None = None
  char_dim: int | None = None
  char_hidden: int | None = None
  char_encoder: str | None = None
  hidden: int | None = None
  aligner_hops: int | None = None
  pointer: str | None = None
  pointer_hops: int | None = None
  question_em: bool | None = None
  dropout: float | None = None
  variational_dropout: bool | None = None


@dataclasses.dataclass(frozen=True)
class TrainConfig:
  """Optimization settings shared by teachers and the student.

  What a trained model is: these values enter the cache key of every step
  that trains or reads a model. How a run executes is `RuntimeConfig`.

  Attributes:
    batch_size: Global batch size (per-replica size is derived).
    epochs: Training epochs.
    learning_rate: Adam learning rate.
    clipnorm: Global gradient-norm clipping (0: none).
    seed: Base seed; teacher k uses `seed + k`, the student `seed + K`
      (NumPy takes seeds in [0, 2**32), so `seed + K` must be below it).
    lr_decay: The learning rate is multiplied by this after every epoch
      (epoch e trains at `learning_rate * lr_decay**e`); 1 keeps it.
    early_stopping_patience: Stop a model's training when its validation
      F1 has not improved for this many epochs (0: train every epoch).
      The best epoch's weights are kept either way when there is a
      validation split.
  """

  batch_size: int = 32
  epochs: int = 4
  learning_rate: float = 1e-2
  clipnorm: float = 5.0
  seed: int = 1
  lr_decay: float = 1.0
  early_stopping_patience: int = 0


@dataclasses.dataclass(frozen=True)
class TeacherConfig:
  """The teacher ensemble.

  Attributes:
    num_teachers: K, the ensemble size (12 in the paper).
    top_k: Spans per teacher considered for the confusing answer (4).
  """

  num_teachers: int = 3
  top_k: int = 4


@dataclasses.dataclass(frozen=True)
class DistillConfig:
  """A2D loss weights and ablation switches.

  Attributes:
    temperature: tau; teacher and student distributions are softened by it
      and KD is weighted by tau**2.
    ans_weight: gamma, the weight of the confusing-answer hinge loss.
    att_weight: delta, the weight of the attention-matching loss.
    use_kd: Include the KD term (False is the -KD ablation).
    use_ans: Include the ANS term (False is the -ANS ablation).
    use_att: Include the ATT term (False is the -ATT ablation).
    stagewise: Train attention first (`warmup_epochs` epochs of ATT only),
      then the remaining terms, instead of joint training.
    warmup_epochs: Attention warm-up epochs for stage-wise training.
    epochs: The student's (joint or answer-phase) training epochs; 0 trains
      it as long as a teacher (`train.epochs`). The student learns from
      softer targets than the gold labels and may train longer.
    attention_hops_map: Which teacher hop each student aligner hop is
      matched with by ATT when the student has another number of hops than
      the teachers (`student_model.aligner_hops`), one of
      `ATTENTION_HOPS_MAPS`: "proportional" matches student hop s of S with
      teacher hop ceil((s + 1) * T / S) - 1 of T (the hop at the same
      relative depth; every student hop is matched, the last with the
      last), "last" only the student's last hop with the teachers' last.
      With equal hop counts every hop is matched with its own, whatever
      the value (`losses.attention_hop_pairs`).
  """

  temperature: float = 2.0
  ans_weight: float = 0.3
  att_weight: float = 0.1
  use_kd: bool = True
  use_ans: bool = True
  use_att: bool = True
  stagewise: bool = False
  warmup_epochs: int = 1
  epochs: int = 0
  attention_hops_map: str = "proportional"


@dataclasses.dataclass(frozen=True)
class ExportConfig:
  """Serving export and the gate in front of its push.

  The pipeline's `validate_model` step blesses the exported student, as
  TFX's Evaluator and InfraValidator do, and `push` publishes it only when
  blessed (`a2d_tf.blessing`). The model criteria hold on every reported
  evaluation set (dev, adversarial, every `--eval_file`), in F1 points
  (worst case per original question on adversarial sets).

  Attributes:
    version: Integer version folder under `serving/` for TF Serving, 0 or
      more (TF Serving's version numbers are non-negative int64; it serves
      the largest).
    min_f1_vs_single: The student's F1 minus the single teachers' mean F1
      must be at least this on every set: -1 allows a student one point
      below a single teacher (noise on a small dev set), but not a student
      one would replace by serving any teacher.
    min_f1_vs_ensemble: The student's F1 minus the ensemble's must be at
      least this on every set: -5 pushes a student that keeps the
      ensemble's accuracy within five points (the paper's student is 0.4
      below its ensemble). Set either to -100 to switch that criterion off.
  """

  version: int = 1
  min_f1_vs_single: float = -1.0
  min_f1_vs_ensemble: float = -5.0


# The names `DistillConfig.attention_hops_map` takes.
ATTENTION_HOPS_MAPS = ("proportional", "last")

# The names `RuntimeConfig.distribution` and `.mixed_precision` take.
DISTRIBUTIONS = ("default", "mirrored", "multi_worker", "tpu")
MIXED_PRECISION_POLICIES = ("", "mixed_bfloat16", "mixed_float16")


@dataclasses.dataclass(frozen=True)
class RuntimeConfig:
  """How a run executes, apart from what it computes.

  The pipeline hands this section to its steps as runtime parameters: it is
  in no step's cache key, so `--override=runtime.run_eagerly=true` re-runs
  nothing that is already cached. A model trained under another runtime is
  the same model up to floating-point (and XLA / precision) differences.

  A field typed `... | None` is "auto" when None (`--override=
  runtime.deterministic=auto`): decided for the machine the step runs on,
  as each field says (`training.resolve_runtime`).

  Attributes:
    distribution: The `tf.distribute` strategy, one of `DISTRIBUTIONS`:
      "default" (one device), "mirrored" (every local GPU), "multi_worker"
      (the cluster in `TF_CONFIG`) or "tpu" (see
      `training.make_strategy`).
    mixed_precision: Keras dtype policy of the models, one of
      `MIXED_PRECISION_POLICIES` ("" keeps float32); logits, attentions and
      losses stay float32.
    jit_compile: Compile the train step (and the per-epoch validation forward
      pass) with XLA.
    use_cudnn: Run the LSTMs with cuDNN kernels. Auto: on a GPU unless
      `jit_compile` (cuDNN's `CudnnRNNV3` has no XLA kernel, so the two
      exclude each other; true with `jit_compile` is a config error).
    deterministic: TF op determinism (`enable_op_determinism`): the same
      seed and data reproduce a model bit for bit on one device type. Auto:
      on without a GPU (CPU runs and tests) and off on a GPU, where it
      selects slower deterministic cuDNN / cuBLAS algorithms and gather /
      scatter gradients. Keras does not compile with XLA under op
      determinism: true with `jit_compile` is a config error, and auto is
      off under `jit_compile`. Process-wide; once on it stays on.
    pad_to_bucket: Pad every batch's passages to its length bucket's upper
      boundary (`data.bucket_boundaries`, then `data.max_passage_len`) and
      its questions to the next of `question_buckets` (then
      `data.max_question_len`), so an epoch has a bounded number of batch
      shapes and XLA a bounded number of programs to compile. Masks come
      from the lengths, so padding changes no result. Auto: on with
      `jit_compile`.
    question_buckets: Question lengths that `pad_to_bucket` pads to below
      `data.max_question_len` (increasing).
    steps_per_execution: Keras train steps per compiled call (>= 1): fewer
      host round trips, and Keras callbacks (progress, TensorBoard step
      scalars) see a batch end only every this many steps. Auto: 1 under
      `run_eagerly` or without a GPU / TPU (a CPU step costs far more than
      the round trip), else 10.
    log_every_steps: TensorBoard step scalars (`batch_*`) every this many
      optimizer steps (at the first batch end Keras reports at or after
      each multiple); epoch scalars are written every epoch.
    run_eagerly: Run train steps eagerly, without tracing them: for
      debugging, and for tiny runs (tests) where tracing the step costs
      more than running it. Much slower on real data.
  """

  distribution: str = "default"
  mixed_precision: str = ""
  jit_compile: bool = False
  use_cudnn: bool | None = None
  deterministic: bool | None = None
  pad_to_bucket: bool | None = None
  question_buckets: tuple[int, ...] = (16, 32)
  steps_per_execution: int | None = None
  log_every_steps: int = 100
  run_eagerly: bool = False


@dataclasses.dataclass(frozen=True)
class ExperimentConfig:
  """Everything one a2d run needs.

  Attributes:
    data: Data and featurization settings.
    model: Reader architecture sizes (the teachers', and by default the
      student's).
    student_model: The student's architecture, as changes to `model`
      (none by default).
    train: Optimization settings.
    teacher: Teacher ensemble settings.
    distill: Distillation loss settings.
    export: Serving export settings.
    runtime: How the run executes (strategy, precision, XLA, cuDNN,
      determinism, batch padding, logging); never part of a step's cache
      key.
  """

  data: DataConfig = dataclasses.field(default_factory=DataConfig)
  model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
  student_model: StudentModelConfig = dataclasses.field(
    default_factory=StudentModelConfig
  )
  train: TrainConfig = dataclasses.field(default_factory=TrainConfig)
  teacher: TeacherConfig = dataclasses.field(default_factory=TeacherConfig)
  distill: DistillConfig = dataclasses.field(default_factory=DistillConfig)
  export: ExportConfig = dataclasses.field(default_factory=ExportConfig)
  runtime: RuntimeConfig = dataclasses.field(default_factory=RuntimeConfig)

  def to_dict(self) -> dict[str, Any]:
    """Returns the config as JSON-able primitives."""
    return json.loads(json.dumps(dataclasses.asdict(self)))

  def to_json(self) -> str:
    return json.dumps(self.to_dict(), indent=2, sort_keys=True)

  @classmethod
  def from_dict(cls, values: dict[str, Any]) -> ExperimentConfig:
    """Builds a config from `to_dict` output; unknown keys are an error."""
    sections = {}
    for field in dataclasses.fields(cls):
      section_cls = field.default_factory
      given = dict(values.get(field.name, {}))
      known = {f.name: f for f in dataclasses.fields(section_cls)}
      unknown = set(given) - set(known)
      if unknown:
        raise ValueError(
          f"Unknown config field(s) {sorted(unknown)} in section "
          f"'{field.name}'.{_moved_hint(field.name, unknown)}"
        )
      for name, value in given.items():
        if isinstance(value, list):
          given[name] = tuple(value)
      sections[field.name] = section_cls(**given)
    extra = set(values) - {f.name for f in dataclasses.fields(cls)}
    if extra:
      raise ValueError(f"Unknown config section(s) {sorted(extra)}.")
    return cls(**sections)


# The published RMR reader (GloVe 300-d, 100 units, T=3, the IJCAI answer
# pointer, exact-match flags on both sides): `paper`'s, and `narrativeqa`'s
# with 2 aligning hops.
_PAPER_MODEL = ModelConfig(
  word_dim=300,
  char_dim=50,
  char_hidden=50,
  char_encoder="bilstm",
  hidden=100,
  aligner_hops=3,
  pointer="rmr",
  question_em=True,
  dropout=0.3,
)

PRESETS: dict[str, ExperimentConfig] = {
  # Tests. At these sizes a teacher learns the embedded corpus in about a
  # minute on 2 cores (3 epochs: about 63 dev F1, type-matching baseline 38;
  # tests/learning_test.py); unit and end-to-end tests shrink the corpus and
  # epochs by override to take seconds per model. 160 tokens keep every
  # synthetic passage whole, with its AddSent sentence.
  "tiny": ExperimentConfig(
    data=DataConfig(
      max_passage_len=160,
      max_question_len=24,
      max_word_len=12,
      num_shards=1,
      bucket_boundaries=(100, 120, 140),
      shuffle_buffer=2000,
      synthetic_train_size=400,
      synthetic_dev_size=40,
    ),
    model=ModelConfig(
      word_dim=24,
      char_dim=8,
      char_hidden=8,
      hidden=16,
      aligner_hops=2,
      pointer_hops=2,
      dropout=0.0,
    ),
    train=TrainConfig(batch_size=32, epochs=3, learning_rate=1e-2),
    teacher=TeacherConfig(num_teachers=2),
  ),
  # The CPU default of the local runner: a teacher takes about 2 minutes on 2
  # cores (about 80 to 86 dev F1 after 4 epochs on 600 passages, type-matching
  # baseline 38). A step costs about 1.3 times more at batch 32 than at 16
  # and 1.5 times more at 48 units than at 32 (sequential LSTM steps
  # dominate), so batches of 32, 32 units and Adam at 1e-2 learn the most
  # per second; dropout only slowed learning at this budget.
  "small": ExperimentConfig(),
  # Real SQuAD v1.1 on 2 CPU cores (`bench/fidelity.py`; README "Results on
  # SQuAD v1.1"): the small reader with dropout, whose teachers' knowledge
  # on their own training questions stays softer, three teacher epochs, a
  # student that trains longer, every model kept at its best epoch on the
  # validation split, and an AddSent-style adversarial split generated
  # from 1,000 dev questions. Chosen by the experiments in the README,
  # among them tau = 1 (the paper's tau = 2 elsewhere): of 1, 2 and 5 on
  # one set of teachers it gave the student its best validation F1 and the
  # best dev and adversarial F1 (tau = 5 level on dev F1, ahead on EM).
  "squad_cpu": ExperimentConfig(
    data=DataConfig(adversarial_questions=1000),
    model=ModelConfig(dropout=0.2),
    train=TrainConfig(epochs=3),
    distill=DistillConfig(epochs=4, temperature=1.0),
  ),
  # The published RMR / A2D settings (GloVe 300-d, 100 units, T=3, the
  # IJCAI answer pointer, exact-match flags on both sides).
  "paper": ExperimentConfig(
    data=DataConfig(
      max_passage_len=400,
      max_question_len=50,
      max_word_len=16,
      num_shards=8,
      bucket_boundaries=(100, 150, 200, 250, 300),
    ),
    model=_PAPER_MODEL,
    train=TrainConfig(batch_size=32, epochs=20, learning_rate=8e-4),
    teacher=TeacherConfig(num_teachers=12),
  ),
  # The paper's NarrativeQA (summary setting) run, for
  # `--dataset=narrativeqa`: the `paper` reader with 2 aligning hops, batch
  # 32, summaries cut to their first 800 words. Our tokenizer splits the
  # punctuation inside NarrativeQA's tokens ("'s", "n't", "``", hyphens,
  # "Mr."), so 800 words are more than 800 tokens: 1000 tokens leave 25%
  # for that, and example_gen counts the passages that still do not fit
  # (`passages_over_max_len`).
  "narrativeqa": ExperimentConfig(
    data=DataConfig(
      max_passage_len=1000,
      max_question_len=50,
      max_word_len=16,
      num_shards=8,
      bucket_boundaries=(300, 400, 500, 600, 700, 800, 900),
      max_passage_words=800,
    ),
    model=dataclasses.replace(_PAPER_MODEL, aligner_hops=2),
    train=TrainConfig(batch_size=32, epochs=20, learning_rate=8e-4),
    teacher=TeacherConfig(num_teachers=12),
  ),
}


# Fields that moved out of `train` into `runtime`; an old spelling such as
# `train.jit_compile` is an error that names the new one.
_MOVED_TO_RUNTIME = (
  "distribution",
  "mixed_precision",
  "jit_compile",
  "steps_per_execution",
  "run_eagerly",
)


def _moved_hint(section: str, fields) -> str:
  """Names the new place of old `train.<runtime field>` spellings, or ""."""
  moved = (
    sorted(set(fields) & set(_MOVED_TO_RUNTIME)) if section == "train" else []
  )
  if not moved:
    return ""
  return (
    " Moved to the runtime section: "
    + ", ".join(f"runtime.{name}" for name in moved)
    + "."
  )


# How an "auto" (None) value of a `... | None` field is spelled in overrides.
AUTO = "auto"


def _auto_type(section_cls: type, field_name: str) -> type | None:
  """`X` for a field typed `X | None` (None means auto), else None."""
  hint = typing.get_type_hints(section_cls)[field_name]
  if isinstance(hint, types.UnionType) and type(None) in hint.__args__:
    (base,) = [t for t in hint.__args__ if t is not type(None)]
    return base
  return None


def _parse_value(raw: str, current: Any) -> Any:
  if isinstance(current, bool):
    lowered = raw.strip().lower()
    if lowered in ("true", "1", "yes"):
      return True
    if lowered in ("false", "0", "no"):
      return False
    raise ValueError(f"expected a boolean, got {raw!r}")
  if isinstance(current, int):
    return int(raw)
  if isinstance(current, float):
    return float(raw)
  if isinstance(current, tuple):
    return tuple(int(x) for x in raw.split(",") if x.strip())
  return raw


def apply_overrides(
  config: ExperimentConfig, overrides: list[str] | tuple[str, ...]
) -> ExperimentConfig:
  """Applies `section.field=value` strings with `dataclasses.replace`.

  Values are parsed by the field's type (`auto` sets a `... | None` field
  to None, its auto value); whether they are in range is `validate`'s job.

  Args:
    config: The base config.
    overrides: Strings such as `distill.temperature=3`.

  Returns:
    A new config.

  Raises:
    ValueError: On a malformed override, an unknown section or field (a
      field that moved, such as `train.jit_compile`, is named with its new
      place), or a value that does not parse as the field's type.
  """
  for override in overrides:
    if "=" not in override or "." not in override.split("=", 1)[0]:
      raise ValueError(
        f"Bad override {override!r}: expected section.field=value, "
        "e.g. distill.temperature=3."
      )
    key, raw = override.split("=", 1)
    section_name, field_name = key.strip().split(".", 1)
    if section_name not in {f.name for f in dataclasses.fields(config)}:
      raise ValueError(
        f"Bad override {override!r}: unknown section {section_name!r}."
      )
    section = getattr(config, section_name)
    if field_name not in {f.name for f in dataclasses.fields(section)}:
      if _moved_hint(section_name, [field_name]):
        raise ValueError(
          f"Bad override {override!r}: {key.strip()} is now "
          f"runtime.{field_name}; use --override=runtime.{field_name}={raw}."
        )
      raise ValueError(
        f"Bad override {override!r}: section {section_name!r} has no "
        f"field {field_name!r}."
      )
    current = getattr(section, field_name)
    if section_name == "student_model" and current is None:
      # Unset: the value parses as the teachers' field does.
      current = getattr(config.model, field_name)
    # `X | None` fields take "auto"; a student_model field's None means
    # "as the teachers'", not auto.
    auto_type = (
      None
      if section_name == "student_model"
      else _auto_type(type(section), field_name)
    )
    try:
      if auto_type is not None and raw.strip().lower() == AUTO:
        value = None
      elif auto_type is not None:
        value = _parse_value(raw, auto_type())
      else:
        value = _parse_value(raw, current)
    except ValueError as e:
      raise ValueError(f"Bad override {override!r}: {e}") from None
    section = dataclasses.replace(section, **{field_name: value})
    config = dataclasses.replace(config, **{section_name: section})
  return config


def resolve_student_model(config: ExperimentConfig) -> ModelConfig:
  """The student's `ModelConfig`: `model` with `student_model`'s changes."""
  return dataclasses.replace(config.model, **student_model_changes(config))


def student_model_changes(config: ExperimentConfig) -> dict[str, Any]:
  """The `student_model` fields set to other values than the teachers'.

  Empty for a student of the teachers' architecture (the default, and also
  when every set field repeats the teachers' value): the pipeline puts
  exactly these in the student step's parameters, so only a real change of
  architecture changes its cache key.
  """
  changes = {}
  for field in dataclasses.fields(config.student_model):
    value = getattr(config.student_model, field.name)
    if value is not None and value != getattr(config.model, field.name):
      changes[field.name] = value
  return changes


def get_config(
  preset: str = "small", overrides: list[str] | tuple[str, ...] = ()
) -> ExperimentConfig:
  """Returns a named preset with overrides applied."""
  if preset not in PRESETS:
    raise ValueError(
      f"Unknown preset {preset!r}; choose one of {list(PRESETS)}."
    )
  return apply_overrides(PRESETS[preset], overrides)


class ConfigError(ValueError):
  """Config values that cannot run, one line per problem.

  Attributes:
    problems: The problems, each `section.field=value: what is expected`.
  """

  def __init__(self, problems: list[str] | tuple[str, ...]):
    self.problems = tuple(problems)
    super().__init__("\n".join(self.problems))


def _one_of(*choices: Any) -> Callable[[Any], str]:
  listed = ", ".join(repr(c) for c in choices)
  return lambda v: "" if v in choices else f"must be one of {listed}"


def _at_least(low: float) -> Callable[[Any], str]:
  return lambda v: "" if v >= low else f"must be >= {low}"


def _above(low: float) -> Callable[[Any], str]:
  return lambda v: "" if v > low else f"must be > {low}"


def _auto_or(rule: Callable[[Any], str]) -> Callable[[Any], str]:
  """`rule`, with None (auto) also good."""
  return lambda v: "" if v is None else rule(v)


def _flag_or_auto(value: Any) -> str:
  if value is None or isinstance(value, bool):
    return ""
  return "must be true, false or auto"


def _increasing_positive(values: Any) -> str:
  values = tuple(values)
  if all(v >= 1 for v in values) and list(values) == sorted(set(values)):
    return ""
  return "must be increasing positive lengths"


def _in_range(low: float, high: float) -> Callable[[Any], str]:
  return lambda v: "" if low <= v < high else f"must be in [{low}, {high})"


def _between(low: float, high: float) -> Callable[[Any], str]:
  """`low <= v <= high`, the bounds included."""
  return lambda v: "" if low <= v <= high else f"must be in [{low}, {high}]"


def _finite(rule: Callable[[Any], str]) -> Callable[[Any], str]:
  """`rule` for a finite number; NaN and infinities are refused."""
  return lambda v: rule(v) if math.isfinite(v) else "must be a finite number"


def _increasing_lengths(values: Any) -> str:
  values = list(values)
  if all(v >= 1 for v in values) and values == sorted(set(values)):
    return ""
  return "must be strictly increasing lengths >= 1"


# NumPy's seeds (`keras.utils.set_random_seed`) are in [0, 2**32).
_MAX_SEED = 2**32 - 1
# TF Serving's version numbers: non-negative int64.
_MAX_VERSION = 2**63 - 1


def _unset_or(rule: Callable[[Any], str]) -> Callable[[Any], str]:
  """`rule`, or None (a `student_model` field left to the teachers')."""
  return lambda v: "" if v is None else rule(v)


# What `validate` checks, in section order: (section, field, rule), where a
# rule returns "" for a good value and otherwise what a good value is.
# Every field is also checked to have its default's type (`_type_problem`).
_RULES = (
  ("data", "max_passage_len", _at_least(1)),
  ("data", "max_question_len", _at_least(1)),
  ("data", "max_word_len", _at_least(1)),
  ("data", "min_word_count", _at_least(1)),
  ("data", "min_char_count", _at_least(1)),
  ("data", "num_shards", _at_least(1)),
  ("data", "bucket_boundaries", _increasing_lengths),
  ("data", "shuffle_buffer", _at_least(1)),
  ("data", "synthetic_train_size", _at_least(1)),
  ("data", "synthetic_dev_size", _at_least(1)),
  ("data", "tune_top_words", _at_least(0)),
  ("data", "validation_fraction", _in_range(0.0, 1.0)),
  ("data", "adversarial_questions", _at_least(0)),
  ("data", "max_passage_words", _at_least(1)),
  ("model", "word_dim", _at_least(1)),
  ("model", "char_dim", _at_least(1)),
  ("model", "char_hidden", _at_least(1)),
  ("model", "char_encoder", _one_of("bilstm", "cnn")),
  ("model", "hidden", _at_least(1)),
  ("model", "aligner_hops", _at_least(1)),
  ("model", "pointer", _one_of("memory", "rmr")),
  ("model", "pointer_hops", _at_least(1)),
  ("model", "dropout", _in_range(0.0, 1.0)),
  ("model", "max_answer_len", _at_least(1)),
  ("student_model", "word_dim", _unset_or(_at_least(1))),
  ("student_model", "char_dim", _unset_or(_at_least(1))),
  ("student_model", "char_hidden", _unset_or(_at_least(1))),
  ("student_model", "char_encoder", _unset_or(_one_of("bilstm", "cnn"))),
  ("student_model", "hidden", _unset_or(_at_least(1))),
  ("student_model", "aligner_hops", _unset_or(_at_least(1))),
  ("student_model", "pointer", _unset_or(_one_of("memory", "rmr"))),
  ("student_model", "pointer_hops", _unset_or(_at_least(1))),
  ("student_model", "dropout", _unset_or(_in_range(0.0, 1.0))),
  ("train", "batch_size", _at_least(1)),
  ("train", "epochs", _at_least(1)),
  ("train", "learning_rate", _finite(_above(0))),
  ("train", "clipnorm", _finite(_at_least(0))),
  ("train", "seed", _between(0, _MAX_SEED)),
  ("train", "lr_decay", _finite(_above(0))),
  ("train", "early_stopping_patience", _at_least(0)),
  ("teacher", "num_teachers", _at_least(1)),
  ("teacher", "top_k", _at_least(1)),
  ("distill", "temperature", _finite(_above(0))),
  ("distill", "ans_weight", _finite(_at_least(0))),
  ("distill", "att_weight", _finite(_at_least(0))),
  ("distill", "warmup_epochs", _at_least(0)),
  ("distill", "epochs", _at_least(0)),
  ("distill", "attention_hops_map", _one_of(*ATTENTION_HOPS_MAPS)),
  ("export", "version", _between(0, _MAX_VERSION)),
  ("export", "min_f1_vs_single", _between(-100.0, 100.0)),
  ("export", "min_f1_vs_ensemble", _between(-100.0, 100.0)),
  ("runtime", "distribution", _one_of(*DISTRIBUTIONS)),
  ("runtime", "mixed_precision", _one_of(*MIXED_PRECISION_POLICIES)),
  ("runtime", "use_cudnn", _flag_or_auto),
  ("runtime", "deterministic", _flag_or_auto),
  ("runtime", "pad_to_bucket", _flag_or_auto),
  ("runtime", "question_buckets", _increasing_positive),
  ("runtime", "steps_per_execution", _auto_or(_at_least(1))),
  ("runtime", "log_every_steps", _at_least(1)),
)

# Runtime choices that exclude each other, checked after `_RULES`: (the
# fields, the conflicting values, why they conflict and what to do).
_CONFLICTS = (
  (
    ("jit_compile", "deterministic"),
    (True, True),
    "Keras does not compile with XLA under TF op determinism (it would "
    "train without XLA); set one of them false, or deterministic=auto",
  ),
  (
    ("jit_compile", "use_cudnn"),
    (True, True),
    "cuDNN LSTM kernels (CudnnRNNV3) have no XLA implementation; set one "
    "of them false, or use_cudnn=auto",
  ),
)


def _seeds_fit(config: ExperimentConfig) -> str:
  last = config.train.seed + config.teacher.num_teachers
  if last <= _MAX_SEED:
    return ""
  return (
    f"train.seed={config.train.seed}, teacher.num_teachers="
    f"{config.teacher.num_teachers}: the student's seed train.seed + K = "
    f"{last} must be <= {_MAX_SEED}"
  )


def _stagewise_warms_up(config: ExperimentConfig) -> str:
  distill = config.distill
  if not distill.stagewise:
    return ""
  if distill.warmup_epochs < 1:
    return (
      f"distill.stagewise=True, distill.warmup_epochs="
      f"{distill.warmup_epochs}: stage-wise training needs an attention "
      "warm-up of at least 1 epoch (without one it is the -ATT ablation)"
    )
  if not distill.use_att:
    return (
      "distill.stagewise=True, distill.use_att=False: the stage-wise "
      "warm-up trains on ATT alone; it needs distill.use_att=true"
    )
  return ""


# Rules over several fields, checked after `_RULES` when every field has
# its type: each returns "" or the one line naming the fields and values.
_CROSS_RULES = (_seeds_fit, _stagewise_warms_up)


def _type_problem(section: Any, name: str, value: Any) -> str:
  """What is wrong with the type of `value` for field `name`, or "".

  The type is the field default's (a `bool`, `int`, `float`, `str` or
  tuple of ints); a field whose default is None is not checked here.
  Configs built from dicts (`from_dict`, the components' input) and
  overrides both pass through it.
  """
  default = {f.name: f.default for f in dataclasses.fields(section)}[name]
  if default is None:
    return ""
  if isinstance(default, bool):
    ok, what = isinstance(value, bool), "true or false"
  elif isinstance(default, int):
    ok = isinstance(value, int) and not isinstance(value, bool)
    what = "an integer"
  elif isinstance(default, float):
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    what = "a number"
  elif isinstance(default, str):
    ok, what = isinstance(value, str), "a string"
  elif isinstance(default, tuple):
    ok = isinstance(value, tuple) and all(
      isinstance(v, int) and not isinstance(v, bool) for v in value
    )
    what = "a list of integers"
  else:
    return ""
  return "" if ok else f"must be {what}"


def validate(config: ExperimentConfig) -> list[str]:
  """Every problem of `config` that would stop or mislead a run, up front.

  The one place config values are checked: the CLIs and the training entry
  point call `check`, which raises on what this returns. Every field is
  checked to have its default's type; `_RULES` gives each field whose bad
  value would break a step or silently mislead (a length of 0, a negative
  loss weight, a version TF Serving cannot load) its range, and
  `_CROSS_RULES` check fields against each other.

  Args:
    config: A resolved config.

  Returns:
    One line per problem, `section.field=value: what a good value is`, in
    section order; empty when the config can run.
  """
  problems = []
  mistyped = set()
  for section_field in dataclasses.fields(config):
    name = section_field.name
    section = getattr(config, name)
    for field in dataclasses.fields(section):
      value = getattr(section, field.name)
      problem = _type_problem(section, field.name, value)
      if problem:
        mistyped.add((name, field.name))
        problems.append(f"{name}.{field.name}={value!r}: {problem}")
    for rule_section, field, rule in _RULES:
      if rule_section != name or (name, field) in mistyped:
        continue
      value = getattr(section, field)
      problem = rule(value)
      if problem:
        problems.append(f"{name}.{field}={value!r}: {problem}")
  if not mistyped:
    problems += [p for p in (rule(config) for rule in _CROSS_RULES) if p]
    for fields, values, why in _CONFLICTS:
      given = tuple(getattr(config.runtime, f) for f in fields)
      if given == values:
        settings = ", ".join(
          f"runtime.{f}={v!r}" for f, v in zip(fields, given, strict=True)
        )
        problems.append(f"{settings}: {why}")
  return problems


def check(config: ExperimentConfig) -> ExperimentConfig:
  """Returns `config` when it can run.

  Raises:
    ConfigError: With one line per problem `validate` finds.
  """
  problems = validate(config)
  if problems:
    raise ConfigError(problems)
  return config
