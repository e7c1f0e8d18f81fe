"""Weight-free dense features: CIE Lab colour and local texture statistics at a few scales."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import SettingsError
from .base import FeatureExtractor

# sRGB (D65) -> XYZ, and the D65 white point.
_RGB_TO_XYZ = torch.tensor([[0.412453, 0.357580, 0.180423],
                            [0.212671, 0.715160, 0.072169],
                            [0.019334, 0.119193, 0.950227]])
_WHITE = torch.tensor([0.950456, 1.0, 1.088754])


def rgb_to_lab(images: Tensor) -> Tensor:
    """[N, 3, H, W] sRGB in [0, 1] -> CIE Lab, L in [0, 100], a/b roughly in [-110, 110]."""
    linear = torch.where(images > 0.04045, ((images + 0.055) / 1.055) ** 2.4, images / 12.92)
    xyz = torch.einsum("ij,njhw->nihw", _RGB_TO_XYZ.to(images), linear) / _WHITE.to(images)[None, :, None, None]
    f = torch.where(xyz > 0.008856, xyz.clamp_min(1e-12) ** (1 / 3), 7.787 * xyz + 16 / 116)
    return torch.stack([116 * f[:, 1] - 16, 500 * (f[:, 0] - f[:, 1]), 200 * (f[:, 1] - f[:, 2])], 1)


def gaussian_blur(x: Tensor, sigma: float) -> Tensor:
    radius = max(1, round(3 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    kernel = torch.exp(-t**2 / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    c = x.shape[1]
    x = F.pad(x, (radius, radius, radius, radius), mode="replicate")
    x = F.conv2d(x, kernel.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(x, kernel.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


class ColorTextureFeatures(FeatureExtractor):
    """Per pixel: Lab smoothed at each of ``scales`` (colour in context) and the local standard
    deviation of lightness at each scale (texture), each group weighted.

    Features are computed at ``stride``-times lower resolution; AMCP upsamples contrast.
    """

    def __init__(self, scales: tuple[float, ...] = (1.0, 3.0), color_weight: float = 1.0,
                 texture_weight: float = 0.5, stride: int = 2):
        if not scales or min(scales) <= 0:
            raise SettingsError(f"ColorTextureFeatures: scales={scales!r} (allowed: positive)")
        if stride < 1 or color_weight < 0 or texture_weight < 0:
            raise SettingsError(f"ColorTextureFeatures: stride={stride!r} (allowed: >= 1), color_weight="
                                f"{color_weight!r}, texture_weight={texture_weight!r} (allowed: >= 0)")
        self.scales = tuple(scales)
        self.color_weight = color_weight
        self.texture_weight = texture_weight
        self.stride = stride

    def __call__(self, images: Tensor) -> Tensor:
        if self.stride > 1:
            images = F.avg_pool2d(images.float(), self.stride, ceil_mode=True)
        lab = rgb_to_lab(images.float()) / 100.0
        lightness = lab[:, :1]
        groups = []
        for sigma in self.scales:
            sigma = sigma / self.stride
            groups.append(self.color_weight * gaussian_blur(lab, sigma))
            variance = gaussian_blur(lightness**2, sigma) - gaussian_blur(lightness, sigma) ** 2
            groups.append(self.texture_weight * variance.clamp_min(0).sqrt())
        return torch.cat(groups, 1)
