"""Training and evaluation (needs the ``train`` extra)."""
