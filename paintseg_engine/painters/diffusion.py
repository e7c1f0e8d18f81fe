"""Stable-Diffusion inpainting as a PaintSeg painter, run by the engine's own denoising loop.

The loop calls the UNet and the VAE only through ``runtime`` runners, so export backends
(ONNX Runtime, TensorRT, compiled torch) replace exactly those two networks. It batches all
samples of one ``paint`` call, or of all the masks of one ``paint_many`` call (AMCP's prompts in
lockstep), into one UNet call per step, and skips work whose result is known: guidance between
identical prompts, re-encoding the same prompt, re-encoding the image.
"""
from __future__ import annotations

import copy
import inspect
import logging
from dataclasses import dataclass
from typing import Any, Callable, Literal

import diffusers
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..pretrained import CLIP_CONTEXT_LENGTH, Precision, explain_missing_weights, torch_dtype
from ..runtime import build_runners
from .base import Painter, check_stack

# runwayml/stable-diffusion-inpainting, the checkpoint the paper used, was removed from the hub;
# this is its mirror, the same files.
DEFAULT_MODEL = "stable-diffusion-v1-5/stable-diffusion-inpainting"
# Name -> (diffusers scheduler class, settings over the checkpoint's scheduler config).
SCHEDULERS = {
    "ddim": ("DDIMScheduler", {}),
    "dpm++": ("DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver++"}),
    "euler": ("EulerDiscreteScheduler", {}),
    "euler_ancestral": ("EulerAncestralDiscreteScheduler", {}),
    "unipc": ("UniPCMultistepScheduler", {}),
}
SchedulerName = Literal["ddim", "dpm++", "euler", "euler_ancestral", "unipc"]
INPAINTING_UNET_CHANNELS = 9  # noisy latents (4) + mask (1) + masked-image latents (4)


@dataclass
class SDComponents:
    """The parts of an SD-inpainting checkpoint, in memory. Without a text encoder and
    tokenizer the prompt must be empty, and a zero embedding stands in for it."""

    unet: nn.Module
    vae: nn.Module
    scheduler_config: dict
    text_encoder: nn.Module | None = None
    tokenizer: Any = None


def load_components(model: str, local_files_only: bool = False) -> SDComponents:
    """Load an SD-inpainting checkpoint in the diffusers layout from a hub id or a folder."""
    from transformers import CLIPTextModel, CLIPTokenizer

    options = dict(local_files_only=local_files_only)
    with explain_missing_weights(model, "Stable-Diffusion inpainting", DEFAULT_MODEL):
        return SDComponents(
            unet=diffusers.UNet2DConditionModel.from_pretrained(model, subfolder="unet", **options),
            vae=diffusers.AutoencoderKL.from_pretrained(model, subfolder="vae", **options),
            scheduler_config=dict(diffusers.DDIMScheduler.load_config(model, subfolder="scheduler", **options)),
            text_encoder=CLIPTextModel.from_pretrained(model, subfolder="text_encoder", **options),
            tokenizer=CLIPTokenizer.from_pretrained(model, subfolder="tokenizer", **options),
        )


def no_empty_float32_list(record: logging.LogRecord) -> bool:
    # diffusers' to(dtype) warns that modules "should be kept in float32" on every cast, listing
    # them, even when there are none: that empty warning says nothing (a listed one still shows).
    return "should be kept in float32: []" not in record.getMessage()


def cast(module: nn.Module, dtype: torch.dtype) -> nn.Module:
    """``module`` in eval mode and ``dtype``, without diffusers' empty float32 warning."""
    if module.dtype == dtype:
        return module.eval()
    modeling_logger = logging.getLogger("diffusers.models.modeling_utils")
    modeling_logger.addFilter(no_empty_float32_list)
    try:
        return module.to(dtype).eval()
    finally:
        modeling_logger.removeFilter(no_empty_float32_list)


