"""latent-diffusion's inpainting model in its own weight format, for the converter's tests: a tiny
``config.yaml`` + ``last.ckpt`` pair with the release's key names and config structure, and the
released script's sampling loop written directly over those original-format weights (openaimodel
UNet, taming VQ first stage, DDIM eta 0), independent of diffusers and of the converter.

One set of functions both makes and reads the weights: ``Weights`` creates a random tensor the
first time a name is asked for (writing a checkpoint) and returns the stored one afterwards.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import yaml
from torch import Tensor

# inpainting_big's config.yaml, with small channel counts (and 2 attention heads, 2 levels).
TINY_CONFIG = {"model": {"base_learning_rate": 1.0e-06, "target": "ldm.models.diffusion.ddpm.LatentDiffusion", "params": {
    "linear_start": 0.0015, "linear_end": 0.0205, "log_every_t": 100, "timesteps": 1000, "loss_type": "l1",
    "first_stage_key": "image", "cond_stage_key": "masked_image", "image_size": 8, "channels": 3,
    "concat_mode": True, "monitor": "val/loss",
    "unet_config": {"target": "ldm.modules.diffusionmodules.openaimodel.UNetModel", "params": {
        "image_size": 8, "in_channels": 7, "out_channels": 3, "model_channels": 32, "attention_resolutions": [2],
        "num_res_blocks": 1, "channel_mult": [1, 2], "num_heads": 2, "resblock_updown": True}},
    "first_stage_config": {"target": "ldm.models.autoencoder.VQModelInterface", "params": {
        "embed_dim": 3, "n_embed": 16, "monitor": "val/rec_loss",
        "ddconfig": {"attn_type": "none", "double_z": False, "z_channels": 3, "resolution": 32, "in_channels": 3,
                     "out_ch": 3, "ch": 32, "ch_mult": [1, 2], "num_res_blocks": 1, "attn_resolutions": [],
                     "dropout": 0.0},
        "lossconfig": {"target": "ldm.modules.losses.contperceptual.DummyLoss"}}},
    "cond_stage_config": "__is_first_stage__"}}}


class Weights:
    """Original-format weights under a prefix: made at random on first use, read afterwards."""

    def __init__(self, state: dict[str, Tensor], prefix: str, generator: torch.Generator | None = None):
        self.state, self.prefix, self.generator = state, prefix, generator

    def __call__(self, name: str, *shape: int, kind: str = "weight") -> Tensor:
        key = self.prefix + name
        if key not in self.state:
            value = torch.randn(shape, generator=self.generator)
            # Unit-variance activations: weights scaled by their fan-in, norms near 1, small biases.
            value = {"weight": value / math.sqrt(max(1, math.prod(shape[1:]))), "norm": 1 + 0.1 * value,
                     "bias": 0.1 * value}[kind]
            self.state[key] = value
        return self.state[key]


def conv(w: Weights, name: str, x: Tensor, out: int, kernel: int = 3, stride: int = 1, padding: int | None = None) -> Tensor:
    weight = w(f"{name}.weight", out, x.shape[1], kernel, kernel)
    bias = w(f"{name}.bias", out, kind="bias")
    return F.conv2d(x, weight, bias, stride, kernel // 2 if padding is None else padding)


def norm(w: Weights, name: str, x: Tensor, eps: float) -> Tensor:
    c = x.shape[1]
    return F.group_norm(x, 32, w(f"{name}.weight", c, kind="norm"), w(f"{name}.bias", c, kind="bias"), eps)


# --- openaimodel.UNetModel ----------------------------------------------------------------------


def res_block(w: Weights, name: str, x: Tensor, emb: Tensor, out: int, updown: str | None = None) -> Tensor:
    h = F.silu(norm(w, f"{name}.in_layers.0", x, 1e-5))
    if updown == "down":
        h, x = F.avg_pool2d(h, 2), F.avg_pool2d(x, 2)
    elif updown == "up":
        h, x = F.interpolate(h, scale_factor=2.0, mode="nearest"), F.interpolate(x, scale_factor=2.0, mode="nearest")
    h = conv(w, f"{name}.in_layers.2", h, out)
    e = F.linear(F.silu(emb), w(f"{name}.emb_layers.1.weight", out, emb.shape[1]),
                 w(f"{name}.emb_layers.1.bias", out, kind="bias"))
    h = h + e[:, :, None, None]
    h = conv(w, f"{name}.out_layers.3", F.silu(norm(w, f"{name}.out_layers.0", h, 1e-5)), out)
    skip = x if x.shape[1] == out else conv(w, f"{name}.skip_connection", x, out, kernel=1)
    return skip + h


def attention_block(w: Weights, name: str, x: Tensor, heads: int) -> Tensor:
    """Legacy QKV attention: the fused qkv is split head by head into q, k, v."""
    b, c, hh, ww = x.shape
    flat = norm(w, f"{name}.norm", x, 1e-5).reshape(b, c, -1)
    qkv = F.conv1d(flat, w(f"{name}.qkv.weight", 3 * c, c, 1), w(f"{name}.qkv.bias", 3 * c, kind="bias"))
    q, k, v = qkv.reshape(b * heads, 3 * c // heads, -1).split(c // heads, dim=1)
    scale = 1 / math.sqrt(math.sqrt(c // heads))
    weight = torch.softmax(torch.einsum("bct,bcs->bts", q * scale, k * scale), dim=-1)
    h = torch.einsum("bts,bcs->bct", weight, v).reshape(b, c, -1)
    h = F.conv1d(h, w(f"{name}.proj_out.weight", c, c, 1), w(f"{name}.proj_out.bias", c, kind="bias"))
    return x + h.reshape(b, c, hh, ww)


def timestep_embedding(t: Tensor, dim: int) -> Tensor:
    half = dim // 2
    freqs = torch.exp(-math.log(10000) * torch.arange(half, dtype=torch.float32) / half)
    args = t[:, None].float() * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


def unet(w: Weights, p: dict, x: Tensor, t: Tensor) -> Tensor:
    mc, levels = p["model_channels"], len(p["channel_mult"])
    emb = timestep_embedding(t, mc)
    emb = F.linear(emb, w("time_embed.0.weight", 4 * mc, mc), w("time_embed.0.bias", 4 * mc, kind="bias"))
    emb = F.linear(F.silu(emb), w("time_embed.2.weight", 4 * mc, 4 * mc), w("time_embed.2.bias", 4 * mc, kind="bias"))
    h, skips, index, ds = conv(w, "input_blocks.0.0", x, mc), [], 1, 1
    skips.append(h)
    for level, mult in enumerate(p["channel_mult"]):
        for _ in range(p["num_res_blocks"]):
            h = res_block(w, f"input_blocks.{index}.0", h, emb, mc * mult)
            if ds in p["attention_resolutions"]:
                h = attention_block(w, f"input_blocks.{index}.1", h, p["num_heads"])
            skips.append(h)
            index += 1
        if level < levels - 1:
            h = res_block(w, f"input_blocks.{index}.0", h, emb, h.shape[1], updown="down")
            skips.append(h)
            index, ds = index + 1, ds * 2
    h = res_block(w, "middle_block.0", h, emb, h.shape[1])
    h = attention_block(w, "middle_block.1", h, p["num_heads"])
    h = res_block(w, "middle_block.2", h, emb, h.shape[1])
    index = 0
    for level in reversed(range(levels)):
        for block in range(p["num_res_blocks"] + 1):
            h = res_block(w, f"output_blocks.{index}.0", torch.cat([h, skips.pop()], 1), emb, mc * p["channel_mult"][level])
            layer = 1
            if ds in p["attention_resolutions"]:
                h, layer = attention_block(w, f"output_blocks.{index}.1", h, p["num_heads"]), 2
            if level > 0 and block == p["num_res_blocks"]:
                h, ds = res_block(w, f"output_blocks.{index}.{layer}", h, emb, h.shape[1], updown="up"), ds // 2
            index += 1
    h = F.silu(norm(w, "out.0", h, 1e-5))
    return conv(w, "out.2", h, p["out_channels"])


# --- taming VQ first stage (VQModelInterface) ----------------------------------------------------


def vq_res_block(w: Weights, name: str, x: Tensor, out: int) -> Tensor:
    h = conv(w, f"{name}.conv1", F.silu(norm(w, f"{name}.norm1", x, 1e-6)), out)
    h = conv(w, f"{name}.conv2", F.silu(norm(w, f"{name}.norm2", h, 1e-6)), out)
    return (x if x.shape[1] == out else conv(w, f"{name}.nin_shortcut", x, out, kernel=1)) + h


def vq_encode(w: Weights, dd: dict, embed_dim: int, x: Tensor) -> Tensor:
    """Encoder then quant_conv: latents, unquantized (what VQModelInterface.encode returns)."""
    h = conv(w, "encoder.conv_in", x, dd["ch"])
    for level, mult in enumerate(dd["ch_mult"]):
        for block in range(dd["num_res_blocks"]):
            h = vq_res_block(w, f"encoder.down.{level}.block.{block}", h, dd["ch"] * mult)
        if level < len(dd["ch_mult"]) - 1:
            h = conv(w, f"encoder.down.{level}.downsample.conv", F.pad(h, (0, 1, 0, 1)), h.shape[1], stride=2, padding=0)
    h = vq_res_block(w, "encoder.mid.block_2", vq_res_block(w, "encoder.mid.block_1", h, h.shape[1]), h.shape[1])
    h = conv(w, "encoder.conv_out", F.silu(norm(w, "encoder.norm_out", h, 1e-6)), dd["z_channels"])
    return conv(w, "quant_conv", h, embed_dim, kernel=1)


def vq_decode(w: Weights, dd: dict, n_embed: int, z: Tensor) -> Tensor:
    """Nearest codebook entries, post_quant_conv, Decoder."""
    codebook = w("quantize.embedding.weight", n_embed, z.shape[1])
    flat = z.permute(0, 2, 3, 1).reshape(-1, z.shape[1])
    nearest = torch.argmin(((flat[:, None] - codebook[None]) ** 2).sum(-1), dim=1)
    z = codebook[nearest].reshape(z.shape[0], z.shape[2], z.shape[3], -1).permute(0, 3, 1, 2)
    h = conv(w, "post_quant_conv", z, dd["z_channels"], kernel=1)
    top = dd["ch"] * dd["ch_mult"][-1]
    h = conv(w, "decoder.conv_in", h, top)
    h = vq_res_block(w, "decoder.mid.block_2", vq_res_block(w, "decoder.mid.block_1", h, top), top)
    for level in reversed(range(len(dd["ch_mult"]))):
        for block in range(dd["num_res_blocks"] + 1):
            h = vq_res_block(w, f"decoder.up.{level}.block.{block}", h, dd["ch"] * dd["ch_mult"][level])
        if level > 0:
            h = conv(w, f"decoder.up.{level}.upsample.conv", F.interpolate(h, scale_factor=2.0, mode="nearest"), h.shape[1])
    return conv(w, "decoder.conv_out", F.silu(norm(w, "decoder.norm_out", h, 1e-6)), dd["out_ch"])


# --- The checkpoint and the released script's sampling ---------------------------------------------


def parts(state: dict[str, Tensor], generator: torch.Generator | None = None) -> tuple[Weights, Weights]:
    return Weights(state, "model.diffusion_model.", generator), Weights(state, "first_stage_model.", generator)


def write_tiny_checkpoint(folder: Path, seed: int = 0, ema: bool = True) -> tuple[Path, Path]:
    """(config.yaml, last.ckpt) of a tiny random inpainting model in the release's format: the
    Lightning checkpoint's state_dict with model.diffusion_model.*, first_stage_model.* (and its
    alias cond_stage_model.*), the schedule buffers, and with ``ema`` the LitEma copy (other values)."""
    folder.mkdir(parents=True, exist_ok=True)
    params = TINY_CONFIG["model"]["params"]
    state: dict[str, Tensor] = {}
    generator = torch.Generator().manual_seed(seed)
    net, stage = parts(state, generator)
    size = params["first_stage_config"]["params"]["ddconfig"]["resolution"]
    z = vq_encode(stage, params["first_stage_config"]["params"]["ddconfig"], 3, torch.zeros(1, 3, size, size))
    vq_decode(stage, params["first_stage_config"]["params"]["ddconfig"], 16, z)
    unet(net, params["unet_config"]["params"], torch.zeros(1, 7, *z.shape[-2:]), torch.zeros(1))
    for key in [k for k in state if k.startswith("first_stage_model.")]:
        state["cond_stage_model." + key[len("first_stage_model."):]] = state[key]
    if ema:
        for key in [k for k in state if k.startswith("model.diffusion_model.")]:
            state["model_ema." + key[len("model."):].replace(".", "")] = state[key] + 0.05 * torch.randn(
                state[key].shape, generator=generator)
        state["model_ema.decay"], state["model_ema.num_updates"] = torch.tensor(0.9999), torch.tensor(1000)
    state["betas"] = beta_schedule(params)
    (folder / "config.yaml").write_text(yaml.safe_dump(TINY_CONFIG, sort_keys=False))
    torch.save({"epoch": 0, "global_step": 0, "pytorch-lightning_version": "1.4.2", "state_dict": state},
               folder / "last.ckpt")
    return folder / "config.yaml", folder / "last.ckpt"


def beta_schedule(params: dict) -> Tensor:
    return torch.linspace(params["linear_start"] ** 0.5, params["linear_end"] ** 0.5, params["timesteps"],
                          dtype=torch.float64) ** 2


def with_ema(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """The state as ``ema_scope`` makes it: the UNet's weights replaced by their EMA copy."""
    out = dict(state)
    for key in [k for k in state if k.startswith("model.diffusion_model.")]:
        out[key] = state["model_ema." + key[len("model."):].replace(".", "")]
    return out


