"""The RMR reader and the A2D student."""
