"""Checkpoint -> model bundle (ONNX + manifest), parity checks, fast variants."""
