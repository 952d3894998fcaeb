"""Data preparation, synthetic corpus, networks and training (needs the `train` extra)."""
