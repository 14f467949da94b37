"""The model bundle: the one artifact between training and deployment.

A folder with ``manifest.json`` and one ONNX graph per stage and precision:

    manifest.json
    fp32/glance_visual.onnx  fp32/glance_audio.onnx  fp32/decide.onnx  fp32/focus_local.onnx  fp32/head.onnx
    fp16/...   int8/...   int8-ort/...

``int8/`` is TensorRT's graph (symmetric Q/DQ); ``int8-ort/`` (the variant's ``ort`` entry) the
one ONNX Runtime runs on a CPU (unsigned activations, its fast integer kernels).

The manifest holds the model config (shapes, preprocessing, labels), every stage's I/O
names, shapes and dtypes, the precision variants with their measured accuracy, the
sha256 of every file, and provenance.

Every stage graph has a dynamic leading batch dimension, written ``-1`` in the manifest's
shapes (TensorRT's and ONNX Runtime's convention for a dynamic dim). A stage batches one
of two units: ``snippets`` (the glance stages: many streams' new snippets, or the T
snippets of a clip, in one call) or ``decisions`` (decide, focus_local, head: one window
per item). Each stage's ``batch`` entry says its unit and the range engines should be
built for (TensorRT optimization profile ``min``/``opt``/``max``); runtimes never send a
bigger batch than ``max`` (they split it). ``load_bundle`` verifies every hash, so a changed
or truncated file is an error, never a silently wrong answer. Tensor names are shared
across stages on purpose: an output and the next stage's input of the same name are one
buffer on the device.

    >>> b = load_bundle("synth")                     # doctest: +SKIP
    >>> b.stage_path("decide", "int8")               # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from .config import ModelConfig
from .errors import BundleError, InputError

FORMAT = "avgn-edge-bundle/2"          # 2: dynamic batch dim in every stage
BATCH = -1                             # the dynamic leading dim in a TensorSpec shape
STAGES = ("glance_visual", "glance_audio", "decide", "focus_local", "head")
PRECISIONS = ("fp32", "fp16", "int8")


@dataclass(frozen=True)
class TensorSpec:
    name: str
    shape: tuple[int, ...]
    dtype: str                      # numpy dtype name: float32, int32, ...

    def to_dict(self):
        return {"name": self.name, "shape": list(self.shape), "dtype": self.dtype}

    def at(self, batch: int) -> tuple[int, ...]:
        """The concrete shape for ``batch`` items."""
        return (int(batch), *self.shape[1:])


@dataclass(frozen=True)
class BatchRange:
    """What one call of a stage batches, and the range engines are built for."""
    unit: str                       # "snippets" | "decisions"
    min: int = 1
    opt: int = 8
    max: int = 64

    def to_dict(self):
        return {"unit": self.unit, "min": self.min, "opt": self.opt, "max": self.max}


# default ranges: a service batches one snippet per stream per tick (and a clip's T snippets),
# and about streams / stride decisions per tick (docs/benchmarks.md measures the choice)
DEFAULT_BATCH = {"snippets": BatchRange("snippets", 1, 16, 64), "decisions": BatchRange("decisions", 1, 8, 32)}


@dataclass(frozen=True)
class StageSpec:
    name: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    batch: BatchRange = DEFAULT_BATCH["decisions"]

    def to_dict(self):
        return {"batch": self.batch.to_dict(), "inputs": [t.to_dict() for t in self.inputs],
                "outputs": [t.to_dict() for t in self.outputs]}


def stage_specs(cfg: ModelConfig, glance_channels: int, glance_map: int, glance_dim: int, audio_dim: int,
                local_dim: int, batch: dict[str, BatchRange] | None = None) -> dict[str, StageSpec]:
    """The I/O contract of every stage: a dynamic leading batch (``BATCH``), the rest static."""
    T, k, g, P, f = cfg.num_snippets, cfg.top_k, cfg.glance_size, cfg.patch_size, "float32"
    C, h, B = glance_channels, glance_map, BATCH
    snip, dec = (batch or DEFAULT_BATCH)["snippets"], (batch or DEFAULT_BATCH)["decisions"]
    t = lambda name, shape, dtype=f: TensorSpec(name, (B, *shape), dtype)
    return {
        "glance_visual": StageSpec("glance_visual", (t("glance", (3, g, g)),),
                                   (t("gmap", (C, h, h)), t("gvec", (glance_dim,))), snip),
        "glance_audio": StageSpec("glance_audio", (t("wave", (cfg.audio_samples,)),), (t("avec", (audio_dim,)),), snip),
        "decide": StageSpec("decide", (t("gmaps", (T, C, h, h)), t("gvecs", (T, glance_dim)), t("avecs", (T, audio_dim))),
                            (t("saliency", (T,)), t("indices", (k,), "int32"), t("centres", (k, 2))), dec),
        "focus_local": StageSpec("focus_local", (t("patches", (k, 3, P, P)),), (t("lvecs", (k, local_dim)),), dec),
        "head": StageSpec("head", (t("gvecs", (T, glance_dim)), t("avecs", (T, audio_dim)), t("lvecs", (k, local_dim)),
                                   t("saliency", (T,)), t("indices", (k,), "int32")),
                          (t("scores", (cfg.num_classes,)),), dec),
    }


def sha256(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass
class Bundle:
    root: Path
    config: ModelConfig
    stages: dict[str, StageSpec]
    variants: dict[str, dict]               # precision -> {"files": {stage: relpath}, "accuracy": {...}, ...}
    files: dict[str, str]                   # relpath -> sha256
    provenance: dict = field(default_factory=dict)

    @property
    def labels(self) -> tuple[str, ...]:
        return self.config.labels

    @property
    def event_defaults(self) -> dict:
        """The event settings tuned for this model (``provenance.events``: EventSettings.to_dict's
        keys, from a validation stream); the command line's flags override them."""
        return self.provenance.get("events", {})

    @property
    def precisions(self) -> list[str]:
        return [p for p in PRECISIONS if p in self.variants]

    def stage_path(self, stage: str, precision: str = "fp32", ort: bool = False) -> Path:
        """The graph TensorRT builds (and Triton serves); ``ort=True``: the one ONNX Runtime runs,
        which differs where the variant has an ``ort`` entry (INT8 for ONNX Runtime's CPU kernels)."""
        if precision not in self.variants:
            raise InputError(f"bundle {self.root} has no {precision} variant",
                             hint=f"available: {', '.join(self.precisions)}; add one with avgn-edge quantize")
        v = self.variants[precision]
        return self.root / (v.get("ort", v) if ort else v)["files"][stage]

    def to_dict(self) -> dict:
        return {"format": FORMAT, "config": self.config.to_dict(),
                "stages": {n: s.to_dict() for n, s in self.stages.items()},
                "variants": self.variants, "files": self.files, "provenance": self.provenance}

    def add_file(self, relpath: str) -> str:
        self.files[relpath] = sha256(self.root / relpath)
        return relpath

    def save(self) -> Path:
        """Write manifest.json atomically (hashes must already be recorded with add_file)."""
        path = self.root / "manifest.json"
        tmp = path.with_name("manifest.json.tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=1))
        os.replace(tmp, path)
        return path

    def verify(self) -> None:
        problems = []
        for rel, digest in self.files.items():
            p = self.root / rel
            if not p.is_file():
                problems.append(f"{rel} is missing")
            elif sha256(p) != digest:
                problems.append(f"{rel} has changed (sha256 mismatch)")
        if problems:
            raise BundleError(f"bundle {self.root} failed verification: " + "; ".join(problems),
                              hint="re-export the bundle (avgn-edge export) or restore the files")


def _spec(d: dict) -> TensorSpec:
    return TensorSpec(d["name"], tuple(d["shape"]), d["dtype"])


def resolve_bundle_path(path: str | os.PathLike) -> Path:
    from .assets import is_shipped, shipped_bundle
    if is_shipped(path):
        return shipped_bundle(str(path))
    return Path(path)


def load_bundle(path: str | os.PathLike, verify: bool = True) -> Bundle:
    """Read and (by default) verify a bundle folder; ``synth`` is the shipped one."""
    root = resolve_bundle_path(path)
    manifest = root / "manifest.json"
    if not manifest.is_file():
        raise BundleError(f"no model bundle at {path} (manifest.json not found)",
                          hint="create one with: avgn-edge export CHECKPOINT --out BUNDLE")
    try:
        data = json.loads(manifest.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleError(f"{manifest} is not valid JSON ({exc})") from None
    if data.get("format") != FORMAT:
        old = data.get("format") == "avgn-edge-bundle/1"
        raise BundleError(f"{manifest} has format {data.get('format')!r}, expected {FORMAT!r}"
                          + (" (format 1 has batch-1 graphs)" if old else ""),
                          hint="re-export it with this version: avgn-edge export CHECKPOINT --out BUNDLE")
    try:
        stages = {n: StageSpec(n, tuple(map(_spec, s["inputs"])), tuple(map(_spec, s["outputs"])),
                               BatchRange(**s["batch"])) for n, s in data["stages"].items()}
        bundle = Bundle(root, ModelConfig.from_dict(data["config"]), stages, data["variants"], data["files"],
                        data.get("provenance", {}))
    except (KeyError, TypeError) as exc:
        raise BundleError(f"{manifest} is malformed (missing {exc})") from None
    missing = [s for s in STAGES if s not in bundle.stages]
    if missing:
        raise BundleError(f"{manifest} lacks stages {missing}")
    if verify:
        bundle.verify()
    return bundle
