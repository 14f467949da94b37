"""What the repository writer and the Triton backend agree on: model names and config parameters."""

from __future__ import annotations

PREFIX = "avgn_"                       # model names: PREFIX + stage, PREFIX + chain
SHA256 = "avgn_onnx_sha256"            # config parameter: the bundle's ONNX file the model runs (or was built from)
BUNDLE = "avgn_bundle"                 # config parameter: "<model name> <precision>", for messages


def model_name(prefix: str, stage_or_chain: str) -> str:
    return f"{prefix}{stage_or_chain}"