@torch.no_grad()
def released_inpaint(state: dict[str, Tensor], image: Tensor, mask: Tensor, noise: Tensor, steps: int) -> Tensor:
    """scripts/inpaint.py on one image ([1, 3, H, W] in [0, 1], mask [1, 1, H, W] in {0, 1}) for each
    initial noise [N, 3, h, w]: encode the masked image, concatenate the resized mask, DDIM eta 0
    from ``noise``, decode, paste into the image inside the mask. Returns [N, 3, H, W] in [0, 1]."""
    params = TINY_CONFIG["model"]["params"]
    first = params["first_stage_config"]["params"]
    net, stage = parts(with_ema(state))
    masked = ((1 - mask) * image) * 2 - 1
    c = vq_encode(stage, first["ddconfig"], first["embed_dim"], masked)
    c = torch.cat([c, F.interpolate(mask * 2 - 1, size=c.shape[-2:])], 1).expand(len(noise), -1, -1, -1)
    alphas = torch.cumprod(1 - beta_schedule(params), 0).numpy()
    timesteps = np.arange(0, params["timesteps"], params["timesteps"] // steps) + 1
    previous = np.concatenate([[alphas[0]], alphas[timesteps[:-1]]])
    x = noise
    for i in reversed(range(steps)):
        a, a_prev = float(alphas[timesteps[i]]), float(previous[i])
        t = torch.full((len(x),), int(timesteps[i]))
        e = unet(net, params["unet_config"]["params"], torch.cat([x, c], 1), t)
        x0 = (x - math.sqrt(1 - a) * e) / math.sqrt(a)
        x = math.sqrt(a_prev) * x0 + math.sqrt(1 - a_prev) * e
    predicted = ((vq_decode(stage, first["ddconfig"], first["n_embed"], x) + 1) / 2).clamp(0, 1)
    return (1 - mask) * image + mask * predicted
