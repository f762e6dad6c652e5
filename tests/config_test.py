"""Tests of the experiment config, presets and overrides."""

import json

import pytest

from a2d_tf import config as config_lib


def test_presets_exist_and_round_trip_through_json():
  for name in ("tiny", "small", "paper"):
    cfg = config_lib.get_config(name)
    again = config_lib.ExperimentConfig.from_dict(json.loads(cfg.to_json()))
    assert again == cfg


def test_paper_preset_follows_the_paper():
  cfg = config_lib.get_config("paper")
  assert cfg.model.hidden == 100
  assert cfg.model.aligner_hops == 3
  assert cfg.model.pointer_hops == 2
  assert cfg.model.word_dim == 300
  assert cfg.teacher.num_teachers == 12
  assert cfg.distill.temperature == 2.0
  assert cfg.distill.ans_weight == 0.3
  assert cfg.distill.att_weight == 0.1


def test_overrides_parse_by_field_type():
  cfg = config_lib.get_config(
    "tiny",
    [
      "distill.temperature=3",
      "distill.use_att=false",
      "train.epochs=7",
      "data.bucket_boundaries=10,20",
    ],
  )
  assert cfg.distill.temperature == 3.0
  assert cfg.distill.use_att is False
  assert cfg.train.epochs == 7
  assert cfg.data.bucket_boundaries == (10, 20)
  assert config_lib.get_config("tiny").distill.temperature == 2.0


@pytest.mark.parametrize(
  "override, message",
  [
    ("temperature=3", "expected section.field=value"),
    ("nope.temperature=3", "unknown section 'nope'"),
    ("distill.nope=3", "has no field 'nope'"),
    ("train.epochs=many", "invalid literal"),
    ("distill.use_kd=maybe", "expected a boolean"),
  ],
)
def test_bad_override_names_the_problem(override, message):
  with pytest.raises(ValueError, match=message):
    config_lib.get_config("tiny", [override])


def test_unknown_preset_and_fields_are_errors():
  with pytest.raises(ValueError, match="Unknown preset 'huge'"):
    config_lib.get_config("huge")
  with pytest.raises(ValueError, match="Unknown config field"):
    config_lib.ExperimentConfig.from_dict({"model": {"size": 3}})
