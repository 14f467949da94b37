"""What each encoder sees: the glance view and the full-resolution patches.

Both are bilinear resamplings of the uint8 frame, normalised with the model's mean/std.
The deployed crop kernel (avgn_edge/kernels) computes exactly these numbers: the glance
view is the antialiased (triangle-filter) downscale of the whole frame, the patch is a
P x P box around a centre, clamped inside the frame. The patch grid is built by hand
(``affine_grid`` does not export) and sampled with ``grid_sample``, so the patch is
differentiable with respect to its centre.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def to_float(frames: torch.Tensor, mean, std) -> torch.Tensor:
    """[..., H, W, 3] uint8 -> [..., 3, H, W] normalised float."""
    x = frames.movedim(-1, -3).float() / 255.0
    m = x.new_tensor(mean).view(3, 1, 1)
    s = x.new_tensor(std).view(3, 1, 1)
    return (x - m) / s


def glance_view(frames: torch.Tensor, size: int, mean, std) -> torch.Tensor:
    """[N, H, W, 3] uint8 -> [N, 3, size, size], antialiased bilinear downscale."""
    x = frames.movedim(-1, -3).float()
    x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    m = x.new_tensor(mean).view(3, 1, 1) * 255.0
    s = x.new_tensor(std).view(3, 1, 1) * 255.0
    return (x - m) / s


def clamp_centres(centres: torch.Tensor, patch: int, frame: int) -> torch.Tensor:
    """Centres in [0, 1] (x, y) moved so the P x P box lies inside the frame."""
    half = 0.5 * patch / frame
    return centres.clamp(half, 1.0 - half)


def patch_grid(centres: torch.Tensor, patch: int, frame: int) -> torch.Tensor:
    """[N, 2] centres -> [N, P, P, 2] grid_sample coordinates (align_corners=False)."""
    c = clamp_centres(centres, patch, frame)
    half = 0.5 * patch / frame
    steps = (torch.arange(patch, device=c.device, dtype=c.dtype) + 0.5) * (2 * half / patch)
    gx = 2.0 * (c[:, 0:1] - half + steps) - 1.0            # [N, P]
    gy = 2.0 * (c[:, 1:2] - half + steps) - 1.0
    return torch.stack(torch.broadcast_tensors(gx[:, None, :], gy[:, :, None]), dim=-1)


def crop_patches(images: torch.Tensor, centres: torch.Tensor, patch: int) -> torch.Tensor:
    """[N, 3, H, W] normalised frames, [N, 2] centres -> [N, 3, P, P] patches.

    The box side is ``patch`` pixels of a frame of side ``images.shape[-1]``; sampling
    outside the frame repeats the border (the box is clamped, so only half a pixel at most).
    """
    grid = patch_grid(centres, patch, images.shape[-1])
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)