def coverage(mask: Tensor, size: tuple[int, int]) -> Tensor:
    """Resize a [B, 1, H, W] mask so that any covered part of a target pixel covers it whole:
    thin masked regions (the O-step's band) must survive downsampling to latent cells."""
    return F.interpolate(mask.float(), size, mode="area") > 0


def painting_pixels(image: Tensor, resolution: int | None, multiple: int) -> Tensor:
    """``image`` [3, H, W] as [1, 3, h, w] in [0, 1]: its longer side at ``resolution`` (None: as
    it is), both sides on the autoencoder's grid of ``multiple``."""
    h, w = image.shape[-2:]
    scale = (resolution or max(h, w)) / max(h, w)
    size = tuple(max(multiple, round(s * scale / multiple) * multiple) for s in (h, w))
    return resize(image[None].float(), size).clamp(0, 1)


def check_mask(mask: Tensor, image: Tensor) -> None:
    if mask.shape != image.shape[-2:]:
        raise ValueError(f"mask must be {tuple(image.shape[-2:])} like the image, got {tuple(mask.shape)}")


def initial_noise(shape: tuple[int, ...], generator: torch.Generator | None, device: torch.device) -> Tensor:
    """Standard-normal latents drawn from the caller's generator (on its device), for reproducibility."""
    noise_device = generator.device if generator is not None else device
    return torch.randn(shape, generator=generator, device=noise_device).to(device)


def resize(images: Tensor, size: tuple[int, int]) -> Tensor:
    if tuple(images.shape[-2:]) == tuple(size):
        return images
    return F.interpolate(images, size, mode="bicubic", antialias=True, align_corners=False)


