"""A labelled *prediction* of TensorRT latency on Jetson Orin, from GFLOPs and published figures.

Nothing here is measured on a Jetson. Per precision, a line t = a + b * GMACs is fitted
through two published TensorRT 10.3 batch-1 latencies on Orin Nano 8GB (MAXN_SUPER,
JetPack 6): MobileNetV2 (0.30 GMACs) and ResNet-50 (4.1 GMACs) at 224 px
(shared/notes/jetson-perf.md, from onnxsim/onnxsim scripts/nvidia/README.md). ``a`` is
the fixed cost of a small engine, ``b`` the marginal cost of compute. AGX Orin is scaled by
the ratio of published ResNet-50 INT8 latencies (MLPerf v3.1 SingleStream: 0.636 ms AGX
vs 1.19 ms Nano). Tiny stages land on the fixed cost, so treat their predictions as
upper-bound-ish guesses; measure with ``avgn-edge bench --backend trt`` on the device.
"""

from __future__ import annotations

PUBLISHED = {  # model: (GMACs, {precision: ms}) Orin Nano 8GB MAXN_SUPER, TRT 10.3, bs 1
    "MobileNetV2": (0.30, {"fp16": 0.850, "int8": 0.781}),
    "ResNet-50": (4.1, {"fp16": 1.814, "int8": 1.190}),
}
AGX_OVER_NANO = 0.636 / 1.190     # ResNet-50 INT8: AGX Orin 64GB MLPerf SingleStream vs Orin Nano Super


def fit(precision: str) -> tuple[float, float]:
    (g1, t1), (g2, t2) = ((g, ms[precision]) for g, ms in PUBLISHED.values())
    b = (t2 - t1) / (g2 - g1)
    return t1 - b * g1, b


def predict_ms(gmacs: float, precision: str = "fp16", device: str = "orin_nano_super") -> float:
    a, b = fit(precision)
    t = a + b * gmacs
    return round(t * (AGX_OVER_NANO if device == "agx_orin" else 1.0), 3)


def predict_stages(gflops: dict[str, float], T: int, stride: int) -> dict:
    """Per stage and per decision (stride new snippets + decide, focus, head), per device and precision."""
    per_snippet = ("glance_visual", "glance_audio")
    per_decision = ("decide", "focus_local", "head")
    out = {}
    for device in ("orin_nano_super", "agx_orin"):
        for p in ("fp16", "int8"):
            # the bundle's GFLOPs are per clip: the glance stages run T times per clip
            stage = {s: predict_ms(gflops[s] / (T if s in per_snippet else 1), p, device) for s in per_snippet + per_decision}
            decision = stride * (stage["glance_visual"] + stage["glance_audio"]) + sum(stage[s] for s in per_decision)
            out[f"{device}/{p}"] = {"stages_ms": stage, "decision_ms": round(decision, 3)}
    return out
