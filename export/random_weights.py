"""Models with random weights, in the real on-disk formats, for tests, exports and latency benchmarks
(kept out of the installed package: a user of the engine never needs them).

No weights can be downloaded where this engine is developed, so tests build tiny
Stable-Diffusion-inpainting checkpoints here, save them exactly as diffusers does,
and load them back through the engine's real loading code. Benchmarks use the
full-size architectures with random weights: latency does not depend on weight values.
"""
from __future__ import annotations

import json
import string
from pathlib import Path

import torch

# Stable Diffusion 1.x inpainting (runwayml/stable-diffusion-inpainting) architecture.
SD_INPAINT_UNET = dict(
    sample_size=64, in_channels=9, out_channels=4, layers_per_block=2,
    block_out_channels=(320, 640, 1280, 1280),
    down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
    up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
    cross_attention_dim=768, attention_head_dim=8,
)
SD_VAE = dict(
    sample_size=512, in_channels=3, out_channels=3, latent_channels=4, layers_per_block=2,
    block_out_channels=(128, 256, 512, 512),
    down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
)
# SD 1.x's noise schedule.
SD_SCHEDULE = dict(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear")
# Same topology (four VAE levels: 8x downsampling; 9-channel UNet input), tiny widths.
TINY_UNET = dict(
    sample_size=8, in_channels=9, out_channels=4, layers_per_block=1,
    block_out_channels=(32, 64),
    down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
    up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
    cross_attention_dim=32, attention_head_dim=4, norm_num_groups=32,
)
TINY_VAE = dict(
    sample_size=64, in_channels=3, out_channels=3, latent_channels=4, layers_per_block=1,
    block_out_channels=(8, 8, 16, 16), norm_num_groups=8,
    down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
)
TINY_TEXT_ENCODER = dict(
    hidden_size=32, intermediate_size=37, num_attention_heads=4, num_hidden_layers=2,
    max_position_embeddings=77, projection_dim=32,
)


def random_unet(full_size: bool = True, seed: int = 0):
    from diffusers import UNet2DConditionModel

    torch.manual_seed(seed)
    return UNet2DConditionModel(**(SD_INPAINT_UNET if full_size else TINY_UNET)).eval()


def random_vae(full_size: bool = True, seed: int = 0):
    from diffusers import AutoencoderKL

    torch.manual_seed(seed)
    return AutoencoderKL(**(SD_VAE if full_size else TINY_VAE)).eval()


def random_sd_components(seed: int = 0):
    """The full-size SD-inpainting UNet and VAE with random weights, as the painter takes them (no
    text encoder: empty prompts). ``seed`` 0 matches ``python -m export --random-full-size``'s default."""
    from paintseg_engine.painters.diffusion import SDComponents

    return SDComponents(random_unet(seed=seed), random_vae(seed=seed), dict(SD_SCHEDULE))


def _write_tiny_clip_tokenizer(folder: Path) -> None:
    """A byte-pair tokenizer with one token per lower-case letter and digit."""
    from transformers import CLIPTokenizer

    words = [c + suffix for c in string.ascii_lowercase + string.digits for suffix in ("", "</w>")]
    vocab = {tok: i for i, tok in enumerate(["<|startoftext|>", "<|endoftext|>", *words])}
    CLIPTokenizer(vocab=vocab, merges=[], model_max_length=77).save_pretrained(folder)


def save_tiny_sd_inpainting(folder: str | Path, seed: int = 0) -> Path:
    """Build a tiny random SD-inpainting pipeline and save it in the diffusers folder layout."""
    from diffusers import DDIMScheduler
    from transformers import CLIPTextConfig, CLIPTextModel

    folder = Path(folder)
    random_unet(full_size=False, seed=seed).save_pretrained(folder / "unet")
    random_vae(full_size=False, seed=seed).save_pretrained(folder / "vae")
    torch.manual_seed(seed)
    text_config = CLIPTextConfig(vocab_size=2 + 2 * 36, bos_token_id=0, eos_token_id=1, pad_token_id=1, **TINY_TEXT_ENCODER)
    CLIPTextModel(text_config).eval().save_pretrained(folder / "text_encoder")
    _write_tiny_clip_tokenizer(folder / "tokenizer")
    scheduler = DDIMScheduler(**SD_SCHEDULE, clip_sample=False, set_alpha_to_one=False, steps_offset=1)
    scheduler.save_pretrained(folder / "scheduler")
    (folder / "model_index.json").write_text(json.dumps({
        "_class_name": "StableDiffusionInpaintPipeline",
        "_diffusers_version": __import__("diffusers").__version__,
        "unet": ["diffusers", "UNet2DConditionModel"],
        "vae": ["diffusers", "AutoencoderKL"],
        "text_encoder": ["transformers", "CLIPTextModel"],
        "tokenizer": ["transformers", "CLIPTokenizer"],
        "scheduler": ["diffusers", "DDIMScheduler"],
        "safety_checker": [None, None],
        "feature_extractor": [None, None],
    }, indent=2))
    return folder


# latent-diffusion's inpainting_big (models/ldm/inpainting_big/config.yaml): its UNet and VQ-f4
# settings, in the original's terms (the converter maps them to diffusers').
LDM_INPAINT_UNET = dict(image_size=64, in_channels=7, out_channels=3, model_channels=256, num_res_blocks=2,
                        attention_resolutions=[8, 4, 2], channel_mult=[1, 2, 3, 4], num_heads=8)
LDM_VQ = dict(embed_dim=3, n_embed=8192)
LDM_VQ_DDCONFIG = dict(z_channels=3, resolution=256, in_channels=3, out_ch=3, ch=128, ch_mult=[1, 2, 4],
                       num_res_blocks=2)
LDM_SCHEDULE = dict(linear_start=0.0015, linear_end=0.0205, timesteps=1000)
# Same topology (f4 first stage: three levels; 7-channel UNet with attention), tiny widths.
TINY_LDM_UNET = dict(LDM_INPAINT_UNET, image_size=8, model_channels=32, num_res_blocks=1,
                     attention_resolutions=[2], channel_mult=[1, 2], num_heads=2)
TINY_LDM_VQ = dict(embed_dim=3, n_embed=16)
TINY_LDM_VQ_DDCONFIG = dict(LDM_VQ_DDCONFIG, resolution=32, ch=32, ch_mult=[1, 2, 2], num_res_blocks=1)


def random_ldm_components(full_size: bool = True, seed: int = 0):
    """latent-diffusion's inpainting UNet and VQ autoencoder (inpainting_big, or tiny widths) with
    random weights, converted as the painter loads them."""
    from diffusers import VQModel

    from paintseg_engine.painters.ldm import LDMComponents
    from paintseg_engine.painters.ldm_checkpoint import scheduler_config, unet_config, vq_config
    from paintseg_engine.painters.ldm_unet import LDMUNet2DModel

    torch.manual_seed(seed)
    unet = LDMUNet2DModel(**unet_config(LDM_INPAINT_UNET if full_size else TINY_LDM_UNET)).eval()
    vqvae = VQModel(**vq_config(LDM_VQ_DDCONFIG if full_size else TINY_LDM_VQ_DDCONFIG,
                                LDM_VQ if full_size else TINY_LDM_VQ, scale_factor=1.0)).eval()
    return LDMComponents(unet, vqvae, scheduler_config(LDM_SCHEDULE))


def save_tiny_ldm_inpainting(folder: str | Path, seed: int = 0) -> Path:
    """A tiny random LDM-inpainting checkpoint in the converter's folder layout."""
    from diffusers import DDIMScheduler

    from paintseg_engine.painters.ldm_checkpoint import SCHEDULER, UNET, VQVAE

    folder = Path(folder)
    components = random_ldm_components(full_size=False, seed=seed)
    components.unet.save_pretrained(folder / UNET)
    components.vqvae.save_pretrained(folder / VQVAE)
    DDIMScheduler(**components.scheduler_config).save_pretrained(folder / SCHEDULER)
    return folder


# DINO-style ViTs: tiny widths, the real patch sizes (ViT-B/8, DINOv2 ViT-B/14).
TINY_VIT = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4)
TINY_VIT_KINDS = ("dino", "dinov2", "dinov2_registers")


