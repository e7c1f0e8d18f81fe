"""A weight-free painter: OpenCV's fast-marching (Telea) and Navier-Stokes inpainting."""
from __future__ import annotations

import cv2
import numpy as np
import torch
from torch import Tensor

from .base import Painter

METHODS = {"telea": cv2.INPAINT_TELEA, "ns": cv2.INPAINT_NS}


class OpenCVPainter(Painter):
    """Fills the mask by propagating the surrounding colours inwards.

    Both methods are deterministic, so samples cycle through ``methods`` (their fills
    differ in texture and sharpness) and differ otherwise only by their crops in AMCP.
    Painting happens at ``work_size`` (longest side) and is upsampled, since propagation
    into large regions is slow and yields smooth colour anyway.
    """

    def __init__(self, methods: tuple[str, ...] = ("telea", "ns"), radius: int = 5, work_size: int = 256):
        unknown = [m for m in methods if m not in METHODS]
        if unknown or not methods:
            raise ValueError(f"OpenCVPainter methods must be among {sorted(METHODS)}, got {methods!r}")
        self.methods = tuple(methods)
        self.radius = radius
        self.work_size = work_size

    def set_image(self, image: Tensor) -> None:
        super().set_image(image)
        h, w = image.shape[-2:]
        scale = min(1.0, self.work_size / max(h, w))
        self._work_hw = (max(1, round(h * scale)), max(1, round(w * scale)))
        rgb = (image.permute(1, 2, 0).clamp(0, 1).cpu().numpy() * 255).round().astype(np.uint8)
        self._work_image = cv2.resize(rgb, self._work_hw[::-1], interpolation=cv2.INTER_AREA)

    def paint(self, mask: Tensor, num_samples: int, generator: torch.Generator | None = None) -> Tensor:
        image = self.image
        h, w = image.shape[-2:]
        work_mask = cv2.resize(mask.cpu().numpy().astype(np.uint8), self._work_hw[::-1],
                               interpolation=cv2.INTER_NEAREST)
        # Grow the work-size mask by a pixel so downsampling never leaves object pixels as context.
        work_mask = cv2.dilate(work_mask, np.ones((3, 3), np.uint8))
        fills = {}
        for method in dict.fromkeys(self.methods[i % len(self.methods)] for i in range(num_samples)):
            filled = cv2.inpaint(self._work_image, work_mask, self.radius, METHODS[method])
            filled = cv2.resize(filled, (w, h), interpolation=cv2.INTER_CUBIC)
            fills[method] = torch.from_numpy(filled).to(image.device).permute(2, 0, 1).float() / 255
        painted = torch.stack([fills[self.methods[i % len(self.methods)]] for i in range(num_samples)])
        # Outside the mask the original stays exact, as it would after pasting back.
        return torch.where(mask.to(image.device), painted, image.expand_as(painted))
