"""Tests of the pipeline factory: wiring and what a change re-runs."""

import pathlib

import pytest

from a2d_tf import config as config_lib
from a2d_tf import kit
from a2d_tf.kit import code
from pipelines import pipeline

ROOT = pathlib.Path(__file__).resolve().parent.parent

DOWNSTREAM_OF_KNOWLEDGE = {
  "distill_knowledge_train",
  "distill_knowledge_validation",
  "train_student",
  "evaluate",
  "export",
  "validate_model",
}
# What a new student re-runs.
DOWNSTREAM_OF_STUDENT = {
  "train_student",
  "evaluate",
  "export",
  "validate_model",
}


def _plan(overrides=(), **kwargs):
  """Node id -> fingerprint of the tiny pipeline (two teachers)."""
  config = config_lib.get_config("tiny", list(overrides))
  return kit.plan(pipeline.create_pipeline(config, **kwargs))


def _changed(before, after):
  return {node for node in after if before.get(node) != after[node]}


def test_pipeline_has_one_node_per_step_and_teacher():
  config = config_lib.get_config("tiny", ["teacher.num_teachers=3"])
  pipe = pipeline.create_pipeline(config)
  assert [n.id for n in pipe.nodes] == [
    "example_gen",
    "transform",
    "train_teacher_0",
    "train_teacher_1",
    "train_teacher_2",
    "distill_knowledge_train",
    "distill_knowledge_validation",
    "train_student",
    "evaluate",
    "export",
    "validate_model",
  ]
  knowledge = pipe.node("distill_knowledge_train")
  assert [c.node_id for c in knowledge.inputs["teachers"]] == [
    "train_teacher_0",
    "train_teacher_1",
    "train_teacher_2",
  ]
  seeds = [pipe.node(f"train_teacher_{k}").params["seed"] for k in range(3)]
  assert len(set(seeds)) == 3


def test_without_a_validation_split_there_is_no_validation_knowledge():
  config = config_lib.get_config("tiny", ["data.validation_fraction=0"])
  pipe = pipeline.create_pipeline(config)
  ids = [n.id for n in pipe.nodes]
  assert "distill_knowledge_validation" not in ids
  assert pipe.node("train_student").inputs["validation_knowledge"] == []
  with_split = pipeline.create_pipeline(config_lib.get_config("tiny"))
  (channel,) = with_split.node("train_student").inputs["validation_knowledge"]
  assert channel.node_id == "distill_knowledge_validation"


def test_evaluate_reads_the_training_knowledge_not_dev_knowledge():
  pipe = pipeline.create_pipeline(config_lib.get_config("tiny"))
  evaluate = pipe.node("evaluate")
  assert evaluate.inputs["knowledge"].node_id == "distill_knowledge_train"
  assert not any(n.params.get("split") == "dev" for n in pipe.nodes)


def test_student_epochs_rerun_the_student_only():
  before = _plan()
  after = _plan(["distill.epochs=5"])
  assert _changed(before, after) == DOWNSTREAM_OF_STUDENT


def test_new_temperature_reruns_knowledge_and_after_only():
  before = _plan()
  after = _plan(["distill.temperature=3"])
  assert _changed(before, after) == DOWNSTREAM_OF_KNOWLEDGE


def test_new_loss_weight_or_ablation_reruns_student_and_after_only():
  before = _plan()
  for override in (
    "distill.ans_weight=0.5",
    "distill.use_att=false",
    "distill.stagewise=true",
  ):
    after = _plan([override])
    assert _changed(before, after) == DOWNSTREAM_OF_STUDENT


def test_more_teachers_keep_the_trained_ones():
  before = _plan(["teacher.num_teachers=2"])
  after = _plan(["teacher.num_teachers=3"])
  assert (
    _changed(before, after) == {"train_teacher_2"} | DOWNSTREAM_OF_KNOWLEDGE
  )


def test_model_change_retrains_but_keeps_data():
  before = _plan()
  after = _plan(["model.hidden=20"])
  assert "example_gen" not in _changed(before, after)
  assert "transform" not in _changed(before, after)
  assert "train_teacher_0" in _changed(before, after)


def test_log_dirs_and_runner_options_change_nothing():
  before = _plan()
  after = _plan(
    tensorboard_root="/elsewhere",
    beam_pipeline_args=["--runner=DataflowRunner"],
  )
  assert _changed(before, after) == set()


