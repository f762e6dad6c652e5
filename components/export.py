"""export: the student's serving SavedModel for TF Serving."""

import keras

from a2d_tf import artifacts, kit
from a2d_tf import serving as serving_lib
from a2d_tf.config import ExperimentConfig
from a2d_tf.data.vocab import Vocabulary


@kit.component(
  inputs={"student": "Model", "vocab": "Vocabulary"},
  outputs={"serving": "ServingModel"},
)
def export(
  student: kit.Artifact,
  vocab: kit.Artifact,
  serving: kit.OutputArtifact,
  config: dict,
):
  """Writes `serving/<version>/`, a raw-text SavedModel (see a2d_tf.serving)."""
  cfg = ExperimentConfig.from_dict(config)
  # Loading builds the dropout layers' seed generators afresh, seeded from
  # Keras' global RNG: seeded here, the export's variables are a function
  # of the student and the config, not of what the process ran before.
  keras.utils.set_random_seed(cfg.train.seed)
  reader = keras.saving.load_model(artifacts.model_path(student))
  serving_lib.export_serving_model(
    reader, Vocabulary.load(vocab.uri), cfg, serving.uri, cfg.export.version
  )
  serving.counts["version"] = cfg.export.version
