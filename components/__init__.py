"""Pipeline components: one file per step, thin wrappers over a2d_tf."""
