"""The three exported networks of an SD- or LDM-inpainting checkpoint, with their named, ranged dims.

Each ``Component`` wraps one call of the diffusers model as a plain ``forward`` over tensors
(what the ONNX exporter and torch.export trace) and declares its inputs and output with
symbolic dims: the same names drive ONNX dynamic axes, torch.export dims, TensorRT optimization
profiles, the manifest, and the runtime's shape checks.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from paintseg_engine.runtime.torch_backend import encoded_latents

# Diffusion timesteps the UNet is trained on (SD's scheduler config): the range parity draws from.
TRAIN_TIMESTEPS = 1000

Shape = tuple[int | str, ...]


@dataclass
class TensorSpec:
    shape: Shape
    # None: the exported precision. The timestep stays float32: fractional timesteps of some
    # samplers would round in float16.
    dtype: torch.dtype | None = None
    # Parity draws uniform values in this range, or standard-normal ones when None.
    uniform: tuple[float, float] | None = None


class UNetNoise(nn.Module):
    def __init__(self, unet: nn.Module):
        super().__init__()
        self.unet = unet

    def forward(self, sample: Tensor, timestep: Tensor, encoder_hidden_states: Tensor) -> Tensor:
        return self.unet(sample, timestep, encoder_hidden_states, return_dict=False)[0]


class UnconditionalUNetNoise(UNetNoise):
    """A UNet without text (LDM inpainting's: the conditioning is in the sample's channels)."""

    def forward(self, sample: Tensor, timestep: Tensor) -> Tensor:
        return self.unet(sample, timestep, return_dict=False)[0]


class VAEEncoderMean(nn.Module):
    """Images in [-1, 1] -> unscaled latents (SD's posterior mean; a VQ's before quantization),
    as ``runtime.VAERunner.encode``."""

    def __init__(self, vae: nn.Module):
        super().__init__()
        self.vae = vae

    def forward(self, images: Tensor) -> Tensor:
        return encoded_latents(self.vae, images)


class VAEDecoder(nn.Module):
    """Unscaled latents -> images in about [-1, 1], as ``runtime.VAERunner.decode``."""

    def __init__(self, vae: nn.Module):
        super().__init__()
        self.vae = vae

    def forward(self, latents: Tensor) -> Tensor:
        return self.vae.decode(latents, return_dict=False)[0]


@dataclass
class Component:
    name: str    # unet, vae_encoder, vae_decoder: the file name and manifest component
    source: str  # unet or vae: the checkpoint model whose weights it holds
    module: nn.Module
    inputs: dict[str, TensorSpec]
    outputs: dict[str, TensorSpec]

    def input_dtype(self, name: str, precision: torch.dtype) -> torch.dtype:
        return self.inputs[name].dtype or precision

    def shapes(self, dims: dict[str, int]) -> dict[str, tuple[int, ...]]:
        """Concrete input shapes with each named dim set from ``dims``."""
        return {name: tuple(dims[d] if isinstance(d, str) else d for d in spec.shape)
                for name, spec in self.inputs.items()}

    def random_inputs(self, dims: dict[str, int], precision: torch.dtype, generator: torch.Generator) -> list[Tensor]:
        tensors = []
        for name, shape in self.shapes(dims).items():
            spec = self.inputs[name]
            if spec.uniform:
                low, high = spec.uniform
                tensor = torch.rand(shape, generator=generator) * (high - low) + low
            else:
                tensor = torch.randn(shape, generator=generator)
            tensors.append(tensor.to(self.input_dtype(name, precision)))
        return tensors


def inpainting_components(unet: nn.Module, vae: nn.Module, text_tokens: int) -> list[Component]:
    """SD inpainting's UNet (with text) or LDM inpainting's (``UNet2DModel``: without), and the
    autoencoder's encoder and decoder (SD's KL VAE, or LDM's VQ-f4, which quantizes in decode)."""
    latent = ("batch", vae.config.latent_channels, "latent_height", "latent_width")
    image = ("batch", vae.config.in_channels, "image_height", "image_width")
    sample = {"sample": TensorSpec(("batch", unet.config.in_channels, "latent_height", "latent_width")),
              "timestep": TensorSpec(("batch",), torch.float32, uniform=(0, TRAIN_TIMESTEPS))}
    if unet.config.get("cross_attention_dim"):
        network = UNetNoise(unet)
        sample["encoder_hidden_states"] = TensorSpec(("batch", text_tokens, unet.config.cross_attention_dim))
    else:
        network = UnconditionalUNetNoise(unet)
    return [
        Component("unet", "unet", network, inputs=sample,
                  outputs={"noise": TensorSpec(("batch", unet.config.out_channels, "latent_height", "latent_width"))}),
        Component("vae_encoder", "vae", VAEEncoderMean(vae), inputs={"images": TensorSpec(image, uniform=(-1, 1))},
                  outputs={"latent_mean": TensorSpec(latent)}),
        Component("vae_decoder", "vae", VAEDecoder(vae), inputs={"latents": TensorSpec(latent)},
                  outputs={"images": TensorSpec(("batch", vae.config.out_channels, "image_height", "image_width"))}),
    ]


def vae_scale_factor(vae: nn.Module) -> int:
    return 2 ** (len(vae.config.block_out_channels) - 1)


def unet_size_multiple(unet: nn.Module) -> int:
    """Latent sides must divide by the UNet's total downsampling, or its skips misalign."""
    return 2 ** (len(unet.config.down_block_types) - 1)
