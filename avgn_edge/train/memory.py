"""Will a batch fit? Estimated before the run writes anything, caught if it still does not.

The estimate counts what autograd keeps for the backward pass of the heaviest stage
(warm-up: the local encoder on all T full frames) for one clip, times the per-process batch,
plus weights, gradients and the two AdamW moments. It runs on a copy of the model with the
RNG state restored afterwards, so it changes nothing about the training that follows.
"""

from __future__ import annotations

import copy
import os

import torch

from ..errors import InputError
from .recipe import STAGE_LOSSES, Recipe, set_modes

MARGIN = 1.25          # transient buffers of the backward pass on top of the saved activations


def activation_bytes_per_clip(model, precision) -> int:
    """Bytes autograd saves for one clip's warm-up loss (CPU, under the run's autocast dtype)."""
    cfg = model.cfg
    probe = copy.deepcopy(model).cpu()
    set_modes(probe, "warmup")
    params = {p.untyped_storage().data_ptr() for p in probe.parameters()}
    saved: dict[int, int] = {}

    def pack(t):
        st = t.untyped_storage()
        if st.data_ptr() not in params:
            saved[st.data_ptr()] = st.nbytes()
        return t

    batch = {"frames": torch.zeros(1, cfg.num_snippets, cfg.frame_size, cfg.frame_size, 3, dtype=torch.uint8),
             "audio": torch.zeros(1, cfg.num_snippets, cfg.audio_samples), "label": torch.zeros(1, dtype=torch.long)}
    amp = torch.autocast("cpu", dtype=precision.dtype) if precision.dtype is not None else torch.autocast("cpu", enabled=False)
    with torch.random.fork_rng(devices=[]), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), amp:
        losses = STAGE_LOSSES["warmup"](probe, batch, Recipe(1, 1, 0, 0))
        del losses
    return sum(saved.values())


def available_bytes(device: torch.device) -> int | None:
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    if device.type == "cpu":
        try:
            with open("/proc/meminfo") as f:
                info = dict(line.split(":", 1) for line in f)
            return int(info["MemAvailable"].split()[0]) * 1024
        except (OSError, KeyError, ValueError):
            return None
    return None


def check_batch_fits(model, batch_per_process: int, device: torch.device, precision) -> dict:
    """Raise ``InputError`` if the batch clearly cannot fit; return the estimate."""
    per_clip = activation_bytes_per_clip(model, precision)
    state = 4 * sum(p.numel() * p.element_size() for p in model.parameters())
    need = int(MARGIN * per_clip * batch_per_process) + state
    # CPU processes of one machine share its memory
    sharing = int(os.environ.get("LOCAL_WORLD_SIZE", "1")) if device.type == "cpu" else 1
    free = available_bytes(device)
    est = {"bytes_per_clip": per_clip, "need_bytes": need, "available_bytes": free, "processes_sharing": sharing}
    if free is not None and need * sharing > free:
        raise too_large(batch_per_process, device, f"needs about {_gib(need * sharing)}, {_gib(free)} available")
    return est


def too_large(batch: int, device: torch.device, detail: str) -> InputError:
    return InputError(f"a batch of {batch} clips per process does not fit in memory on {device} ({detail})",
                      hint="lower --batch-size, use --amp bf16, or spread the batch over more GPUs with torchrun")


def is_out_of_memory(exc: BaseException) -> bool:
    msg = str(exc)
    return isinstance(exc, torch.OutOfMemoryError) or (
        isinstance(exc, RuntimeError) and ("can't allocate memory" in msg or "not enough memory" in msg))


def _gib(n: int) -> str:
    return f"{n / 2**30:.1f} GiB"
