"""What a training run costs: counted FLOPs per clip of each stage's step, measured step times.

``avgn-edge train --preset paper --estimate [--device D --amp A --batch-size B]`` prints both,
writes nothing. GFLOPs follow the project's convention (10^9 multiply-accumulates, as in
model/flops.py); the training step - forward and backward of the stage's losses - is counted
by torch's FlopCounterMode, not assumed to be three forward passes (with one correction: see
``_conv_backward``).
"""

from __future__ import annotations

import math
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from ..model import build_model
from .torch_device import Precision, prepare_model, resolve_device, to_device
from .recipe import STAGE_LOSSES, STAGE_LR, set_modes, trainable


def _batch(cfg, b: int, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    T, S = cfg.num_snippets, cfg.frame_size
    return {"frames": torch.randint(0, 256, (b, T, S, S, 3), dtype=torch.uint8, generator=g),
            "audio": 0.1 * torch.randn(b, T, cfg.audio_samples, generator=g),
            "label": torch.randint(0, cfg.num_classes, (b,), generator=g)}


def _conv_backward(grad_out_shape, x_shape, w_shape, _bias, _stride, _padding, _dilation, transposed,
                   _output_padding, _groups, output_mask, out_shape=None, **kwargs) -> int:
    """FLOPs of a convolution's backward: each gradient asked for (input, weight) costs what the
    forward does. torch's own formula counts a grouped convolution's weight gradient as if it
    were ungrouped - 93 instead of 9.6 GMACs for MobileNetV2's depthwise layers at 224 px."""
    spatial = (x_shape if transposed else grad_out_shape)[2:]
    forward = 2 * x_shape[0] * math.prod(spatial) * math.prod(w_shape)
    return forward * (int(bool(output_mask[0])) + int(bool(output_mask[1])))


def step_gflops(cfg, recipe) -> dict[str, float]:
    """GFLOPs (10^9 MACs) per clip of one training step (forward + backward), by stage - counted
    on the meta device (shapes only: instant, and the same count as on real tensors)."""
    out = {}
    with torch.device("meta"):
        model = build_model(cfg)
    batch = {k: v.to("meta") for k, v in _batch(cfg, 2).items()}
    for stage, _ in recipe.stages:
        trainable(model, stage)
        set_modes(model, stage)
        with FlopCounterMode(display=False, custom_mapping={torch.ops.aten.convolution_backward: _conv_backward}) \
                as counter:
            losses = STAGE_LOSSES[stage](model, batch, recipe)
            sum(losses.values()).backward()
        model.zero_grad(set_to_none=True)
        out[stage] = counter.get_total_flops() / 2e9 / 2
    return out


def time_steps(cfg, recipe, device: str = "auto", amp: str = "off", batch: int = 2, steps: int = 2,
               on_stage=None) -> dict:
    """Measured seconds per training step of each stage at ``batch`` clips on ``device`` (after one
    untimed step: allocations, cuDNN autotune), with the real optimiser; on CUDA also the peak memory
    PyTorch allocated per stage. ``on_stage(stage, seconds, peak_gib or None)`` hears each stage as it ends."""
    dev = resolve_device(device)
    cuda = dev.type == "cuda"
    prec = Precision(amp, dev)
    model = prepare_model(build_model(cfg), dev)
    data = to_device(_batch(cfg, batch), dev)
    out, peaks = {}, {}
    for stage, _ in recipe.stages:
        if cuda:
            torch.cuda.synchronize(dev)
            torch.cuda.reset_peak_memory_stats(dev)
        params = trainable(model, stage)
        opt = torch.optim.AdamW(params, lr=recipe.lr * STAGE_LR[stage])
        times = []
        for i in range(steps + 1):
            t0 = time.perf_counter()
            set_modes(model, stage)
            with prec.autocast():
                loss = sum(STAGE_LOSSES[stage](model, data, recipe).values())
            opt.zero_grad(set_to_none=True)
            prec.backward_and_step(loss, opt, params, 5.0)
            if cuda:
                torch.cuda.synchronize(dev)
            if i:
                times.append(time.perf_counter() - t0)
        del opt                                      # its state is not the next stage's memory
        out[stage] = sum(times) / len(times)
        peaks[stage] = torch.cuda.max_memory_allocated(dev) / 2**30 if cuda else None
        if on_stage is not None:
            on_stage(stage, out[stage], peaks[stage])
    r = {"device": str(dev), "amp": prec.amp, "batch": batch, "seconds_per_step": out}
    if cuda:
        r["peak_memory_gib"] = peaks
    return r


def estimate(cfg, recipe, device: str = "auto", amp: str = "off", batch: int = 2, steps: int = 2) -> dict:
    flops = step_gflops(cfg, recipe)
    timed = time_steps(cfg, recipe, device, amp, batch, steps)
    rows = {}
    for stage, n in recipe.stages:
        s = timed["seconds_per_step"][stage]
        rows[stage] = {"steps": n, "gflops_per_clip": round(flops[stage], 2),
                       "measured_clips_per_s": round(batch / s, 3),
                       "hours_for_the_stage": round(n * recipe.batch_size * s / batch / 3600, 2)}
    return {**timed, "recipe_batch": recipe.batch_size, "stages": rows,
            "hours_for_the_recipe": round(sum(r["hours_for_the_stage"] for r in rows.values()), 2)}


def format_estimate(r: dict) -> str:
    lines = [f"measured on {r['device']} (amp {r['amp']}, batch {r['batch']}); the recipe's batch is {r['recipe_batch']}",
             f"{'stage':9s} {'steps':>6s} {'GFLOPs/clip/step':>17s} {'clips/s':>9s} {'hours':>8s}"]
    for stage, x in r["stages"].items():
        lines.append(f"{stage:9s} {x['steps']:6d} {x['gflops_per_clip']:17.2f} {x['measured_clips_per_s']:9.3f}"
                     f" {x['hours_for_the_stage']:8.2f}")
    lines.append(f"whole recipe: {r['hours_for_the_recipe']:.2f} h at the measured rate "
                 "(GFLOPs = 10^9 multiply-accumulates, counted)")
    return "\n".join(lines)
