"""latent-diffusion's ``inpainting_big`` as a PaintSeg painter: the released PaintSeg script's I-step
painter, run as latent-diffusion's ``scripts/inpaint.py`` runs it.

Per ``paint`` call: the masked image (masked pixels black) is encoded by the VQ first stage,
unquantized; the mask, in [-1, 1] as the script feeds it, is resized to the latent grid
(nearest); the UNet denoises [noise latents, masked-image latents, mask] with DDIM (eta 0, no
text, no guidance); the latents are quantized and decoded, and the original is pasted back
outside the mask. The UNet and VQ run through ``runtime`` runners, like the SD painter's.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import diffusers
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..pretrained import MissingWeightsError, Precision, torch_dtype
from ..runtime import build_runners
from .base import Painter
from .diffusion import cast, check_mask, initial_noise, painting_pixels, resize
from .ldm_checkpoint import SCHEDULER, UNET, VQVAE

# Where the converted checkpoint goes by default; how to get it is in configs/paper.yaml.
DEFAULT_MODEL = "checkpoints/ldm-inpainting-big"
GET_WEIGHTS = ("download latent-diffusion's models/ldm/inpainting_big last.ckpt and config.yaml (see configs/paper.yaml), "
               "then python -m paintseg_engine.painters.ldm_checkpoint --config config.yaml --checkpoint last.ckpt "
               "--out {folder}")


@dataclass
class LDMComponents:
    """The parts of a converted inpainting checkpoint, in memory."""

    unet: nn.Module  # LDMUNet2DModel: [latents, masked-image latents, mask] -> noise
    vqvae: nn.Module  # diffusers VQModel
    scheduler_config: dict


def load_ldm_components(model: str | Path) -> LDMComponents:
    """Load a folder written by ``ldm_checkpoint.convert``."""
    from .ldm_unet import LDMUNet2DModel

    folder = Path(model)
    missing = [part for part in (UNET, VQVAE, SCHEDULER) if not (folder / part).is_dir()]
    if missing:
        raise MissingWeightsError(f"LDM inpainting weights not found in {folder} (no {', '.join(missing)}/); "
                                  + GET_WEIGHTS.format(folder=folder))
    return LDMComponents(unet=LDMUNet2DModel.from_pretrained(folder / UNET),
                         vqvae=diffusers.VQModel.from_pretrained(folder / VQVAE),
                         scheduler_config=dict(diffusers.DDIMScheduler.load_config(folder / SCHEDULER)))


class LDMInpaintPainter(Painter, nn.Module):
    """Paints masked regions with latent-diffusion's inpainting model (VQ-f4 + a 7-channel UNet).

    Args:
        model: folder of a converted checkpoint (``python -m paintseg_engine.painters.ldm_checkpoint``),
            or ``LDMComponents``.
        steps: DDIM steps (eta 0); the released script runs 50.
        resolution: the longer side painted at (a multiple of the first stage's downsampling), the
            result resized back; None (default) paints at the image's own size, i.e. AMCP's frame.
        dtype: precision of the UNet and the VQ autoencoder.
        backend, backend_options: runtime of the UNet and the VQ autoencoder, see ``runtime.build_runners``.
    """

    def __init__(self, model: str | LDMComponents = DEFAULT_MODEL, steps: int = 50, resolution: int | None = None,
                 dtype: Precision = "float32", backend: str = "torch", backend_options: dict | None = None):
        super().__init__()
        components = load_ldm_components(model) if isinstance(model, (str, Path)) else model
        latent, unet_in = components.vqvae.config.latent_channels, components.unet.config.in_channels
        if unet_in != 2 * latent + 1:
            raise ValueError(f"the UNet takes {unet_in} channels; an inpainting UNet over {latent}-channel latents "
                             f"takes {2 * latent + 1} (latents, masked-image latents, mask)")
        if steps < 1:
            raise ValueError(f"steps must be >= 1, got {steps}")
        self.vae_scale = 2 ** (len(components.vqvae.config.block_out_channels) - 1)
        if resolution is not None and resolution % self.vae_scale:
            raise ValueError(f"resolution must be a multiple of {self.vae_scale}, got {resolution}")
        precision = torch_dtype(dtype)
        self.unet, self.vae = cast(components.unet, precision), cast(components.vqvae, precision)
        self.unet_runner, self.vae_runner = build_runners(backend, self.unet, self.vae, **(backend_options or {}))
        self.noise_scheduler = diffusers.DDIMScheduler.from_config(components.scheduler_config)
        self.steps, self.resolution = steps, resolution
        # latent-diffusion's scale_factor: decoding divides by it; the conditioning is encoded unscaled.
        self.latent_scale = components.vqvae.config.scaling_factor

    @torch.no_grad()
    def set_image(self, image: Tensor) -> None:
        super().set_image(image)
        self._pixels = painting_pixels(image, self.resolution, self.vae_scale)

    @torch.no_grad()
    def paint(self, mask: Tensor, num_samples: int, generator: torch.Generator | None = None) -> Tensor:
        image, pixels = self.image, self._pixels
        check_mask(mask, image)
        device = pixels.device
        region = F.interpolate(mask[None, None].float().to(device), pixels.shape[-2:]) > 0.5

        # 1. Conditioning: the masked image's latents and the mask (in [-1, 1]) on the latent grid.
        masked_latents = self.vae_runner.encode((pixels * ~region) * 2 - 1)
        latent_mask = F.interpolate(region.float() * 2 - 1, size=masked_latents.shape[-2:])
        conditioning = torch.cat([masked_latents, latent_mask], 1).expand(num_samples, -1, -1, -1)

        # 2. Pure noise, denoised by DDIM (eta 0) over the checkpoint's schedule.
        shape = (num_samples, masked_latents.shape[1], *masked_latents.shape[-2:])
        latents = initial_noise(shape, generator, device)
        self.noise_scheduler.set_timesteps(self.steps, device=device)
        for t in self.noise_scheduler.timesteps:
            noise = self.unet_runner(torch.cat([latents, conditioning], 1), t.expand(num_samples))
            latents = self.noise_scheduler.step(noise, t, latents, eta=0.0, return_dict=False)[0]

        # 3. Decode (the first stage quantizes), paste the original back outside the mask.
        painted = (self.vae_runner.decode(latents / self.latent_scale) / 2 + 0.5).clamp(0, 1)
        painted = torch.where(region, painted, pixels)
        return resize(painted, image.shape[-2:]).clamp(0, 1).to(image.dtype)
