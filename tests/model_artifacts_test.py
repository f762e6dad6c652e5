"""Tests of the Model-artifact helpers the two train steps share."""

from a2d_tf import kit, model_artifacts, training


class _Counting:
  def __init__(self):
    self.calls = []

  def __call__(self, model):
    self.calls.append(model)
    return {"exact_match": 10.0 * len(self.calls), "f1": 12.345}


def test_dev_eval_reuses_the_last_epoch_for_final_scores():
  fn = _Counting()
  dev_eval = model_artifacts.DevEval(fn)
  dev_eval("epoch1")
  dev_eval("epoch2")
  assert dev_eval.final_scores("final") == {"exact_match": 20.0, "f1": 12.345}
  assert fn.calls == ["epoch1", "epoch2"]


def test_dev_eval_scores_when_no_epoch_ran():
  fn = _Counting()
  scores = model_artifacts.DevEval(fn).final_scores("model")
  assert scores["exact_match"] == 10.0
  assert fn.calls == ["model"]


def test_finish_model_records_scores_and_drops_best_checkpoint(tmp_path):
  out = kit.OutputArtifact("Model", str(tmp_path))
  (tmp_path / training.BEST_MODEL).write_bytes(b"x")
  (tmp_path / training.FINAL_MODEL).write_bytes(b"y")
  dev_eval = model_artifacts.DevEval(_Counting())
  dev_eval("last epoch")
  model_artifacts.finish_model(out, 7, dev_eval, "reader")
  assert out.counts == {"seed": 7, "dev_exact_match": 10.0, "dev_f1": 12.35}
  assert not (tmp_path / training.BEST_MODEL).exists()
  assert (tmp_path / training.FINAL_MODEL).exists()
