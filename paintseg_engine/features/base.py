"""The feature-extractor interface: dense per-pixel features in which contrast is measured."""
from __future__ import annotations

from abc import ABC, abstractmethod

from torch import Tensor


class FeatureExtractor(ABC):
    """Maps a batch of images [N, 3, H, W] in [0, 1] to dense features [N, C, h, w].

    ``h, w`` may be coarser than ``H, W`` (a ViT gives one vector per patch); AMCP
    upsamples the contrast map to the crop's size. An extractor that keeps anything per image
    frees it in ``reset_image`` (the segmenter's session calls it).
    """

    def reset_image(self) -> None:
        """Forget what was kept for the current image; the built-in extractors keep nothing."""

    @abstractmethod
    def __call__(self, images: Tensor) -> Tensor: ...
