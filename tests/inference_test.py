"""Tests of batch inference helpers."""

import json

import numpy as np
import pytest

from a2d_tf import inference
from a2d_tf.config import get_config
from a2d_tf.data import dataset as dataset_lib
from a2d_tf.data import features, squad, synthetic
from a2d_tf.data import vocab as vocab_lib
from a2d_tf.models.reader import build_reader, model_inputs

CONFIG = get_config("tiny")


@pytest.fixture(name="dev", scope="module")
def fixture_dev(tmp_path_factory):
  out_dir = tmp_path_factory.mktemp("dev")
  corpus = synthetic.generate_corpus(2, 2, seed=3)
  vocab = vocab_lib.build_vocabulary(corpus["train"], 1, 1, lowercase=True)
  records = corpus["dev"]
  features.write_split(records, vocab, CONFIG.data, str(out_dir), "dev", False)
  squad.write_squad_json(records, str(out_dir / "dev.json"))
  with open(out_dir / "dev.json", encoding="utf-8") as f:
    squad_data = json.load(f)["data"]
  dataset = dataset_lib.make_dataset(
    features.file_pattern(str(out_dir), "dev"),
    CONFIG.data,
    4,
    training=False,
    with_metadata=True,
  )
  return dataset, {r.id: r for r in records}, squad_data, vocab


def test_dev_eval_fn_traces_a_model_once_and_sees_its_new_weights(
  dev, monkeypatch
):
  dataset, records, squad_data, vocab = dev
  made, used = [], []
  make_predict_fn = inference.make_predict_fn
  predict_with = inference._predict_with

  def counting_make(model, *args, **kwargs):
    made.append(model)
    return make_predict_fn(model, *args, **kwargs)

  def recording_predict(predict_fns, *args, **kwargs):
    used.append(predict_fns[0])
    return predict_with(predict_fns, *args, **kwargs)

  monkeypatch.setattr(inference, "make_predict_fn", counting_make)
  monkeypatch.setattr(inference, "_predict_with", recording_predict)
  eval_fn = inference.make_dev_eval_fn(
    dataset, records, squad_data, CONFIG.model.max_answer_len
  )
  model = build_reader(CONFIG.model, vocab.num_words, vocab.num_chars)
  other = build_reader(CONFIG.model, vocab.num_words, vocab.num_chars)

  scores = eval_fn(model)
  assert set(scores) == {"exact_match", "f1"}
  eval_fn(model)
  assert made == [model]
  assert used[0] is used[1]
  # Training changes the weights, not the model: the kept forward pass
  # must read the current values.
  rng = np.random.default_rng(0)
  model.set_weights(
    [rng.normal(0.0, 0.5, w.shape) for w in model.get_weights()]
  )
  eval_fn(model)
  assert made == [model]
  batch = next(iter(dataset))
  np.testing.assert_allclose(
    used[-1](batch)["start_logits"].numpy(),
    model(model_inputs(batch), training=False)["start_logits"].numpy(),
    rtol=1e-5,
    atol=1e-5,
  )
  eval_fn(other)
  assert made == [model, other]


def test_predict_fn_cache_traces_each_model_once_across_calls(dev, monkeypatch):
  dataset, records, _, vocab = dev
  made = []
  make_predict_fn = inference.make_predict_fn

  def counting_make(model, *args, **kwargs):
    made.append(model)
    return make_predict_fn(model, *args, **kwargs)

  monkeypatch.setattr(inference, "make_predict_fn", counting_make)
  first = build_reader(CONFIG.model, vocab.num_words, vocab.num_chars)
  second = build_reader(CONFIG.model, vocab.num_words, vocab.num_chars)
  cache = inference.PredictFnCache()
  max_len = CONFIG.model.max_answer_len

  single, _ = inference.predict([first], dataset, records, max_len, cache)
  ensemble, _ = inference.predict(
    [first, second], dataset, records, max_len, cache
  )
  seconds = inference.time_forward(
    {"single": [first], "ensemble": [first, second]},
    list(dataset),
    repeats=1,
    cache=cache,
  )
  assert made == [first, second]
  assert len(cache) == 2 and cache(first) is cache(first)
  assert set(seconds) == {"single", "ensemble"}
  # Cached functions answer exactly as fresh ones.
  fresh, _ = inference.predict([first, second], dataset, records, max_len)
  assert made == [first, second, first, second]
  assert ensemble == fresh
  assert set(single) == set(records)


def test_dev_eval_under_xla_on_padded_batches_scores_as_without(
  dev, tmp_path, monkeypatch
):
  _, records, squad_data, vocab = dev
  predicted = []
  predict_with = inference._predict_with

  def recording_predict(*args, **kwargs):
    predicted.append(predict_with(*args, **kwargs)[0])
    return predicted[-1], 0.0

  monkeypatch.setattr(inference, "_predict_with", recording_predict)
  config = get_config("tiny", ["runtime.jit_compile=true"])
  grid = dataset_lib.length_grid(config)
  out_dir = tmp_path / "features"
  features.write_split(
    list(records.values()), vocab, config.data, str(out_dir), "dev", False
  )

  def dataset(pad_to):
    return dataset_lib.make_dataset(
      features.file_pattern(str(out_dir), "dev"),
      config.data,
      4,
      training=False,
      with_metadata=True,
      pad_to=pad_to,
    )

  assert {b["passage_ids"].shape[1] for b in dataset(grid)} <= set(grid.passage)
  model = build_reader(
    config.model, vocab.num_words, vocab.num_chars, use_cudnn=False
  )
  plain = inference.make_dev_eval_fn(
    dataset(None), records, squad_data, config.model.max_answer_len
  )
  xla = inference.make_dev_eval_fn(
    dataset(grid),
    records,
    squad_data,
    config.model.max_answer_len,
    jit_compile=True,
  )
  assert xla(model) == pytest.approx(plain(model))
  # The same spans with the same scores, not just the same EM / F1.
  compiled, eager = predicted
  assert set(compiled) == set(eager) == set(records)
  for example_id, prediction in eager.items():
    assert compiled[example_id].text == prediction.text
    assert compiled[example_id].score == pytest.approx(
      prediction.score, rel=1e-4
    )
