"""DINO / DINOv2 ViT patch features: the space PaintSeg measures painted-vs-original contrast in."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..pretrained import Precision, explain_missing_weights, torch_dtype
from .base import FeatureExtractor

DEFAULT_MODEL = "facebook/dino-vitb8"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def load_vit(model: str, local_files_only: bool = False) -> nn.Module:
    """A ViTModel (DINO) or Dinov2Model from a hub id or a folder, with SDPA attention."""
    from transformers import AutoConfig, AutoModel

    with explain_missing_weights(model, "DINO ViT", DEFAULT_MODEL):
        config = AutoConfig.from_pretrained(model, local_files_only=local_files_only)
        # DINO features are patch tokens; a ViTModel's pooler head is unused.
        extra = {"add_pooling_layer": False} if config.model_type == "vit" else {}
        return AutoModel.from_pretrained(model, config=config, local_files_only=local_files_only,
                                         attn_implementation="sdpa", **extra)


class DinoFeatures(FeatureExtractor, nn.Module):
    """Last-block patch tokens of a DINO ViT as a feature grid [N, C, gh, gw].

    Images are resized to ``input_size`` squared and normalised with ``mean``/``std``
    (ImageNet's, as DINO was trained). The reference uses ViT-B/8 at 480 (a 60x60 grid of
    768-d features); DINOv2 ViT-B/14 at 840 gives the same grid. CLS and register tokens
    are dropped.

    Args:
        model: hub id or folder of a transformers ViTModel / Dinov2Model checkpoint.
        input_size: side the images are resized to, a multiple of the patch size.
        dtype: precision of the ViT. local_files_only: never reach the hub.
    """

    def __init__(self, model: str = DEFAULT_MODEL, input_size: int = 480, dtype: Precision = "float32",
                 mean: tuple[float, float, float] = IMAGENET_MEAN, std: tuple[float, float, float] = IMAGENET_STD,
                 local_files_only: bool = False):
        super().__init__()
        self.vit = load_vit(model, local_files_only).to(torch_dtype(dtype)).eval()
        patch = self.vit.config.patch_size
        if input_size % patch:
            raise ValueError(f"input_size must be a multiple of the patch size {patch}, got {input_size}")
        self.input_size = input_size
        self.grid = input_size // patch
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)
        # DINO (v1) ViTs learnt position embeddings at 224 px; other sizes need them interpolated.
        # DINOv2 always interpolates.
        self.forward_options = {"interpolate_pos_encoding": True} if self.vit.config.model_type == "vit" else {}

    # FeatureExtractor's call is the module's call: forward, with hooks.
    __call__ = nn.Module.__call__

    def preprocess(self, images: Tensor) -> Tensor:
        """[N, 3, H, W] in [0, 1] -> normalised pixel values at input_size, in the ViT's dtype."""
        size = (self.input_size, self.input_size)
        resized = F.interpolate(images.float(), size, mode="bilinear", antialias=True, align_corners=False)
        return ((resized - self.mean.float()) / self.std.float()).to(self.vit.dtype)

    @torch.no_grad()
    def forward(self, images: Tensor) -> Tensor:
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"images must be [N, 3, H, W], got shape {tuple(images.shape)}")
        tokens = self.vit(self.preprocess(images), **self.forward_options).last_hidden_state
        # Patch tokens come last, after the CLS (and any register) tokens.
        patches = tokens[:, -self.grid**2:]
        return patches.transpose(1, 2).reshape(len(images), -1, self.grid, self.grid)
