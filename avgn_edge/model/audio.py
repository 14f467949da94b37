"""Audio encoder on the raw waveform: an in-graph log-mel front end, then a small CNN.

The STFT is a strided Conv1d with fixed windowed-DFT weights and the mel projection a
MatMul with fixed weights, so training, ONNX Runtime and TensorRT share one computation
(no torchaudio, no host-side feature extraction).
"""

from __future__ import annotations

import contextlib

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F


def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int, f_min: float = 20.0,
                   f_max: float | None = None) -> np.ndarray:
    """HTK-scale triangular filters, [n_mels, n_fft // 2 + 1], each with unit peak."""
    f_max = f_max or sample_rate / 2
    mel = lambda f: 2595.0 * np.log10(1.0 + f / 700.0)
    inv = lambda m: 700.0 * (10 ** (m / 2595.0) - 1.0)
    edges = inv(np.linspace(mel(f_min), mel(f_max), n_mels + 2))
    freqs = np.linspace(0, sample_rate / 2, n_fft // 2 + 1)
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    up = (freqs[None] - lo) / (mid - lo)
    down = (hi - freqs[None]) / (hi - mid)
    return np.clip(np.minimum(up, down), 0.0, None).astype(np.float32)


class LogMel(nn.Module):
    """[N, samples] waveform -> [N, 1, n_mels, frames] log-mel power (no padding)."""

    def __init__(self, sample_rate: int, n_fft: int, hop: int, n_mels: int):
        super().__init__()
        n = np.arange(n_fft)
        k = np.arange(n_fft // 2 + 1)
        window = 0.5 - 0.5 * np.cos(2 * np.pi * n / n_fft)              # periodic Hann
        arg = 2 * np.pi * np.outer(k, n) / n_fft
        dft = np.concatenate([np.cos(arg) * window, -np.sin(arg) * window]).astype(np.float32)
        self.register_buffer("dft", torch.from_numpy(dft)[:, None, :], persistent=False)
        self.register_buffer("mel", torch.from_numpy(mel_filterbank(sample_rate, n_fft, n_mels)),
                             persistent=False)
        self.hop = hop
        self.bins = n_fft // 2 + 1

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        # float32 even under fp16 autocast (training --amp fp16): a loud input's power
        # spectrum passes fp16's 65504
        dev = wave.device.type
        with torch.autocast(dev, enabled=False) if torch.amp.is_autocast_available(dev) else contextlib.nullcontext():
            wave = wave if wave.dtype == torch.float32 else wave.float()
            spec = F.conv1d(wave[:, None, :], self.dft, stride=self.hop)      # [N, 2B, frames]
            power = spec[:, :self.bins] ** 2 + spec[:, self.bins:] ** 2
            return torch.log(torch.matmul(self.mel, power) + 1e-6)[:, None]


class AudioEncoder(nn.Module):
    """[N, samples] -> [N, audio_dim]."""

    def __init__(self, cfg):
        super().__init__()
        self.frontend = LogMel(cfg.sample_rate, cfg.n_fft, cfg.hop, cfg.n_mels)
        self.dim = cfg.audio_dim
        if cfg.encoder == "lite0":         # ImageNet initialisation on the log-mel "image" (as PSLA, AST)
            from .lite import LiteTrunk
            self.cnn = nn.Sequential(nn.BatchNorm2d(1), LiteTrunk(cfg.lite_blocks[1], in_channels=1))
            self.proj = nn.Linear(2 * self.cnn[1].channels, cfg.audio_dim)
            return
        layers: list[nn.Module] = [nn.BatchNorm2d(1)]
        cin = 1
        for i, c in enumerate(cfg.audio_channels):
            layers += [nn.Conv2d(cin, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True)]
            if i < len(cfg.audio_channels) - 1:
                layers.append(nn.MaxPool2d(2, ceil_mode=True))
            cin = c
        self.cnn = nn.Sequential(*layers)
        self.proj = nn.Linear(2 * cin, cfg.audio_dim)
        self.dim = cfg.audio_dim

    def pooled(self, wave: torch.Tensor) -> torch.Tensor:
        """[N, samples] -> [N, 2C]: the CNN's map, mean ++ max (what ``proj`` reads)."""
        x = self.cnn(self.frontend(wave))
        return torch.cat([x.mean(dim=(2, 3)), x.amax(dim=(2, 3))], dim=1)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        return F.relu(self.proj(self.pooled(wave)))
