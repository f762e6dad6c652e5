"""Tests of the pipeline factory: wiring and what a change re-runs."""

from a2d_tf import config as config_lib
from a2d_tf import kit
from pipelines import pipeline

DOWNSTREAM_OF_KNOWLEDGE = {
  "distill_knowledge_train",
  "distill_knowledge_dev",
  "train_student",
  "evaluate",
  "export",
}


def _plan(overrides=(), **kwargs):
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
    "distill_knowledge_dev",
    "train_student",
    "evaluate",
    "export",
  ]
  knowledge = pipe.node("distill_knowledge_train")
  assert [c.node_id for c in knowledge.inputs["teachers"]] == [
    "train_teacher_0",
    "train_teacher_1",
    "train_teacher_2",
  ]
  seeds = [pipe.node(f"train_teacher_{k}").params["seed"] for k in range(3)]
  assert len(set(seeds)) == 3


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
    assert _changed(before, after) == {"train_student", "evaluate", "export"}


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
  del default["export"]
  assert with_steps == default
