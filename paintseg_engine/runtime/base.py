"""Runtime backends for the two networks of a latent inpainter: the UNet and the VAE.

The denoising loop in ``painters.diffusion`` calls only these narrow interfaces, so
torch eager, torch.compile, ONNX Runtime, TensorRT and AOTInductor runners are interchangeable.
All tensors are torch tensors on the runner's device; runners convert as needed.
"""
from __future__ import annotations

from typing import Protocol

from torch import Tensor


class UNetRunner(Protocol):
    def __call__(self, sample: Tensor, timestep: Tensor, encoder_hidden_states: Tensor) -> Tensor:
        """sample [B, 9, h, w] (noisy latents, mask, masked-image latents), timestep [B],
        encoder_hidden_states [B, L, D] -> predicted noise [B, 4, h, w]."""
        ...


class VAERunner(Protocol):
    def encode(self, images: Tensor) -> Tensor:
        """images [B, 3, H, W] in [-1, 1] -> latent means [B, 4, H/8, W/8], not yet scaled
        by the VAE's ``scaling_factor``."""
        ...

    def decode(self, latents: Tensor) -> Tensor:
        """unscaled latents [B, 4, h, w] -> images [B, 3, 8h, 8w] in about [-1, 1]."""
        ...
