"""The classical baseline: GrabCut (Rother et al., 2004) as OpenCV implements it, as a segmenter
with AMCP's session interface, so that every door (the dataset run, ``paintseg segment``, the app,
the benchmarks) runs it from a config's ``segmenter:`` section.

OpenCV's GrabCut seeds the k-means of its colour models from OpenCV's global random generator,
so the same call can give a full mask once and an empty one the next time. Each image here seeds
that generator first: from the segmenter's seed and a stable hash of the item's name, the same on
every run, in any order, in any process.
"""
from __future__ import annotations

import zlib
from typing import Callable, Sequence

import numpy as np
import torch
from torch import Tensor

from .amcp.refine import seeded_grabcut
from .amcp.segmenter import PromptSegmenter, Segmentation, StepRecord, check_image
from .errors import PromptError, SettingsError
from .prompts import PointsPrompt, Prompt

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
        raise PromptError(f"GrabCut needs a non-empty box inside the {width}x{height} (WxH) image, got {tuple(box)}")
    if (x0, y0, x1, y1) == (0, 0, width, height):
        return torch.ones(height, width, dtype=torch.bool)  # no pixel outside the box to model background on
    labels = np.zeros((height, width), np.uint8)
    return torch.from_numpy(seeded_grabcut(image, labels, iterations, seed, rect=(x0, y0, x1 - x0, y1 - y0)))


class GrabCutSegmenter(PromptSegmenter):
    """GrabCut from the prompt's box: one cut of ``iterations``, seeded per image by ``seed`` and
    the name ``set_image`` is given. It reports no iterations (``on_step`` is never called) and
    takes no clicks: a points prompt gives no box (compare with its box run)."""

    method = "grabcut"

    def __init__(self, iterations: int = GRABCUT_ITERATIONS, seed: int = 0):
        if iterations < 1:
            raise SettingsError(f"GrabCutSegmenter: iterations={iterations!r} (allowed: >= 1)")
        self.iterations, self.seed = iterations, seed
        self.reset_image()

    def set_image(self, image: Tensor, name: str = "") -> None:
        check_image(image)
        self.image, self.image_seed = image.float().cpu(), grabcut_seed(self.seed, name)

    def reset_image(self) -> None:
        self.image = self.image_seed = None

    def predict(self, prompt: Prompt, on_step: Callable[[StepRecord], None] | None = None) -> Segmentation:
        if self.image is None:
            raise RuntimeError("GrabCutSegmenter.set_image(image) must be called before predict()")
        if isinstance(prompt, PointsPrompt):
            raise PromptError("the GrabCut baseline starts from a box; clicks give none (compare with its box run)")
        height, width = self.image.shape[-2:]
        mask = grabcut_mask(self.image, prompt.region_box(height, width), self.iterations, self.image_seed)
        return Segmentation(mask=mask, prompt_mask=prompt.initial_mask(height, width))
