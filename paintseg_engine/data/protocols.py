"""Prompt protocols: the prompt a user would give for a ground-truth object, reproducibly.

Randomness (box jitter, coarse-mask degradation) comes from a per-image generator seeded with
the protocol's seed plus a stable hash of the item's name, so an image gets the same prompt in
every run, in any order, on any machine.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from ..errors import SettingsError
from ..clicks import NOC_THRESHOLDS, ClickProtocol, depth_map, interior_point
from ..imageio import load_mask
from ..prompts import BoxPrompt, MaskPrompt, PointsPrompt, Prompt, ScribblePrompt, box_of

PROMPT_KINDS = ("box", "points", "scribble", "coarse_mask", "clicks")


@dataclass
class PromptSettings:
    seed: int = 0
    # Box: each side moves by up to this fraction of the box's width / height (0: the tight box).
    box_jitter: float = 0.0
    # Coarse mask from ground truth (when the dataset has no coarse_mask_dir): the outline is
    # simplified to a polygon (tolerance: this fraction of its perimeter), then dilated or eroded
    # by up to this fraction of sqrt(object area).
    coarse_polygon: float = 0.02
    coarse_morph: float = 0.08
    # Scribble: the object's core, pixels at least this fraction of the deepest pixel's depth.
    scribble_depth: float = 2 / 3
    # Clicks: the cap, and whether to stop once IoU reaches the highest NoC threshold.
    max_clicks: int = 20
    stop_early: bool = True

    def __post_init__(self) -> None:
        ranges = {"box_jitter": (0.0, 1.0), "coarse_polygon": (0.0, 1.0), "coarse_morph": (0.0, 1.0),
                  "scribble_depth": (0.0, 1.0)}
        errors = [f"{name}={getattr(self, name)!r} (allowed: [{low}, {high}))" for name, (low, high) in ranges.items()
                  if not low <= getattr(self, name) < high]
        if self.max_clicks < 1:
            errors.append(f"max_clicks={self.max_clicks!r} (allowed: >= 1)")
        if errors:
            raise SettingsError("PromptSettings: " + "; ".join(errors))

    def click_protocol(self) -> ClickProtocol:
        return ClickProtocol(self.max_clicks, max(NOC_THRESHOLDS) if self.stop_early else None)


def image_rng(seed: int, name: str) -> np.random.Generator:
    """A generator for one image: Python's hash() of a string changes between runs, crc32 does not."""
    return np.random.default_rng([seed, zlib.crc32(name.encode())])


def jittered_box(gt: torch.Tensor, jitter: float, rng: np.random.Generator) -> BoxPrompt:
    x0, y0, x1, y1 = box_of(gt)
    if jitter > 0:
        w, h = x1 - x0, y1 - y0
        dx0, dy0, dx1, dy1 = rng.uniform(-jitter, jitter, 4) * (w, h, w, h)
        height, width = gt.shape
        # Kept inside the image and at least a pixel wide, however far the sides moved.
        x0, y0 = min(max(0, round(x0 + dx0)), width - 1), min(max(0, round(y0 + dy0)), height - 1)
        x1, y1 = min(max(x0 + 1, round(x1 + dx1)), width), min(max(y0 + 1, round(y1 + dy1)), height)
    return BoxPrompt((x0, y0, x1, y1))


def degraded_mask(gt: torch.Tensor, settings: PromptSettings, rng: np.random.Generator) -> torch.Tensor:
    """A coarse version of the object: polygonal outline, then randomly grown or shrunk."""
    mask = gt.numpy().astype(np.uint8)
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    polygons = [cv2.approxPolyDP(c, settings.coarse_polygon * cv2.arcLength(c, True), True) for c in contours]
    coarse = cv2.fillPoly(np.zeros_like(mask), polygons, 1)
    radius = int(round(rng.uniform(0, settings.coarse_morph) * np.sqrt(mask.sum())))
    if radius > 0:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
        changed = (cv2.dilate if rng.random() < 0.5 else cv2.erode)(coarse, kernel)
        coarse = changed if changed.any() else coarse  # a thin object may erode away entirely
    return torch.from_numpy(coarse.astype(bool) if coarse.any() else mask.astype(bool))


def prompt_from_gt(gt: torch.Tensor, kind: str, name: str = "", settings: PromptSettings | None = None,
                   coarse_mask_dir: str | Path | None = None) -> Prompt | ClickProtocol:
    """The prompt of ``kind`` for the object ``gt`` (bool [H, W]) of the item ``name``."""
    settings = settings or PromptSettings()
    rng = image_rng(settings.seed, name)
    if kind == "box":
        return jittered_box(gt, settings.box_jitter, rng)
    if kind == "points":
        return PointsPrompt(positive=[interior_point(gt.numpy())])
    if kind == "scribble":
        depth = depth_map(gt.numpy())
        return ScribblePrompt(torch.from_numpy(depth >= depth.max() * settings.scribble_depth))
    if kind == "coarse_mask":
        if coarse_mask_dir is None:
            return MaskPrompt(degraded_mask(gt, settings, rng))
        path = Path(coarse_mask_dir) / f"{name}.png"
        if not path.is_file():
            raise FileNotFoundError(f"no coarse mask {path} for {name!r} (expected <coarse_mask_dir>/<stem>.png)")
        return MaskPrompt(load_mask(path))
    if kind == "clicks":
        return settings.click_protocol()
    raise ValueError(f"unknown prompt kind {kind!r}; expected one of {PROMPT_KINDS}")