def test_analysis_and_export_are_optional_steps():
  config = config_lib.get_config("tiny")
  pipe = pipeline.create_pipeline(
    config, with_export=False, with_analysis=True, tensorboard_root="/tb"
  )
  ids = [n.id for n in pipe.nodes]
  assert ids[-2:] == ["evaluate", "analyze"] and "export" not in ids
  assert "validate_model" not in ids
  analyze = pipe.node("analyze")
  assert analyze.inputs["evaluation"].node_id == "evaluate"
  assert analyze.inputs["student"].node_id == "train_student"
  assert [c.node_id for c in analyze.inputs["teachers"]] == [
    "train_teacher_0",
    "train_teacher_1",
  ]
  assert analyze.params["tensorboard_dir"] == "/tb/analysis"
  # The optional steps change no other step's fingerprint.
  with_steps = kit.plan(pipe)
  del with_steps["analyze"]
  default = _plan()
  del default["export"], default["validate_model"]
  assert with_steps == default


def test_runtime_overrides_rerun_nothing():
  before = _plan()
  overrides = [
    "runtime.run_eagerly=true",
    "runtime.jit_compile=true",
    "runtime.steps_per_execution=4",
    "runtime.mixed_precision=mixed_bfloat16",
    "runtime.distribution=mirrored",
  ]
  assert _changed(before, _plan(overrides)) == set()
  pipe = pipeline.create_pipeline(config_lib.get_config("tiny", overrides))
  for node_id in ("train_teacher_0", "train_student"):
    runtime = pipe.node(node_id).params["runtime"]
    assert runtime["run_eagerly"] is True and runtime["jit_compile"] is True
    assert "runtime" not in pipe.node(node_id).params["config"]


def _plan_with_edit(monkeypatch, edited: str) -> dict:
  """The plan as it would be after appending a comment to file `edited`."""
  read_source = code.read_source

  def read(path):
    text = read_source(path)
    if path.resolve() == (ROOT / edited).resolve():
      text += "\n# edited\n"
    return text

  monkeypatch.setattr(code, "read_source", read)
  try:
    return _plan(with_analysis=True, push_destination="/serving")
  finally:
    monkeypatch.setattr(code, "read_source", read_source)


def test_editing_figures_or_report_keeps_the_teachers(monkeypatch):
  before = _plan(with_analysis=True, push_destination="/serving")
  after = _plan_with_edit(monkeypatch, "a2d_tf/figures.py")
  assert _changed(before, after) == {"analyze"}
  after = _plan_with_edit(monkeypatch, "a2d_tf/report.py")
  # The analysis reads the evaluation's predictions; the blessing reads
  # its report, and the push the blessing.
  assert _changed(before, after) == {
    "evaluate",
    "analyze",
    "validate_model",
    "push",
  }


def test_editing_a_layer_retrains_every_model(monkeypatch):
  before = _plan(with_analysis=True, push_destination="/serving")
  after = _plan_with_edit(monkeypatch, "a2d_tf/layers/fusion.py")
  assert _changed(before, after) == {
    "train_teacher_0",
    "train_teacher_1",
    *DOWNSTREAM_OF_KNOWLEDGE,
    "analyze",
    "push",  # its inputs, the export and the blessing, changed
  }


def test_push_publishes_the_export_when_given_a_destination():
  config = config_lib.get_config("tiny")
  pipe = pipeline.create_pipeline(config, push_destination="/srv/a2d")
  assert [n.id for n in pipe.nodes][-3:] == ["export", "validate_model", "push"]
  push = pipe.node("push")
  assert push.inputs["serving"].node_id == "export"
  assert push.inputs["blessing"].node_id == "validate_model"
  gate = pipe.node("validate_model")
  assert gate.inputs["evaluation"].node_id == "evaluate"
  assert gate.inputs["serving"].node_id == "export"
  assert push.params == {"push_destination": "/srv/a2d"}
  assert push.component.always_run
  with_push = kit.plan(pipe)
  del with_push["push"]
  assert with_push == _plan()
  # No destination (Kubeflow) or no export (ablations): no push step.
  assert "push" not in [n.id for n in pipeline.create_pipeline(config).nodes]
  no_export = pipeline.create_pipeline(
    config, with_export=False, push_destination="/srv/a2d"
  )
  assert "push" not in [n.id for n in no_export.nodes]


def test_evaluate_receives_the_run_sections_its_report_records():
  # report.json's config is the evaluate step's `config` parameter as is.
  config = config_lib.get_config("tiny", ["teacher.num_teachers=2"])
  received = pipeline.create_pipeline(config).node("evaluate").params["config"]
  assert sorted(received) == ["data", "distill", "model", "teacher", "train"]
  full = config.to_dict()
  for name, section in received.items():
    # The ATT hop mapping enters only with a student of other hop counts.
    assert set(full[name]) - set(section) <= {"attention_hops_map"}, name
    assert all(section[k] == full[name][k] for k in section), name
  assert received["teacher"]["num_teachers"] == 2