class DiffusionPainter(Painter, nn.Module):
    """Paints masked regions with a Stable-Diffusion inpainting checkpoint (9-channel UNet).

    Args:
        model: hub id or folder of a diffusers-layout SD-inpainting checkpoint, or ``SDComponents``.
        scheduler: sampler, built from the checkpoint's scheduler config: ``ddim`` (reference),
            ``dpm++`` (DPM-Solver++ multistep), ``euler``, ``euler_ancestral``, ``unipc``.
        steps: denoising steps. guidance_scale: classifier-free guidance (<= 1: none).
        prompt, negative_prompt: text conditioning; the reference paints with empty prompts.
        resolution: the longer side the image is painted at (a multiple of the VAE's 8x), the
            result resized back; None (default) paints at the image's own size, i.e. AMCP's frame
            (``amcp.frame_size``), so one setting sizes both.
        strength: fraction of the noise schedule run; < 1 starts from the original's latents
            noised to that level (img2img-style) instead of pure noise.
        blend_unmasked: after each step, replace latents outside the mask by the original's
            latents noised to the next step's level, so only the mask is repainted.
        dtype: precision of the UNet and text encoder; the VAE stays float32 under float16
            when the checkpoint marks it ``force_upcast`` (SD's VAE overflows in float16).
        backend, backend_options: runtime of the UNet and VAE and its settings, see
            ``runtime.build_runners`` (torch: ``{"channels_last": True}``).
        scheduler_options: settings over the scheduler config, e.g. ``{"use_karras_sigmas": True}``.
        skip_redundant_guidance: with equal prompt and negative prompt (both empty by default),
            the two guidance branches predict the same noise: run the UNet once, not twice.
        cache_text_embeddings: encode each prompt once per device, not on every call.
        cache_image_latents: encode the image's latents once in ``set_image``, not per ``paint``
            (needed by ``strength < 1`` and ``blend_unmasked``).
        local_files_only: never reach the hub (``HF_HUB_OFFLINE=1`` does the same).

    ``callback_on_step_end``, as diffusers' pipelines have it, is called after every denoising
    step as ``callback(painter, step_index, timestep, {"latents": latents})`` and returns the
    kwargs (latents it returns replace the loop's; they hold every sample of the stack, mask after
    mask); setting ``painter.interrupt`` in it ends the
    loop early (a warm-up needs the shapes, not all the steps). It is not a setting: callers
    (benchmarks, progress bars) set it and clear it.
    """

    def __init__(
        self,
        model: str | SDComponents = DEFAULT_MODEL,
        scheduler: SchedulerName = "ddim",
        steps: int = 50,
        guidance_scale: float = 7.5,
        prompt: str = "",
        negative_prompt: str = "",
        resolution: int | None = None,
        strength: float = 1.0,
        blend_unmasked: bool = False,
        dtype: Precision = "float32",
        backend: str = "torch",
        backend_options: dict | None = None,
        scheduler_options: dict | None = None,
        skip_redundant_guidance: bool = True,
        cache_text_embeddings: bool = True,
        cache_image_latents: bool = True,
        local_files_only: bool = False,
    ):
        super().__init__()
        components = load_components(model, local_files_only) if isinstance(model, str) else model
        if components.unet.config.in_channels != INPAINTING_UNET_CHANNELS:
            source = f"model={model!r}" if isinstance(model, str) else "the given components"
            raise ValueError(f"{source} has a {components.unet.config.in_channels}-channel UNet; "
                             f"an inpainting checkpoint's UNet takes {INPAINTING_UNET_CHANNELS}")
        if scheduler not in SCHEDULERS:
            raise ValueError(f"scheduler must be one of {sorted(SCHEDULERS)}, got {scheduler!r}")
        if not 0 < strength <= 1 or int(steps * strength) < 1:
            raise ValueError(f"strength must be in (0, 1] and leave at least one of the {steps} steps, "
                             f"got {strength}")
        self.vae_scale = 2 ** (len(components.vae.config.block_out_channels) - 1)
        if resolution is not None and resolution % self.vae_scale:
            raise ValueError(f"resolution must be a multiple of {self.vae_scale}, got {resolution}")
        if components.text_encoder is None and (prompt or negative_prompt):
            raise ValueError("prompt and negative_prompt must be empty for a model without a text encoder")

        precision = torch_dtype(dtype)
        upcast_vae = precision == torch.float16 and components.vae.config.get("force_upcast", False)
        self.unet = cast(components.unet, precision)
        self.vae = cast(components.vae, torch.float32 if upcast_vae else precision)
        self.text_encoder = cast(components.text_encoder, precision) if components.text_encoder else None
        self.tokenizer = components.tokenizer
        self.unet_runner, self.vae_runner = build_runners(backend, self.unet, self.vae, **(backend_options or {}))

        class_name, settings = SCHEDULERS[scheduler]
        self.noise_scheduler = getattr(diffusers, class_name).from_config(
            components.scheduler_config, **settings, **(scheduler_options or {}))
        self.step_takes_generator = "generator" in inspect.signature(self.noise_scheduler.step).parameters
        self.latent_scale = components.vae.config.scaling_factor
        self.steps, self.guidance_scale, self.strength = steps, guidance_scale, strength
        self.prompt, self.negative_prompt = prompt, negative_prompt
        self.resolution, self.blend_unmasked = resolution, blend_unmasked
        self.guided = guidance_scale > 1 and not (skip_redundant_guidance and prompt == negative_prompt)
        self.cache_text_embeddings, self.cache_image_latents = cache_text_embeddings, cache_image_latents
        self._text_embeddings: dict[tuple[str, torch.device], Tensor] = {}
        self.callback_on_step_end: Callable[[DiffusionPainter, int, Tensor, dict], dict] | None = None
        self.interrupt = False

    @property
    def uses_image_latents(self) -> bool:
        return self.strength < 1 or self.blend_unmasked

    @torch.no_grad()
    def set_image(self, image: Tensor) -> None:
        super().set_image(image)
        self._pixels = painting_pixels(image, self.resolution, self.vae_scale) * 2 - 1
        cached = self.cache_image_latents and self.uses_image_latents
        self._image_latents = self.encode(self._pixels) if cached else None

    def reset_image(self) -> None:
        super().reset_image()
        self._pixels = self._image_latents = None

    @torch.no_grad()
    def paint(self, mask: Tensor, num_samples: int, generator: torch.Generator | None = None) -> Tensor:
        return self.paint_many([mask], num_samples, [generator])[0]

    @torch.no_grad()
    def paint_many(self, masks: list[Tensor], num_samples: int,
                   generators: list[torch.Generator | None]) -> list[Tensor]:
        """Paint each of ``masks`` ``num_samples`` times, all their samples stacked: one UNet call
        per denoising step and one VAE encode and decode for the stack. Each mask's noise comes
        from its own generator in the order ``paint`` draws it, and its samples are stepped by its
        own copy of the scheduler, so each result is the one ``paint`` gives (up to the float
        rounding of a larger batch). A runner with a batch limit (an exported engine's
        ``max_batch``) gets stacks of as many masks as fit in it."""
        check_stack(masks, generators)
        size = self.masks_per_stack(num_samples, len(masks))
        return [painted for first in range(0, len(masks), size)
                for painted in self.paint_stack(masks[first:first + size], num_samples, generators[first:first + size])]

    def masks_per_stack(self, num_samples: int, count: int) -> int:
        """How many masks' samples one UNet call takes: all ``count``, unless a runner has a batch
        limit. One mask over the limit still goes alone, and its runner refuses it, naming the engine."""
        limits = [limit for runner in (self.unet_runner, self.vae_runner)
                  if (limit := getattr(runner, "max_batch", None)) is not None]
        unet_batch = num_samples * (2 if self.guided else 1)  # the VAE decodes num_samples per mask
        return max(1, min(limits) // unet_batch if limits else count)

    def paint_stack(self, masks: list[Tensor], num_samples: int,
                    generators: list[torch.Generator | None]) -> list[Tensor]:
        """``paint_many`` of masks whose samples fit in one UNet call: [N, 3, H, W] per mask."""
        image, pixels = self.image, self._pixels
        for mask in masks:
            check_mask(mask, image)
        device = pixels.device
        regions = coverage(torch.stack(masks)[:, None].to(device), pixels.shape[-2:])
        latent_size = (pixels.shape[-2] // self.vae_scale, pixels.shape[-1] // self.vae_scale)
        latent_masks = coverage(regions, latent_size)

        # 1. Conditioning: the UNet's extra channels (mask, masked-image latents) of each mask, for
        #    each of its samples, and the prompts.
        masked_image_latents = self.encode(pixels * ~regions)
        conditioning = torch.cat([latent_masks.float(), masked_image_latents], 1).repeat_interleave(num_samples, 0)
        text = self.text_conditioning(len(conditioning), device)

        # 2. Timesteps (strength < 1 skips the noisiest steps of the schedule), and per mask its own
        #    scheduler: multistep samplers keep past predictions, Euler's its step index.
        timesteps = self.timesteps(device)
        schedulers = [copy.deepcopy(self.noise_scheduler) for _ in masks]

        # 3. Initial latents: pure noise, or the original's latents noised to the first step's level.
        shape = (num_samples, *masked_image_latents.shape[1:])
        noise = [initial_noise(shape, generator, device) for generator in generators]
        if self.uses_image_latents:
            image_latents = self._image_latents if self.cache_image_latents else self.encode(pixels)
            image_latents = image_latents.expand(shape)
        if self.strength < 1:
            latents = [scheduler.add_noise(image_latents, n, timesteps[:1]) for scheduler, n in zip(schedulers, noise)]
        else:
            latents = [n * self.noise_scheduler.init_noise_sigma for n in noise]
        latents = torch.cat(latents)

        # 4. Denoising loop: one UNet call per step for all masks' samples (and both guidance
        #    branches); each mask's scheduler steps its own samples, drawing from its generator.
        painted_region = latent_masks.repeat_interleave(num_samples, 0)
        self.interrupt = False
        for i, t in enumerate(timesteps):
            if self.interrupt:
                break
            per_mask = latents.split(num_samples)
            scaled = torch.cat([scheduler.scale_model_input(part, t) for scheduler, part in zip(schedulers, per_mask)])
            noise_pred = self.predict_noise(scaled, t, conditioning, text).split(num_samples)
            latents = torch.cat([scheduler.step(pred, t, part, **self.step_options(generator), return_dict=False)[0]
                                 for scheduler, generator, pred, part in zip(schedulers, generators, noise_pred, per_mask)])
            if self.blend_unmasked:  # outside the mask, the original noised to the next step's level
                if i + 1 < len(timesteps):
                    original = torch.cat([scheduler.add_noise(image_latents, n, timesteps[i + 1:i + 2])
                                          for scheduler, n in zip(schedulers, noise)])
                else:
                    original = image_latents.repeat(len(masks), 1, 1, 1)
                latents = torch.where(painted_region, latents, original)
            if self.callback_on_step_end is not None:
                latents = self.callback_on_step_end(self, i, t, {"latents": latents}).get("latents", latents)

        # 5. Decode and return at the input's size, each mask's samples apart.
        painted = self.vae_runner.decode(latents / self.latent_scale) / 2 + 0.5
        return list(resize(painted, image.shape[-2:]).clamp(0, 1).to(image.dtype).split(num_samples))

    def step_options(self, generator: torch.Generator | None) -> dict:
        """Stochastic samplers draw their noise from the caller's generator, for reproducibility."""
        return {"generator": generator} if self.step_takes_generator else {}

    def encode(self, pixels: Tensor) -> Tensor:
        """Scaled VAE latents of images in [-1, 1]."""
        return self.vae_runner.encode(pixels) * self.latent_scale

    def timesteps(self, device: torch.device) -> Tensor:
        self.noise_scheduler.set_timesteps(self.steps, device=device)
        start = (self.steps - int(self.steps * self.strength)) * self.noise_scheduler.order
        if hasattr(self.noise_scheduler, "set_begin_index"):
            self.noise_scheduler.set_begin_index(start)
        return self.noise_scheduler.timesteps[start:]

    def predict_noise(self, scaled: Tensor, t: Tensor, conditioning: Tensor, text: Tensor) -> Tensor:
        """Guided noise prediction of latents ``scaled`` by the scheduler, ``conditioning`` one per
        sample; with guidance, the batch is [unconditional; conditional]."""
        if self.guided:
            scaled, conditioning = torch.cat([scaled] * 2), torch.cat([conditioning] * 2)
        sample = torch.cat([scaled, conditioning], 1)
        noise = self.unet_runner(sample, t.expand(len(sample)), text)
        if not self.guided:
            return noise
        unconditional, conditional = noise.chunk(2)
        return unconditional + self.guidance_scale * (conditional - unconditional)

    def text_conditioning(self, batch: int, device: torch.device) -> Tensor:
        """Prompt embeddings for a UNet batch: [negative x batch; prompt x batch] when guided."""
        prompts = [self.negative_prompt, self.prompt] if self.guided else [self.prompt]
        return torch.cat([self.embed(prompt, device).expand(batch, -1, -1) for prompt in prompts])

    def embed(self, prompt: str, device: torch.device) -> Tensor:
        """[1, L, D] text embedding of ``prompt``, computed once per device when caching."""
        key = (prompt, device)
        if key in self._text_embeddings:
            return self._text_embeddings[key]
        if self.text_encoder is None:
            embedding = torch.zeros(1, CLIP_CONTEXT_LENGTH, self.unet.config.cross_attention_dim, device=device)
        else:
            tokens = self.tokenizer(prompt, padding="max_length", max_length=self.tokenizer.model_max_length,
                                    truncation=True, return_tensors="pt").input_ids
            embedding = self.text_encoder(tokens.to(device))[0]
        if self.cache_text_embeddings:
            self._text_embeddings[key] = embedding
        return embedding
