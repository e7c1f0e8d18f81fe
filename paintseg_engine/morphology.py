"""Binary morphology with cross-shaped (4-connected) structuring elements, on torch tensors."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def cross_kernel(size: int, device: torch.device | None = None) -> Tensor:
    """A size x size plus-shaped kernel (size odd), as a [1, 1, size, size] float tensor."""
    if size < 1 or size % 2 == 0:
        raise ValueError(f"cross kernel size must be a positive odd number, got {size}")
    kernel = torch.zeros(1, 1, size, size, device=device)
    kernel[..., size // 2, :] = 1
    kernel[..., :, size // 2] = 1
    return kernel


def dilate(mask: Tensor, size: int = 3, steps: int = 1) -> Tensor:
    """Dilate a bool mask [..., H, W] by a size x size cross, `steps` times."""
    if steps == 0 or size == 1:
        return mask
    kernel = cross_kernel(size, mask.device)
    x = mask.reshape(-1, 1, *mask.shape[-2:]).float()
    for _ in range(steps):
        x = (F.conv2d(x, kernel, padding=size // 2) > 0).float()
    return x.bool().reshape(mask.shape)


def erode(mask: Tensor, size: int = 3, steps: int = 1) -> Tensor:
    # Pixels outside the frame count as foreground so that erosion does not eat the border.
    return ~dilate(~mask, size, steps)


def opening(mask: Tensor, size: int) -> Tensor:
    return dilate(erode(mask, size), size)


def closing(mask: Tensor, size: int) -> Tensor:
    return erode(dilate(mask, size), size)
