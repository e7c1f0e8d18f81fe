"""latent-diffusion's released inpainting checkpoint (``config.yaml`` + ``last.ckpt``) converted to
diffusers folders, which ``LDMInpaintPainter`` loads with plain ``from_pretrained``:

    <out>/unet       LDMUNet2DModel   <- model.diffusion_model.* (its EMA copy, model_ema.*, when
                                         present: the released script samples inside ema_scope)
    <out>/vqvae      VQModel          <- first_stage_model.* (VQ-f4; also the conditioning encoder)
    <out>/scheduler  DDIMScheduler    <- the config's linear_start / linear_end / timesteps

    python -m paintseg_engine.painters.ldm_checkpoint --config config.yaml --checkpoint last.ckpt --out DIR

Only what ``models/ldm/inpainting_big`` uses is converted; any other setting is refused by name.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import Tensor

UNET, VQVAE, SCHEDULER = "unet", "vqvae", "scheduler"
UNET_PREFIX, EMA_PREFIX, VQ_PREFIX = "model.diffusion_model.", "model_ema.", "first_stage_model."
LATENT_DIFFUSION = "ldm.models.diffusion.ddpm.LatentDiffusion"
OPENAI_UNET = "ldm.modules.diffusionmodules.openaimodel.UNetModel"
VQ_INTERFACE = "ldm.models.autoencoder.VQModelInterface"
# Original settings the conversion supports, at the values inpainting_big has.
REQUIRED = {
    "model": {"concat_mode": True, "cond_stage_config": "__is_first_stage__", "parameterization": "eps",
              "beta_schedule": "linear", "scale_by_std": False},
    "unet": {"dims": 2, "use_scale_shift_norm": False, "resblock_updown": True, "num_head_channels": -1,
             "use_spatial_transformer": False, "use_new_attention_order": False, "conv_resample": True,
             "num_classes": None},
    "ddconfig": {"attn_type": "none", "attn_resolutions": [], "double_z": False},
}
# The originals' defaults, where inpainting_big's config leaves a setting out.
DEFAULTS = {
    "model": {"parameterization": "eps", "beta_schedule": "linear", "scale_by_std": False, "scale_factor": 1.0,
              "use_ema": True, "concat_mode": True},
    "unet": {"dims": 2, "use_scale_shift_norm": False, "resblock_updown": False, "num_head_channels": -1,
             "use_spatial_transformer": False, "use_new_attention_order": False, "conv_resample": True,
             "num_classes": None, "num_heads": -1},
    "ddconfig": {"attn_type": "vanilla", "double_z": True},
}


class CheckpointError(ValueError):
    """The original checkpoint or its config is missing something, or is not what is converted."""


def read_config(path: Path) -> dict[str, dict[str, Any]]:
    """The model, UNet and first-stage settings of a latent-diffusion ``config.yaml``, checked."""
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file (the config.yaml of the latent-diffusion release)")
    try:
        model = yaml.safe_load(path.read_text())["model"]
        params, unet, stage = model["params"], model["params"]["unet_config"], model["params"]["first_stage_config"]
        sections = {"model": {**DEFAULTS["model"], **params}, "unet": {**DEFAULTS["unet"], **unet["params"]},
                    "ddconfig": {**DEFAULTS["ddconfig"], **stage["params"]["ddconfig"]},
                    "first_stage": stage["params"]}
        targets = {"model": model["target"], "unet_config": unet["target"], "first_stage_config": stage["target"]}
    except (yaml.YAMLError, KeyError, TypeError) as err:
        raise CheckpointError(f"{path}: not a latent-diffusion model config (missing {err})") from None
    for key, target in {"model": LATENT_DIFFUSION, "unet_config": OPENAI_UNET, "first_stage_config": VQ_INTERFACE}.items():
        if targets[key] != target:
            raise CheckpointError(f"{path}: {key} target is {targets[key]}, the conversion reads {target}")
    for section, required in REQUIRED.items():
        for key, value in required.items():
            if sections[section].get(key) != value:
                raise CheckpointError(f"{path}: {section} setting {key}={sections[section].get(key)!r} is not "
                                      f"supported (inpainting_big has {value!r})")
    return sections


def unet_config(unet: dict[str, Any]) -> dict[str, Any]:
    """``LDMUNet2DModel`` settings of an ``openaimodel.UNetModel``: attention at the levels whose
    downsampling factor is in ``attention_resolutions``, up/down-sampling by ResBlocks."""
    levels = len(unet["channel_mult"])
    attention = [2 ** level in unet["attention_resolutions"] for level in range(levels)]
    return dict(
        sample_size=unet["image_size"], in_channels=unet["in_channels"], out_channels=unet["out_channels"],
        block_out_channels=[unet["model_channels"] * m for m in unet["channel_mult"]],
        layers_per_block=unet["num_res_blocks"],
        down_block_types=["AttnDownBlock2D" if a else "ResnetDownsampleBlock2D" for a in attention],
        up_block_types=["AttnUpBlock2D" if a else "ResnetUpsampleBlock2D" for a in reversed(attention)],
        downsample_type="resnet", upsample_type="resnet", attention_head_dim=None,
        attention_heads=unet["num_heads"], norm_num_groups=32, norm_eps=1e-5, flip_sin_to_cos=True, freq_shift=0,
    )


def vq_config(ddconfig: dict[str, Any], first_stage: dict[str, Any], scale_factor: float) -> dict[str, Any]:
    levels = len(ddconfig["ch_mult"])
    return dict(
        in_channels=ddconfig["in_channels"], out_channels=ddconfig["out_ch"],
        block_out_channels=[ddconfig["ch"] * m for m in ddconfig["ch_mult"]],
        layers_per_block=ddconfig["num_res_blocks"], latent_channels=ddconfig["z_channels"],
        down_block_types=["DownEncoderBlock2D"] * levels, up_block_types=["UpDecoderBlock2D"] * levels,
        num_vq_embeddings=first_stage["n_embed"], vq_embed_dim=first_stage["embed_dim"],
        sample_size=ddconfig["resolution"], norm_num_groups=32, scaling_factor=scale_factor,
        mid_block_add_attention=False,
    )


def scheduler_config(model: dict[str, Any]) -> dict[str, Any]:
    """DDIM as latent-diffusion's sampler runs it: ``linear`` there is diffusers' ``scaled_linear``;
    timesteps 1, 1 + T/S, ... (steps_offset 1, leading spacing); the last step goes to alpha_0."""
    return dict(num_train_timesteps=model["timesteps"], beta_start=model["linear_start"],
                beta_end=model["linear_end"], beta_schedule="scaled_linear", clip_sample=False,
                set_alpha_to_one=False, steps_offset=1, timestep_spacing="leading", prediction_type="epsilon")


# --- Weight names ------------------------------------------------------------------------------


def resblock(original: str, converted: str) -> dict[str, str]:
    """openaimodel.ResBlock -> diffusers ResnetBlock2D (prefixes, without trailing dots)."""
    parts = {"in_layers.0": "norm1", "in_layers.2": "conv1", "emb_layers.1": "time_emb_proj",
             "out_layers.0": "norm2", "out_layers.3": "conv2", "skip_connection": "conv_shortcut"}
    return {f"{original}.{a}": f"{converted}.{b}" for a, b in parts.items()}


def unet_names(unet: dict[str, Any]) -> tuple[dict[str, str], dict[str, str]]:
    """(ResBlock and plain layer prefixes, AttentionBlock prefixes): original -> converted."""
    levels, blocks = len(unet["channel_mult"]), unet["num_res_blocks"]
    attention = [2 ** level in unet["attention_resolutions"] for level in range(levels)]
    names = {"time_embed.0": "time_embedding.linear_1", "time_embed.2": "time_embedding.linear_2",
             "input_blocks.0.0": "conv_in", "out.0": "conv_norm_out", "out.2": "conv_out"}
    attentions = {"middle_block.1": "mid_block.attentions.0"}
    names.update({**resblock("middle_block.0", "mid_block.resnets.0"), **resblock("middle_block.2", "mid_block.resnets.1")})
    index = 1
    for level in range(levels):
        for block in range(blocks):
            names.update(resblock(f"input_blocks.{index}.0", f"down_blocks.{level}.resnets.{block}"))
            if attention[level]:
                attentions[f"input_blocks.{index}.1"] = f"down_blocks.{level}.attentions.{block}"
            index += 1
        if level < levels - 1:
            names.update(resblock(f"input_blocks.{index}.0", f"down_blocks.{level}.downsamplers.0"))
            index += 1
    index = 0
    for up, level in enumerate(reversed(range(levels))):
        for block in range(blocks + 1):
            names.update(resblock(f"output_blocks.{index}.0", f"up_blocks.{up}.resnets.{block}"))
            if attention[level]:
                attentions[f"output_blocks.{index}.1"] = f"up_blocks.{up}.attentions.{block}"
            if block == blocks and level > 0:
                names.update(resblock(f"output_blocks.{index}.{1 + attention[level]}", f"up_blocks.{up}.upsamplers.0"))
            index += 1
    return names, attentions


def vq_names(ddconfig: dict[str, Any]) -> dict[str, str]:
    """Taming-style Encoder/Decoder/quantizer -> diffusers VQModel prefixes; the decoder's levels
    are numbered from the top there, from the bottom here."""
    levels, blocks = len(ddconfig["ch_mult"]), ddconfig["num_res_blocks"]
    resnet = {"norm1": "norm1", "conv1": "conv1", "norm2": "norm2", "conv2": "conv2", "nin_shortcut": "conv_shortcut"}
    names = {"quant_conv": "quant_conv", "post_quant_conv": "post_quant_conv", "quantize.embedding": "quantize.embedding"}
    for coder in ("encoder", "decoder"):
        names.update({f"{coder}.{a}": f"{coder}.{b}" for a, b in
                      {"conv_in": "conv_in", "norm_out": "conv_norm_out", "conv_out": "conv_out"}.items()})
        for i in (1, 2):
            names.update({f"{coder}.mid.block_{i}.{a}": f"{coder}.mid_block.resnets.{i - 1}.{b}" for a, b in resnet.items()})
    for level in range(levels):
        for block in range(blocks):
            names.update({f"encoder.down.{level}.block.{block}.{a}": f"encoder.down_blocks.{level}.resnets.{block}.{b}"
                          for a, b in resnet.items()})
        names[f"encoder.down.{level}.downsample.conv"] = f"encoder.down_blocks.{level}.downsamplers.0.conv"
        up = levels - 1 - level
        for block in range(blocks + 1):
            names.update({f"decoder.up.{level}.block.{block}.{a}": f"decoder.up_blocks.{up}.resnets.{block}.{b}"
                          for a, b in resnet.items()})
        names[f"decoder.up.{level}.upsample.conv"] = f"decoder.up_blocks.{up}.upsamplers.0.conv"
    return names


def renamed(weights: dict[str, Tensor], names: dict[str, str], attentions: dict[str, str], what: str,
            checkpoint: Path, prefix: str) -> dict[str, Tensor]:
    """``weights`` under their converted names; a weight of neither ``names`` nor ``attentions``
    (split apart by ``split_attention``) is refused: the config does not describe it."""
    out, unused = {}, []
    for key, tensor in weights.items():
        layer, _, leaf = key.rpartition(".")
        if layer in names:
            out[f"{names[layer]}.{leaf}"] = tensor
        elif layer.rpartition(".")[0] not in attentions:
            unused.append(prefix + key)
    if unused:
        raise CheckpointError(f"{checkpoint}: {len(unused)} {what} weights have no place in the config's model, "
                              f"e.g. {unused[0]}")
    return out


def split_attention(weights: dict[str, Tensor], original: str, converted: str, heads: int) -> dict[str, Tensor]:
    """AttentionBlock's fused 1x1 ``qkv`` (laid out head by head: q, k, v of head 0, then head 1,
    ...) and ``proj_out`` -> diffusers Attention's to_q, to_k, to_v, to_out.0 and group_norm."""
    qkv_weight, qkv_bias = weights[f"{original}.qkv.weight"], weights[f"{original}.qkv.bias"]
    channels = qkv_weight.shape[1]
    qkv_weight = qkv_weight.reshape(heads, 3, channels // heads, channels)
    qkv_bias = qkv_bias.reshape(heads, 3, channels // heads)
    out = {f"{converted}.group_norm.{leaf}": weights[f"{original}.norm.{leaf}"] for leaf in ("weight", "bias")}
    for i, name in enumerate(("to_q", "to_k", "to_v")):
        out[f"{converted}.{name}.weight"] = qkv_weight[:, i].reshape(channels, channels)
        out[f"{converted}.{name}.bias"] = qkv_bias[:, i].reshape(channels)
    out[f"{converted}.to_out.0.weight"] = weights[f"{original}.proj_out.weight"].reshape(channels, channels)
    out[f"{converted}.to_out.0.bias"] = weights[f"{original}.proj_out.bias"]
    return out


def diffusion_weights(state: dict[str, Tensor], checkpoint: Path) -> tuple[dict[str, Tensor], bool]:
    """The UNet's weights without prefix, from the EMA copy when the checkpoint has one; and
    whether it had one."""
    weights = {k[len(UNET_PREFIX):]: v for k, v in state.items() if k.startswith(UNET_PREFIX)}
    if not weights:
        raise CheckpointError(f"{checkpoint}: no {UNET_PREFIX}* weights (not a LatentDiffusion checkpoint)")
    if not any(k.startswith(EMA_PREFIX) for k in state):
        return weights, False
    # LitEma keeps each parameter under its name with the dots removed.
    ema = {key: state.get(EMA_PREFIX + ("diffusion_model." + key).replace(".", "")) for key in weights}
    missing = [key for key, value in ema.items() if value is None]
    if missing:
        raise CheckpointError(f"{checkpoint}: the EMA weights lack {len(missing)} of the UNet's, e.g. "
                              f"{EMA_PREFIX}{('diffusion_model.' + missing[0]).replace('.', '')}")
    return ema, True


def load_into(model: torch.nn.Module, weights: dict[str, Tensor], what: str, checkpoint: Path, prefix: str,
              names: dict[str, str]) -> None:
    """Load ``weights`` into ``model``: every parameter set, same shapes; errors name the original keys."""
    original = {converted: layer for layer, converted in names.items()}

    def name(key: str) -> str:
        layer, _, leaf = key.rpartition(".")
        return f"{prefix}{original[layer]}.{leaf}" if layer in original else key

    expected = model.state_dict()
    missing = sorted(set(expected) - set(weights))
    if missing:
        raise CheckpointError(f"{checkpoint}: {len(missing)} {what} weights are missing, e.g. {name(missing[0])}")
    for key, tensor in weights.items():
        if tensor.shape != expected[key].shape:
            raise CheckpointError(f"{checkpoint}: {what} weight {name(key)} has shape {tuple(tensor.shape)}, "
                                  f"the config makes it {tuple(expected[key].shape)}")
    model.load_state_dict(weights)


def read_checkpoint(path: Path, trust_pickle: bool) -> dict[str, Tensor]:
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file (the last.ckpt of the latent-diffusion release)")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=not trust_pickle)
    except Exception as err:  # torch raises UnpicklingError, RuntimeError, ... for what it refuses
        hint = "" if trust_pickle else "; if it holds other objects and you trust the file, pass --trust-pickle"
        raise CheckpointError(f"{path}: cannot be read as a checkpoint ({type(err).__name__}){hint}") from None
    state = checkpoint.get("state_dict") if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: no state_dict (not a PyTorch Lightning checkpoint)")
    return state


def convert(config: str | Path, checkpoint: str | Path, out: str | Path, trust_pickle: bool = False) -> Path:
    """Write ``out``/unet, vqvae and scheduler from the original ``config`` and ``checkpoint``."""
    from diffusers import DDIMScheduler, VQModel

    from .ldm_unet import LDMUNet2DModel

    config, checkpoint, out = Path(config), Path(checkpoint), Path(out)
    sections = read_config(config)
    state = read_checkpoint(checkpoint, trust_pickle)

    unet = LDMUNet2DModel(**unet_config(sections["unet"]))
    weights, _ = diffusion_weights(state, checkpoint)
    names, attentions = unet_names(sections["unet"])
    converted = renamed(weights, names, attentions, "UNet", checkpoint, UNET_PREFIX)
    try:
        for original, target in attentions.items():
            converted.update(split_attention(weights, original, target, sections["unet"]["num_heads"]))
    except KeyError as err:
        raise CheckpointError(f"{checkpoint}: UNet attention weight {UNET_PREFIX}{err.args[0]} is missing") from None
    load_into(unet, converted, "UNet", checkpoint, UNET_PREFIX, names)

    vqvae = VQModel(**vq_config(sections["ddconfig"], sections["first_stage"], sections["model"]["scale_factor"]))
    stage = {k[len(VQ_PREFIX):]: v for k, v in state.items() if k.startswith(VQ_PREFIX)}
    if not stage:
        raise CheckpointError(f"{checkpoint}: no {VQ_PREFIX}* weights (the VQ autoencoder)")
    # The training losses (a discriminator, LPIPS) live in the first stage too; sampling needs none.
    stage = {k: v for k, v in stage.items() if not k.startswith("loss.")}
    names = vq_names(sections["ddconfig"])
    load_into(vqvae, renamed(stage, names, {}, "VQ autoencoder", checkpoint, VQ_PREFIX), "VQ autoencoder",
              checkpoint, VQ_PREFIX, names)

    unet.eval().save_pretrained(out / UNET)
    vqvae.eval().save_pretrained(out / VQVAE)
    DDIMScheduler(**scheduler_config(sections["model"])).save_pretrained(out / SCHEDULER)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m paintseg_engine.painters.ldm_checkpoint",
                                     description="Convert latent-diffusion's inpainting checkpoint to diffusers folders.")
    parser.add_argument("--config", required=True, type=Path, help="models/ldm/inpainting_big/config.yaml")
    parser.add_argument("--checkpoint", required=True, type=Path, help="last.ckpt of the release")
    parser.add_argument("--out", required=True, type=Path, help="folder to write (unet/, vqvae/, scheduler/)")
    parser.add_argument("--trust-pickle", action="store_true",
                        help="unpickle objects besides tensors (only for a checkpoint from a source you trust)")
    args = parser.parse_args(argv)
    try:
        print(convert(args.config, args.checkpoint, args.out, args.trust_pickle))
    except CheckpointError as err:
        print(f"conversion failed: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
