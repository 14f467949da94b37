"""Checkpoint -> model bundle: per-stage ONNX graphs, parity-checked (needs the ``train`` extra)."""