def save_tiny_vit(folder: str | Path, kind: str = "dino", seed: int = 0) -> Path:
    """Build a tiny random ViT and save it with ``save_pretrained``: ``dino`` is a ViTModel with
    8-pixel patches, ``dinov2`` a Dinov2Model with 14-pixel patches, ``dinov2_registers`` the
    same with four register tokens."""
    from transformers import (Dinov2Config, Dinov2Model, Dinov2WithRegistersConfig, Dinov2WithRegistersModel,
                              ViTConfig, ViTModel)

    torch.manual_seed(seed)
    if kind == "dino":
        model = ViTModel(ViTConfig(patch_size=8, image_size=32, intermediate_size=64, **TINY_VIT),
                         add_pooling_layer=False)
    elif kind == "dinov2":
        model = Dinov2Model(Dinov2Config(patch_size=14, image_size=56, **TINY_VIT))
    elif kind == "dinov2_registers":
        model = Dinov2WithRegistersModel(Dinov2WithRegistersConfig(patch_size=14, image_size=56,
                                                                   num_register_tokens=4, **TINY_VIT))
    else:
        raise ValueError(f"kind must be one of {TINY_VIT_KINDS}, got {kind!r}")
    folder = Path(folder)
    model.eval().save_pretrained(folder)
    return folder


def save_random_vit_b8(folder: str | Path, seed: int = 0) -> Path:
    """DINO ViT-B/8's architecture (transformers' ViT-Base defaults, 8-pixel patches) with random
    weights, saved with ``save_pretrained``: for latency work only."""
    from transformers import ViTConfig, ViTModel

    torch.manual_seed(seed)
    folder = Path(folder)
    ViTModel(ViTConfig(patch_size=8), add_pooling_layer=False).eval().save_pretrained(folder)
    return folder
