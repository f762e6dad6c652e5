"""Compiles the a2d pipeline into a Kubeflow Pipelines v2 YAML.

  python -m pipelines.kubeflow_runner --image=REGISTRY/a2d:TAG \\
      --output=a2d_pipeline.yaml --preset=small --num_teachers=4

Works out the config and paths, builds the same `kit.Pipeline` that
`local_runner` runs (`pipeline.create_pipeline`) and hands it to the kit's
Kubeflow adapter (`a2d_tf.kit.kubeflow`): one KFP task per step and per
teacher, each running in `--image` (a container image with a2d and its
requirements installed). The serving model is the run's `export_serving`
output; the push step is the local runner's.

Data paths (`--train_file`, `--glove_file`, ...) must be readable from the
pipeline's pods (e.g. gs:// or a mounted volume). Where this machine can read
them too, their digest keys the cache of `example_gen` and `transform`.
"""

from __future__ import annotations

import os

from absl import app, flags

from pipelines import cli

# The shared flags show in `--help` as this CLI's own.
flags.adopt_module_key_flags(cli)

_OUTPUT = flags.DEFINE_string(
  "output", "a2d_pipeline.yaml", "Where the pipeline YAML goes."
)
_IMAGE = flags.DEFINE_string(
  "image",
  "",
  "Container image with a2d and requirements.txt installed (required).",
)
_TENSORBOARD_ROOT = flags.DEFINE_string(
  "tensorboard_root",
  "",
  "TensorBoard log root the pods can write (e.g. gs://bucket/a2d/tb); "
  '"" keeps the logs inside the model artifacts.',
)


def run(argv_extra: list[str]) -> int:
  """Resolves the config, builds the kit pipeline and compiles it."""
  if not _IMAGE.value:
    raise ValueError("--image is required: an image with a2d installed.")
  if flags.FLAGS["output_dir"].present:
    raise ValueError(
      "--output_dir is for the local runners; on Kubeflow artifacts go to "
      "the pipeline root, and --output names the YAML."
    )
  # The data files are paths the pods read; they need not exist here.
  inputs = cli.resolve(argv_extra, check_files=False)
  config = inputs.config

  from a2d_tf.kit import kubeflow
  from pipelines import pipeline

  pipe = pipeline.create_pipeline(
    config,
    tensorboard_root=_TENSORBOARD_ROOT.value,
    **cli.pipeline_kwargs(inputs),
  )
  output = os.path.abspath(_OUTPUT.value)
  os.makedirs(os.path.dirname(output), exist_ok=True)
  kubeflow.compile_pipeline(
    pipe,
    _IMAGE.value,
    output,
    description=(
      f"a2d: K={config.teacher.num_teachers} teachers distilled into one "
      f"student (preset {cli.PRESET.value}, {inputs.describe_dataset()})."
    ),
  )
  print(
    f"a2d: wrote {output} ({len(pipe.nodes)} tasks, "
    f"{config.teacher.num_teachers} teachers, image {_IMAGE.value})",
    flush=True,
  )
  return 0


def main(argv: list[str]) -> int:
  return cli.main(run, argv)


if __name__ == "__main__":
  app.run(main, flags_parser=cli.parse_flags)
