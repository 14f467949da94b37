"""The ONNX Runtime session an emulated engine runs its graph with (CPU, one thread)."""

from __future__ import annotations


def make_session(onnx_bytes: bytes):
    import onnxruntime as ort
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.log_severity_level = 3
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if b"QuantizeLinear" in onnx_bytes:
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    from ..runtime.ort import FP16_DISABLED_OPTIMIZERS   # (a crash on FP16 graphs; harmless on others)
    return ort.InferenceSession(onnx_bytes, opts, providers=["CPUExecutionProvider"],
                                disabled_optimizers=FP16_DISABLED_OPTIMIZERS)
