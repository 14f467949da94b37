"""Model configuration and named presets (no torch here: the runtime reads this too).

A ``ModelConfig`` holds everything that fixes the shapes of the stages and the meaning
of their inputs: snippet count T, top-k, frame/glance/patch sizes, the audio window,
the preprocessing and the labels. It travels with checkpoints and bundles as JSON.

    >>> cfg = get_preset("tiny")
    >>> cfg.audio_samples
    2000
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Callable

from .errors import InputError

BACKGROUND = "background"    # the label of the no-event outcome: it never opens an event
# The synth presets' vocabulary: 4 sound families x 3 visual patterns, + no event. data/synth.py draws
# its clips from these names (and a test holds its FAMILIES x PATTERNS to them).
SYNTH_CLASSES = tuple(f"{f}-{p}" for f in ("bell", "buzz", "chirp", "hum")
                      for p in ("vstripes", "hstripes", "checker")) + (BACKGROUND,)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class ModelConfig:
    name: str
    labels: tuple[str, ...]
    num_snippets: int = 8                # T: snippets per decision window
    top_k: int = 2                       # k: snippets that get a full-resolution patch
    frame_size: int = 128                # full-resolution (square) frame side, pixels
    glance_size: int = 32                # low-resolution glance side
    patch_size: int = 32                 # P: patch side, in full-resolution pixels
    snippet_period: float = 0.25         # seconds between snippets (the snippet clock)
    sample_rate: int = 16000
    audio_window: float = 0.25           # seconds of audio ending at each snippet's frame
    n_fft: int = 400
    hop: int = 160
    n_mels: int = 40
    # glance visual encoder: torchvision MobileNetV2 with this width and block setting
    glance_width: float = 0.5
    glance_blocks: tuple[tuple[int, int, int, int], ...] = (
        (1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 2, 1), (6, 64, 2, 1))
    # audio encoder CNN channels
    audio_channels: tuple[int, ...] = (16, 32, 64)
    audio_dim: int = 64
    # AV-TeST
    d_model: int = 64
    heads: int = 4
    layers: int = 2
    # AESPA / policy
    aespa_dim: int = 32
    # local encoder: torchvision ResNet of this depth, first `local_stages` stages
    local_depth: int = 10
    local_stages: int = 3
    head_hidden: int = 128
    # "lite0": the three encoders are ImageNet EfficientNet-Lite0 trunks (model/lite.py) of these
    # many blocks, replacing the MobileNetV2 / CNN / ResNet settings above
    encoder: str = "torchvision"
    lite_blocks: tuple[int, int, int] = (8, 8, 11)   # glance, audio, local
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD

    def __post_init__(self):
        problems = []
        if not 1 <= self.top_k <= self.num_snippets:
            problems.append(f"top_k must be in [1, num_snippets={self.num_snippets}], got {self.top_k}")
        if self.patch_size > self.frame_size:
            problems.append(f"patch_size {self.patch_size} exceeds frame_size {self.frame_size}")
        if self.audio_samples < self.n_fft:
            problems.append(f"audio window ({self.audio_samples} samples) is shorter than n_fft {self.n_fft}")
        if self.encoder not in ("torchvision", "lite0"):
            problems.append(f"encoder must be torchvision or lite0, got {self.encoder!r}")
        elif self.encoder == "lite0" and not all(1 <= b <= 16 for b in self.lite_blocks):
            problems.append(f"lite_blocks must each keep 1..16 Lite0 blocks, got {self.lite_blocks}")
        if self.local_depth not in (10, 18, 34, 50, 101) or not 1 <= self.local_stages <= 4:
            problems.append(f"local encoder resnet{self.local_depth} with {self.local_stages} stages is not supported")
        if len(self.labels) < 2:
            problems.append("a model needs at least two labels")
        if problems:
            raise InputError("invalid model config: " + "; ".join(problems))

    @property
    def num_classes(self) -> int:
        return len(self.labels)

    @property
    def audio_samples(self) -> int:
        return int(round(self.audio_window * self.sample_rate))

    @property
    def background_index(self) -> int | None:
        """Index of the ``background`` label (no event), None for a model without one."""
        return self.labels.index(BACKGROUND) if BACKGROUND in self.labels else None

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "ModelConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise InputError(f"unknown model config fields: {sorted(unknown)}")
        kw = {}
        for f in dataclasses.fields(cls):
            if f.name in data:
                v = data[f.name]
                kw[f.name] = _tupleize(v) if isinstance(v, list) else v
        return cls(**kw)

    def replace(self, **changes) -> "ModelConfig":
        return dataclasses.replace(self, **changes)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)


def _tupleize(v):
    return tuple(_tupleize(x) if isinstance(x, list) else x for x in v)


_PRESETS: dict[str, Callable[[], ModelConfig]] = {}


def register_preset(fn: Callable[[], ModelConfig]) -> Callable[[], ModelConfig]:
    _PRESETS[fn.__name__] = fn
    return fn


def list_presets() -> list[str]:
    return sorted(_PRESETS)


def get_preset(name: str, **overrides) -> ModelConfig:
    if name not in _PRESETS:
        raise InputError(f"unknown preset {name!r}", hint=f"choose one of: {', '.join(list_presets())}")
    cfg = _PRESETS[name]()
    return cfg.replace(**overrides) if overrides else cfg


def _synth_labels() -> tuple[str, ...]:
    return SYNTH_CLASSES


@register_preset
def tiny() -> ModelConfig:
    """For tests: T=4, k=1, 64-px frames, forward in milliseconds."""
    return ModelConfig(
        name="tiny", labels=_synth_labels(), num_snippets=4, top_k=1, frame_size=64,
        glance_size=16, patch_size=24, audio_window=0.125, glance_width=0.25,
        glance_blocks=((1, 16, 1, 1), (6, 24, 1, 2), (6, 32, 1, 1)),
        audio_channels=(8, 16), audio_dim=32, d_model=32, heads=2, layers=1, aespa_dim=16,
        local_depth=10, local_stages=2, head_hidden=64)


@register_preset
def synth() -> ModelConfig:
    """The shipped demo model, trained on the synthetic benchmark on a CPU."""
    return ModelConfig(name="synth", labels=_synth_labels())


HOME_LABELS = ("alarm", "dog", "glass_break", "speech", "vehicle", BACKGROUND)


@register_preset
def home() -> ModelConfig:
    """Real events (dog, glass_break, alarm, vehicle, speech): ImageNet EfficientNet-Lite0 trunks from
    a PyPI wheel as glance, audio (on log-mel) and local encoders; 4 s windows of 8 snippets."""
    return ModelConfig(
        name="home", labels=HOME_LABELS, num_snippets=8, top_k=2, frame_size=128, glance_size=64,
        patch_size=64, snippet_period=0.5, audio_window=0.5, n_fft=400, hop=160, n_mels=64,
        encoder="lite0", lite_blocks=(8, 8, 11), audio_dim=128, d_model=64, heads=4, layers=2,
        aespa_dim=32, head_hidden=128, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))


@register_preset
def paper() -> ModelConfig:
    """Paper-size AVGN: MobileNetV2 glance at 224, ResNet-50 local at P=128, T=16."""
    return ModelConfig(
        name="paper", labels=tuple(f"class_{i}" for i in range(200)), num_snippets=16, top_k=8,
        frame_size=224, glance_size=224, patch_size=128, snippet_period=1.0, audio_window=1.28,
        n_fft=512, hop=160, n_mels=64, glance_width=1.0,
        glance_blocks=((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
                       (6, 160, 3, 2), (6, 320, 1, 1)),
        audio_channels=(32, 64, 128, 256), audio_dim=512, d_model=256, heads=8, layers=2,
        aespa_dim=128, local_depth=50, local_stages=4, head_hidden=1024)
