"""Eager PyTorch runners: the UNet and VAE modules called directly.

Runners take and return tensors in the caller's dtype (float32 latents in the denoising loop)
and cast to the module's own dtype inside, so the loop never depends on a backend's precision.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn


def encoded_latents(vae: nn.Module, images: Tensor) -> Tensor:
    """An ``AutoencoderKL``'s posterior mean, or a ``VQModel``'s unquantized latents."""
    encoded = vae.encode(images)
    return encoded.latent_dist.mean if hasattr(encoded, "latent_dist") else encoded.latents


class TorchUNetRunner:
    """Calls a diffusers ``UNet2DConditionModel`` (or, without text, a ``UNet2DModel``). ``channels_last`` converts its weights in
    place (faster convolutions on CUDA with cuDNN); attention uses SDPA, diffusers' default."""

    max_batch = None  # any batch memory holds

    def __init__(self, unet: nn.Module, channels_last: bool = False):
        self.unet = unet
        if channels_last:
            unet.to(memory_format=torch.channels_last)

    def __call__(self, sample: Tensor, timestep: Tensor, encoder_hidden_states: Tensor | None = None) -> Tensor:
        dtype = self.unet.dtype
        context = () if encoder_hidden_states is None else (encoder_hidden_states.to(dtype),)
        noise = self.unet(sample.to(dtype), timestep, *context, return_dict=False)[0]
        return noise.to(sample.dtype)


class TorchVAERunner:
    """Calls a diffusers ``AutoencoderKL`` or ``VQModel``, outside any autocast region: the VAE runs in exactly
    its own dtype, which the painter keeps at float32 where float16 would overflow."""

    max_batch = None

    def __init__(self, vae: nn.Module, channels_last: bool = False):
        self.vae = vae
        if channels_last:
            vae.to(memory_format=torch.channels_last)

    def encode(self, images: Tensor) -> Tensor:
        with torch.autocast(images.device.type, enabled=False):
            latents = encoded_latents(self.vae, images.to(self.vae.dtype))
        return latents.to(images.dtype)

    def decode(self, latents: Tensor) -> Tensor:
        with torch.autocast(latents.device.type, enabled=False):
            images = self.vae.decode(latents.to(self.vae.dtype), return_dict=False)[0]
        return images.to(latents.dtype)
