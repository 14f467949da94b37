"""Where and how training computes: device, mixed precision, channels-last, torch.compile.

    dev = resolve_device("auto", local_rank)     # cuda:LOCAL_RANK if a GPU is there, else mps, else cpu
    prec = Precision("bf16", dev)                # autocast + (fp16 only) a gradient scaler

Checkpoints never hold device tensors (checkpoint.py writes CPU copies), so a run started on
one device resumes on another.
"""

from __future__ import annotations

import contextlib

import torch

from ..errors import InputError

AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_device(spec: str = "auto", local_rank: int | None = None, world: int = 1) -> torch.device:
    """``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps`` -> a torch.device that exists here.

    Under torchrun each process takes the GPU of its LOCAL_RANK (``cuda`` or ``auto``)."""
    s = (spec or "auto").strip().lower()
    if s == "auto":
        if torch.cuda.is_available():
            s = "cuda"
        elif _mps_available():
            s = "mps"
        else:
            s = "cpu"
    if s == "cpu":
        return torch.device("cpu")
    if s == "mps":
        if not _mps_available():
            raise InputError("--device mps: this PyTorch sees no Apple GPU", hint="use --device cpu or auto")
        if world > 1:
            raise InputError("training across processes is not supported on mps", hint="use one process")
        return torch.device("mps")
    if s == "cuda" or s.startswith("cuda:"):
        if not torch.cuda.is_available():
            why = "this PyTorch build has no CUDA" if torch.version.cuda is None else "no CUDA GPU is visible"
            raise InputError(f"--device {spec}: {why}", hint="use --device cpu, or auto to take a GPU when there is one")
        count = torch.cuda.device_count()
        if s == "cuda":
            index = local_rank or 0
        else:
            if world > 1:
                raise InputError(f"--device {spec} with {world} processes: each process takes the GPU of its "
                                 "LOCAL_RANK", hint="use --device cuda (or auto); choose GPUs with CUDA_VISIBLE_DEVICES")
            try:
                index = int(s.partition(":")[2])
            except ValueError:
                raise InputError(f"--device {spec}: expected cuda:N") from None
        if not 0 <= index < count:
            raise InputError(f"--device {spec}: there {'is' if count == 1 else 'are'} {count} CUDA GPU(s) "
                             f"(cuda:0..cuda:{count - 1})" if index >= 0 else f"--device {spec}: bad GPU index")
        return torch.device("cuda", index)
    raise InputError(f"unknown device {spec!r}", hint="use auto, cpu, cuda, cuda:N or mps")


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps and mps.is_available())


class Precision:
    """Mixed precision for one device: ``off``, ``bf16`` (autocast) or ``fp16`` (autocast + scaler).

    With ``off`` every call is the plain fp32 operation, so the run is bit-identical to one
    without this class."""

    def __init__(self, amp: str, device: torch.device):
        amp = (amp or "off").lower()
        if amp not in ("off", *AMP_DTYPES):
            raise InputError(f"--amp {amp}: expected bf16, fp16 or off")
        if amp == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
            raise InputError(f"--amp bf16: {torch.cuda.get_device_name(device)} has no bfloat16",
                             hint="use --amp fp16 (with loss scaling) on this GPU")
        if amp == "fp16" and device.type == "mps":
            raise InputError("--amp fp16 is not supported on mps here", hint="use --amp bf16 or off")
        self.amp, self.device = amp, device
        self.dtype = AMP_DTYPES.get(amp)
        self.scaler = torch.amp.GradScaler(device.type, enabled=amp == "fp16")

    def autocast(self):
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    def backward_and_step(self, loss: torch.Tensor, optimizer, params, clip: float) -> None:
        """backward, unscale (fp16), clip the gradient norm, step (skipped by the scaler on inf/NaN)."""
        if not self.scaler.is_enabled():
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, clip)
            optimizer.step()
            return
        self.scaler.scale(loss).backward()
        self.scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(params, clip)
        self.scaler.step(optimizer)
        self.scaler.update()


def prepare_model(model, device: torch.device, channels_last: bool | None = None, compile: bool | str = False):
    """Move ``model`` to ``device``; channels-last (default: on CUDA, where convolutions gain from
    it; not on the CPU, where these small models lose); compile the three CNN encoders in place
    (state-dict keys unchanged, so checkpoints stay plain)."""
    model.to(device)
    if channels_last is None:
        channels_last = device.type == "cuda"
    if channels_last:
        model.to(memory_format=torch.channels_last)
    if compile:
        backend = compile if isinstance(compile, str) else "inductor"
        for m in (model.glance, model.audio, model.local):
            m.compile(backend=backend)
    return model


def to_device(batch: dict, device: torch.device) -> dict:
    if device.type == "cpu":
        return batch
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}
