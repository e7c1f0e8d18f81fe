"""The frame: a square letterbox the painters work in, and the prompt's limits drawn in it.

All geometry between the input image and the frame lives here, as in segment-anything's
``ResizeLongestSide``: images, masks and points go in, masks come back out.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

Point = tuple[float, float]


@dataclass
class Letterbox:
    """Maps an H x W image into a size x size frame (aspect kept, centred) and back."""

    height: int
    width: int
    size: int

    def __post_init__(self) -> None:
        self.scale = self.size / max(self.height, self.width)
        self.inner_h = max(1, round(self.height * self.scale))
        self.inner_w = max(1, round(self.width * self.scale))
        self.top = (self.size - self.inner_h) // 2
        self.left = (self.size - self.inner_w) // 2

    def image_to_frame(self, image: Tensor) -> Tensor:
        inner = F.interpolate(image[None], (self.inner_h, self.inner_w), mode="bicubic", antialias=True,
                              align_corners=False).clamp(0, 1)
        # Replicated edges give painters plausible context; the content mask keeps the object out.
        pad = (self.left, self.size - self.inner_w - self.left, self.top, self.size - self.inner_h - self.top)
        return F.pad(inner, pad, mode="replicate")[0]

    def mask_to_frame(self, mask: Tensor) -> Tensor:
        inner = F.interpolate(mask[None, None].float(), (self.inner_h, self.inner_w), mode="nearest")
        frame = torch.zeros(self.size, self.size, dtype=torch.bool, device=mask.device)
        frame[self.top:self.top + self.inner_h, self.left:self.left + self.inner_w] = inner[0, 0] > 0.5
        return frame

    def mask_from_frame(self, frame_mask: Tensor) -> Tensor:
        inner = frame_mask[self.top:self.top + self.inner_h, self.left:self.left + self.inner_w]
        resized = F.interpolate(inner[None, None].float(), (self.height, self.width), mode="bilinear",
                                align_corners=False)
        return resized[0, 0] > 0.5

    def content(self, device: torch.device | None = None) -> Tensor:
        frame = torch.zeros(self.size, self.size, dtype=torch.bool, device=device)
        frame[self.top:self.top + self.inner_h, self.left:self.left + self.inner_w] = True
        return frame

    def point_to_frame(self, x: float, y: float) -> Point:
        return x * self.scale + self.left, y * self.scale + self.top


def valid_region(box: tuple[float, float, float, float], scale: float, letterbox: Letterbox,
                 device: torch.device | None = None) -> Tensor:
    """The prompt's box scaled about its centre, in frame pixels: the object may not leave it."""
    x0, y0, x1, y1 = box
    cx, cy, hw, hh = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) * scale / 2, (y1 - y0) * scale / 2
    fx0, fy0 = letterbox.point_to_frame(cx - hw, cy - hh)
    fx1, fy1 = letterbox.point_to_frame(cx + hw, cy + hh)
    region = torch.zeros(letterbox.size, letterbox.size, dtype=torch.bool, device=device)
    region[max(0, math.floor(fy0)):math.ceil(fy1), max(0, math.floor(fx0)):math.ceil(fx1)] = True
    return region & letterbox.content(device)


def click_discs(points: list[Point], radius: float, size: int | tuple[int, int],
                device: torch.device | None = None) -> Tensor:
    """Bool [H, W] (a square [S, S] for an int ``size``): the pixels within ``radius`` of any of the points."""
    height, width = (size, size) if isinstance(size, int) else size
    yy = torch.arange(height, device=device, dtype=torch.float32)[:, None]
    xx = torch.arange(width, device=device, dtype=torch.float32)[None, :]
    discs = torch.zeros(height, width, dtype=torch.bool, device=device)
    for px, py in points:
        discs |= (xx - px) ** 2 + (yy - py) ** 2 <= radius**2
    return discs