def test_only_the_train_steps_are_resumable():
  pipe = pipeline.create_pipeline(config_lib.get_config("tiny"))
  resumable = {n.id for n in pipe.nodes if n.component.resumable}
  assert resumable == {"train_teacher_0", "train_teacher_1", "train_student"}


def test_new_blessing_threshold_rejudges_the_blessing_only():
  before = _plan(push_destination="/serving")
  for override in ("export.min_f1_vs_single=0", "export.min_f1_vs_ensemble=-2"):
    after = _plan([override], push_destination="/serving")
    assert _changed(before, after) == {"validate_model", "push"}
  after = _plan(["export.version=2"], push_destination="/serving")
  assert _changed(before, after) == {"export", "validate_model", "push"}


def test_evaluation_serving_and_blessing_are_the_run_outputs():
  pipe = pipeline.create_pipeline(config_lib.get_config("tiny"))
  assert [(c.node_id, c.key) for c in pipe.outputs] == [
    ("evaluate", "evaluation"),
    ("export", "serving"),
    ("validate_model", "blessing"),
  ]


STUDENT_AND_AFTER = {"train_student", "evaluate", "export", "validate_model"}
_TINY_HIDDEN = config_lib.get_config("tiny").model.hidden


def _keys(value):
  """Every dict key in a nested params value."""
  if isinstance(value, dict):
    return set(value) | {k for v in value.values() for k in _keys(v)}
  if isinstance(value, list):
    return {k for v in value for k in _keys(v)}
  return set()


def test_default_student_keeps_every_cache_key_it_had():
  # A teacher-sized student (the default) puts neither the student's
  # architecture nor the ATT hop mapping into any step's parameters: every
  # fingerprint is the one the pipeline had before they existed (compared
  # with the previous main by hand, with code versions pinned).
  for preset in config_lib.PRESETS:
    pipe = pipeline.create_pipeline(
      config_lib.get_config(preset),
      with_analysis=True,
      push_destination="/serving",
    )
    for node in pipe.nodes:
      keys = _keys(node.params)
      assert "student_model" not in keys, (preset, node.id)
      assert "attention_hops_map" not in keys, (preset, node.id)
  same = _plan([f"student_model.hidden={_TINY_HIDDEN}"])
  assert same == _plan()
  # With equal hop counts the mapping changes no loss, and no key.
  assert _plan(["distill.attention_hops_map=last"]) == _plan()


def test_smaller_student_reruns_the_student_only():
  before = _plan(push_destination="/serving")
  after = _plan(
    [f"student_model.hidden={_TINY_HIDDEN // 2}"],
    push_destination="/serving",
  )
  assert _changed(before, after) == STUDENT_AND_AFTER | {"push"}
  pipe = pipeline.create_pipeline(
    config_lib.get_config("tiny", [f"student_model.hidden={_TINY_HIDDEN // 2}"])
  )
  for node_id in ("train_student", "evaluate"):
    config = pipe.node(node_id).params["config"]
    assert config["student_model"] == {"hidden": _TINY_HIDDEN // 2}
    assert config["model"]["hidden"] == _TINY_HIDDEN
  teacher = pipe.node("train_teacher_0").params["config"]
  assert "student_model" not in teacher


def test_student_hops_bring_the_hop_mapping_into_the_student_key():
  fewer = "student_model.aligner_hops=1"
  proportional = _plan([fewer])
  assert _changed(_plan(), proportional) == STUDENT_AND_AFTER
  last = _plan([fewer, "distill.attention_hops_map=last"])
  assert _changed(proportional, last) == STUDENT_AND_AFTER
  pipe = pipeline.create_pipeline(config_lib.get_config("tiny", [fewer]))
  distill = pipe.node("train_student").params["config"]["distill"]
  assert distill["attention_hops_map"] == "proportional"
  knowledge = pipe.node("distill_knowledge_train").params["config"]
  assert "attention_hops_map" not in _keys(knowledge)


def test_glove_for_a_student_of_another_word_dim_is_refused():
  config = config_lib.get_config("tiny", ["student_model.word_dim=12"])
  with pytest.raises(ValueError, match="student_model.word_dim=12 with"):
    pipeline.create_pipeline(config, glove_file="glove.txt")
  # Without pretrained vectors it learns its own.
  assert pipeline.create_pipeline(config).node("train_student")
