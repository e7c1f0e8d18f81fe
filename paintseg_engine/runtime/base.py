"""Runtime backends for the two networks of a latent inpainter: the UNet and the VAE.

The denoising loop in ``painters.diffusion`` calls only these narrow interfaces, so
torch eager, torch.compile, ONNX Runtime, TensorRT and AOTInductor runners are interchangeable.
All tensors are torch tensors on the runner's device; runners convert as needed.
"""
from __future__ import annotations

from typing import Protocol

from torch import Tensor


class UNetRunner(Protocol):
    # The largest batch it takes (an exported engine's range), None for any; a runner without the
    # attribute (a wrapper that times calls) counts as None.
    max_batch: int | None

    def __call__(self, sample: Tensor, timestep: Tensor, encoder_hidden_states: Tensor | None = None) -> Tensor:
        """sample [B, C, h, w] (noisy latents and the inpainting conditioning: SD's mask and
        masked-image latents, 9 channels; LDM's masked-image latents and mask, 7), timestep [B],
        encoder_hidden_states [B, L, D] (SD's text; None for LDM's UNet) -> predicted noise."""
        ...


class VAERunner(Protocol):
    max_batch: int | None  # as the UNet runner's

    def encode(self, images: Tensor) -> Tensor:
        """images [B, 3, H, W] in [-1, 1] -> latents [B, 4, H/8, W/8] (SD's VAE: the posterior's
        mean; LDM's VQ: [B, 3, H/4, W/4], unquantized), not yet scaled by ``scaling_factor``."""
        ...

    def decode(self, latents: Tensor) -> Tensor:
        """unscaled latents [B, 4, h, w] -> images [B, 3, 8h, 8w] in about [-1, 1] (a VQ
        autoencoder quantizes them first)."""
        ...
