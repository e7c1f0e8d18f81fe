"""A weight-free painter: OpenCV's diffusion-style inpainting (Telea's fast marching,
Navier-Stokes) and, with opencv-contrib's xphoto, exemplar-based inpainting (shift-map, FSR)."""
from __future__ import annotations

import cv2
import numpy as np
import torch
from torch import Tensor

from ..errors import SettingsError
from .base import Painter

# Exemplar methods fill the hole with patches copied from the rest of the image (texture, as a
# diffusion inpainter would paint), where Telea and Navier-Stokes smear the boundary's colours.
EXEMPLAR_METHODS = {"shiftmap": "INPAINT_SHIFTMAP", "fsr_fast": "INPAINT_FSR_FAST", "fsr_best": "INPAINT_FSR_BEST"}
METHODS = ("telea", "ns", *EXEMPLAR_METHODS)


def check_method(method: str) -> None:
    if method not in METHODS:
        raise ValueError(f"OpenCVPainter methods must be among {list(METHODS)}, got {method!r}")
    if method in EXEMPLAR_METHODS and not hasattr(cv2, "xphoto"):
        raise ImportError(f"OpenCVPainter method {method!r} needs OpenCV's contrib modules (cv2.xphoto): "
                          f"pip uninstall opencv-python-headless; pip install opencv-contrib-python-headless")


def fill(rgb: np.ndarray, hole: np.ndarray, method: str, radius: int) -> np.ndarray:
    """``rgb`` (uint8 [h, w, 3]) with ``hole`` (uint8 [h, w], 1 = paint) filled by ``method``."""
    if method in ("telea", "ns"):
        return cv2.inpaint(rgb, hole, radius, cv2.INPAINT_TELEA if method == "telea" else cv2.INPAINT_NS)
    filled = np.zeros_like(rgb)
    # xphoto's mask marks the known pixels; ``radius`` is for the propagating methods only.
    cv2.xphoto.inpaint(rgb, (1 - hole) * 255, filled, getattr(cv2.xphoto, EXEMPLAR_METHODS[method]))
    return filled


class OpenCVPainter(Painter):
    """Fills the mask from the rest of the image: ``telea`` / ``ns`` propagate the surrounding
    colours inwards; ``shiftmap`` / ``fsr_fast`` / ``fsr_best`` copy texture from outside.

    Every method is deterministic, so samples cycle through ``methods`` (their fills differ in
    texture and sharpness) and differ otherwise only by their crops in AMCP. Painting happens at
    ``work_size`` (longest side) and is upsampled, since filling large regions is slow.
    """

    def __init__(self, methods: tuple[str, ...] = ("telea", "ns"), radius: int = 5, work_size: int = 256):
        if not methods:
            raise ValueError(f"OpenCVPainter needs at least one method among {list(METHODS)}")
        for method in methods:
            check_method(method)
        if radius < 1 or work_size < 8:
            raise SettingsError(f"OpenCVPainter: radius={radius!r} (allowed: >= 1), work_size={work_size!r} "
                                f"(allowed: >= 8)")
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

    def reset_image(self) -> None:
        super().reset_image()
        self._work_image = self._work_hw = None

    def paint(self, mask: Tensor, num_samples: int, generator: torch.Generator | None = None) -> Tensor:
        image = self.image
        h, w = image.shape[-2:]
        work_mask = cv2.resize(mask.cpu().numpy().astype(np.uint8), self._work_hw[::-1],
                               interpolation=cv2.INTER_NEAREST)
        # Grow the work-size mask by a pixel so downsampling never leaves object pixels as context.
        work_mask = cv2.dilate(work_mask, np.ones((3, 3), np.uint8))
        fills = {}
        for method in dict.fromkeys(self.methods[i % len(self.methods)] for i in range(num_samples)):
            filled = fill(self._work_image, work_mask, method, self.radius)
            filled = cv2.resize(filled, (w, h), interpolation=cv2.INTER_CUBIC)
            fills[method] = torch.from_numpy(filled).to(image.device).permute(2, 0, 1).float() / 255
        painted = torch.stack([fills[self.methods[i % len(self.methods)]] for i in range(num_samples)])
        # Outside the mask the original stays exact, as it would after pasting back.
        return torch.where(mask.to(image.device), painted, image.expand_as(painted))
