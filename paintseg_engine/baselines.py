"""The classical baselines: GrabCut (Rother et al., 2004) as OpenCV implements it (its masks, on the
engine's faster max-flow: amcp/graphcut.py), from a box, and a
graph cut seeded by clicks (GrabCut in mask mode, amcp/start.py) for the click protocol, as one
segmenter with AMCP's session interface, so that every door (the dataset run, ``paintseg segment``,
the app, the benchmarks) runs it from a config's ``segmenter:`` section.

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

from .amcp.config import AMCPConfig
from .amcp.refine import seeded_grabcut
from .amcp.segmenter import PromptSegmenter, Segmentation, StepRecord, check_image
from .amcp.start import image_click_cut
from .errors import PromptError, SettingsError
from .prompts import PointsPrompt, Prompt

# OpenCV's examples and most benchmark reports run GrabCut for 5 iterations.
GRABCUT_ITERATIONS = 5


def grabcut_seed(seed: int, name: str) -> int:
    """The GrabCut seed of one item: Python's hash() of a string changes between runs, crc32 does not."""
    return zlib.crc32(f"{seed}/{name}".encode()) & 0x7FFFFFFF


def grabcut_mask(image: Tensor, box: Sequence[float], iterations: int = GRABCUT_ITERATIONS, seed: int = 0) -> Tensor:
    """Bool [H, W]: GrabCut (OpenCV's masks, amcp/graphcut.py) initialised with the box (x0, y0, x1, y1, end exclusive) on an
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
    """GrabCut from the prompt's box, or for clicks alone the cut they seed (``click_grabcut_mask``,
    reading clicks as AMCP does: ``click_radius``, ``start_reach`` and ``start_window``, AMCPConfig's
    defaults): one cut of ``iterations``, seeded per image by ``seed`` and the name ``set_image`` is
    given. It reports no iterations (``on_step`` is never called)."""

    method = "grabcut"

    def __init__(self, iterations: int = GRABCUT_ITERATIONS, seed: int = 0,
                 click_radius: float = AMCPConfig.click_radius, start_reach: float = AMCPConfig.start_reach,
                 start_window: float | None = AMCPConfig.start_window):
        if iterations < 1:
            raise SettingsError(f"GrabCutSegmenter: iterations={iterations!r} (allowed: >= 1)")
        if start_window is not None and start_window <= 0:
            raise SettingsError(f"GrabCutSegmenter: start_window={start_window!r} (allowed: > 0, or None for "
                                "the whole image)")
        self.iterations, self.seed = iterations, seed
        self.click_radius, self.start_reach, self.start_window = click_radius, start_reach, start_window
        self.reset_image()

    def set_image(self, image: Tensor, name: str = "") -> None:
        check_image(image)
        self.image, self.image_seed = image.float().cpu(), grabcut_seed(self.seed, name)

    def reset_image(self) -> None:
        self.image = self.image_seed = None

    def predict(self, prompt: Prompt, on_step: Callable[[StepRecord], None] | None = None) -> Segmentation:
        if self.image is None:
            raise RuntimeError("GrabCutSegmenter.set_image(image) must be called before predict()")
        height, width = self.image.shape[-2:]
        if type(prompt) is PointsPrompt:  # clicks alone: the seeded cut (a box with clicks keeps its box)
            mask = click_grabcut_mask(self.image, prompt, self.click_radius, self.start_reach, self.iterations,
                                      self.image_seed, self.start_window)
            return Segmentation(mask=mask, prompt_mask=mask)
        mask = grabcut_mask(self.image, prompt.region_box(height, width), self.iterations, self.image_seed)
        return Segmentation(mask=mask, prompt_mask=prompt.initial_mask(height, width))


def click_grabcut_mask(image: Tensor, prompt: PointsPrompt, radius: float, reach: float,
                       iterations: int = GRABCUT_ITERATIONS, seed: int = 0, window: float | None = None) -> Tensor:
    """Bool [H, W]: the seeded cut from ``prompt``'s clicks on an RGB image [3, H, W] in [0, 1]:
    discs of ``radius`` sure object (positive) or background (negative), discs of ``reach``
    probable object, in the positive clicks' box grown by ``window`` (None: the whole image), all
    as fractions of the image's longer side (AMCP's click_radius, start_reach and start_window, so
    that both methods read the same clicks alike). ``seed`` as for grabcut_mask."""
    prompt.region_box(*image.shape[-2:])  # refuses clicks outside the image, or none positive
    return image_click_cut(image, *prompt.points(), radius, reach, iterations, seed, window)
