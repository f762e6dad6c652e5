"""Tests of the Model-artifact helpers the two train steps share."""

import json

from a2d_tf import kit, model_artifacts, training


def test_finish_model_records_the_selection_and_drops_best_weights(tmp_path):
  out = kit.OutputArtifact("Model", str(tmp_path))
  best = tmp_path / training.BEST_DIR
  best.mkdir()
  (best / training.BestEpoch.WEIGHTS).write_bytes(b"x")
  (best / training.BestEpoch.RECORD).write_text(
    json.dumps(
      {
        "monitor": "validation_f1",
        "best_epoch": 2,
        "best_value": 41.234,
        "epochs_run": 3,
      }
    )
  )
  (tmp_path / training.FINAL_MODEL).write_bytes(b"y")
  model_artifacts.finish_model(out, 7)
  assert out.counts == {
    "seed": 7,
    "best_epoch": 2,
    "epochs_run": 3,
    "validation_f1": 41.23,
  }
  assert not best.exists()
  assert (tmp_path / training.FINAL_MODEL).exists()


def test_finish_model_without_validation_records_the_seed_only(tmp_path):
  out = kit.OutputArtifact("Model", str(tmp_path))
  model_artifacts.finish_model(out, 3)
  assert out.counts == {"seed": 3}
