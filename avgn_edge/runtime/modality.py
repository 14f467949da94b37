"""What carried a decision: ``heard`` (the sound), ``seen`` (the picture) or ``both``.

From the model itself: its audio-only and glance-only heads (trained with it, on the same
snippet features as the fusion head) score the window's sound alone and its picture alone.
A bundle exported with them holds ``modality.onnx`` (gvecs, avecs -> heard, seen class
probabilities); the host pipeline runs it next to the head. For the decided label: ``heard``
when the sound alone gives it at least ``CARRY`` and the picture alone does not, ``seen`` the
other way round, ``both`` when each alone gives it or neither does (only the two together).
"""

from __future__ import annotations

import numpy as np

FILE = "modality.onnx"
CARRY = 0.5
KINDS = ("heard", "seen", "both")


def carried(heard: float, seen: float, threshold: float = CARRY) -> str:
    a, v = heard >= threshold, seen >= threshold
    if a and not v:
        return "heard"
    if v and not a:
        return "seen"
    return "both"


def carried_for(result, index: int) -> str | None:
    """heard / seen / both for class ``index`` of a Result; None when the bundle has no modality graph."""
    if result.heard is None or result.seen is None:
        return None
    return carried(float(result.heard[index]), float(result.seen[index]))


class ModalityRunner:
    """ONNX Runtime session on the bundle's modality graph (CPU: two small MLPs)."""

    def __init__(self, path):
        import onnxruntime as ort
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])

    def __call__(self, gvecs: np.ndarray, avecs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        heard, seen = self.session.run(["heard", "seen"], {"gvecs": np.ascontiguousarray(gvecs, np.float32),
                                                           "avecs": np.ascontiguousarray(avecs, np.float32)})
        return heard, seen


def for_bundle(bundle) -> ModalityRunner | None:
    return ModalityRunner(bundle.root / FILE) if FILE in bundle.files else None
