"""The classical baselines: GrabCut (Rother et al., 2004) as OpenCV implements it, from a box,
and a graph cut seeded by clicks (GrabCut in mask mode, amcp/start.py) for the click protocol.

OpenCV's GrabCut seeds the k-means of its colour models from OpenCV's global random generator,
so the same call can give a full mask once and an empty one the next time. Each call here seeds
that generator first: from the run's seed and a stable hash of the item's name, the same on every
run, in any order, in any process.
"""
from __future__ import annotations

import zlib
from typing import Sequence

import cv2
import numpy as np
import torch
from torch import Tensor

from .amcp.start import click_cut
from .prompts import PointsPrompt

# OpenCV's examples and most benchmark reports run GrabCut for 5 iterations.
GRABCUT_ITERATIONS = 5


def grabcut_seed(seed: int, name: str) -> int:
    """The GrabCut seed of one item: Python's hash() of a string changes between runs, crc32 does not."""
    return zlib.crc32(f"{seed}/{name}".encode()) & 0x7FFFFFFF


def grabcut_mask(image: Tensor, box: Sequence[float], iterations: int = GRABCUT_ITERATIONS, seed: int = 0) -> Tensor:
    """Bool [H, W]: cv2.grabCut initialised with the box (x0, y0, x1, y1, end exclusive) on an
    RGB image [3, H, W] in [0, 1]; definite and probable foreground count as object. ``seed``
    seeds its colour models' k-means (see grabcut_seed), so equal inputs give equal masks."""
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
    cv2.setRNGSeed(seed)
    cv2.grabCut(bgr, mask, (x0, y0, x1 - x0, y1 - y0), background, foreground, iterations, cv2.GC_INIT_WITH_RECT)
    return torch.from_numpy((mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD))


def click_grabcut_mask(image: Tensor, prompt: PointsPrompt, radius: float, reach: float,
                       iterations: int = GRABCUT_ITERATIONS, seed: int = 0) -> Tensor:
    """Bool [H, W]: the seeded cut from ``prompt``'s clicks on an RGB image [3, H, W] in [0, 1]:
    discs of ``radius`` sure object (positive) or background (negative), discs of ``reach``
    probable object, both as fractions of the image's longer side (AMCP's click_radius and
    start_reach, so that both methods read the same clicks alike). ``seed`` as for grabcut_mask."""
    height, width = image.shape[-2:]
    prompt.region_box(height, width)  # refuses clicks outside the image, or none positive
    side = max(height, width)
    positive, negative = prompt.points()
    return click_cut(image, positive, negative, max(1.0, radius * side), reach * side, iterations, seed)
