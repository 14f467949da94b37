"""ONNX Runtime backend: one session per stage (CPU; the CUDA provider where installed)."""

from __future__ import annotations

import numpy as np

from ..bundle import STAGES, Bundle

# ONNX Runtime's NCHWc layout pass segfaults on the FP16 decide graph with a dynamic batch (seen
# with 1.32 while creating the session); it is an FP32-CPU layout pass anyway
FP16_DISABLED_OPTIMIZERS = ["NchwcTransformer"]


class OrtBackend:
    """Q/DQ (int8) graphs run with graph optimisations off by default: ONNX Runtime then
    computes the exact fake-quantised arithmetic TensorRT will run, instead of its own
    saturating integer kernels (which distort results on CPUs without VNNI). Pass
    ``optimize=True`` to measure ONNX Runtime's own INT8 speed."""

    name = "ort"

    def __init__(self, bundle: Bundle, precision: str = "fp32", threads: int | None = None,
                 optimize: bool | None = None, providers: list[str] | None = None):
        import onnxruntime as ort

        self.precision = precision
        available = ort.get_available_providers()
        self.providers = providers or [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]
        self.sessions = {}
        for stage in STAGES:
            st = session_settings(stage, precision, threads, optimize)
            self.sessions[stage] = ort.InferenceSession(str(bundle.stage_path(stage, precision)), _options(ort, st),
                                                        providers=self.providers,
                                                        disabled_optimizers=st["disabled_optimizers"] or None)
        self.outputs = {s: [o.name for o in sess.get_outputs()] for s, sess in self.sessions.items()}

    def run(self, stage: str, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return dict(zip(self.outputs[stage], self.sessions[stage].run(self.outputs[stage], feeds)))

    def close(self) -> None:
        self.sessions.clear()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def session_settings(stage: str, precision: str, threads: int | None = None, optimize: bool | None = None) -> dict:
    """How a stage's session is set up, as plain values (the Triton Python-backend models of
    ``avgn-edge export-triton`` apply the same ones, so a server computes what this backend does)."""
    # The per-snippet stages and the decision's small graphs are faster on one thread (the
    # pool's hand-off costs more than they compute: measured 6.2 vs 7.8 ms per clip); the
    # local encoder, the one stage with real work, gets all cores.
    return {"threads": threads if threads is not None else (0 if stage == "focus_local" else 1),
            "optimize": precision != "int8" if optimize is None else bool(optimize),
            "disabled_optimizers": FP16_DISABLED_OPTIMIZERS if precision == "fp16" else []}


def _options(ort, settings: dict):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = settings["threads"]
    opts.log_severity_level = 3
    # Don't let idle pool threads spin: the pipeline interleaves small ONNX Runtime calls with
    # NumPy work (the crop) on the same cores, and spinning threads starve it (measured: the
    # crop went from 0.4 ms alone to 6 ms between sessions).
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.graph_optimization_level = (ort.GraphOptimizationLevel.ORT_ENABLE_ALL if settings["optimize"]
                                     else ort.GraphOptimizationLevel.ORT_DISABLE_ALL)
    return opts
