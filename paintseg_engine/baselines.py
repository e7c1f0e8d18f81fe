"""The classical baseline: GrabCut (Rother et al., 2004) as OpenCV implements it."""
from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np
import torch
from torch import Tensor

# OpenCV's examples and most benchmark reports run GrabCut for 5 iterations.
GRABCUT_ITERATIONS = 5


def grabcut_mask(image: Tensor, box: Sequence[float], iterations: int = GRABCUT_ITERATIONS) -> Tensor:
    """Bool [H, W]: cv2.grabCut initialised with the box (x0, y0, x1, y1, end exclusive) on an
    RGB image [3, H, W] in [0, 1]; definite and probable foreground count as object."""
    height, width = image.shape[-2:]
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(width, x1), min(height, y1)
    if x1 <= x0 or y1 <= y0:
        raise ValueError(f"GrabCut needs a non-empty box inside the {width}x{height} (WxH) image, got {tuple(box)}")
    if (x0, y0, x1, y1) == (0, 0, width, height):
        return torch.ones(height, width, dtype=torch.bool)  # no pixel outside the box to model background on
    bgr = np.ascontiguousarray((image.permute(1, 2, 0).numpy()[..., ::-1] * 255).round().astype(np.uint8))
    mask = np.zeros((height, width), np.uint8)
    background, foreground = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.grabCut(bgr, mask, (x0, y0, x1 - x0, y1 - y0), background, foreground, iterations, cv2.GC_INIT_WITH_RECT)
    return torch.from_numpy((mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD))
