"""Smoke run of DiffusionPainter's denoising loop on the full-size SD-inpainting UNet and VAE.

The weights are RANDOM (no download): the painted images are noise, only the timings mean
anything, since latency does not depend on weight values. Prints the time of each UNet step
and of the VAE encode and decode, after one warm-up call.

    python -m benchmarks.smoke_full_size                          # CPU, float32, 256 px, 2 samples
    python -m benchmarks.smoke_full_size --device cuda --dtype float16 --resolution 512 --samples 5
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from paintseg_engine.painters.diffusion import SCHEDULERS, DiffusionPainter
from paintseg_engine.pretrained import DTYPES
from export.random_weights import random_sd_components

from .timing import TimedRunners, synchronize


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32", choices=list(DTYPES))
    parser.add_argument("--resolution", type=int, default=256, help="painting size in pixels (square)")
    parser.add_argument("--samples", type=int, default=2, help="samples painted in one call (UNet batch)")
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--scheduler", default="ddim", choices=sorted(SCHEDULERS))
    parser.add_argument("--full-guidance", action="store_true",
                        help="run both guidance branches (batch x2) as the released script does")
    parser.add_argument("--channels-last", action="store_true")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    device = torch.device(args.device)
    print("RANDOM WEIGHTS: full-size SD-inpainting UNet and VAE architectures with random weights;"
          " the images are noise, only the timings are meaningful.")
    components = random_sd_components()
    painter = DiffusionPainter(components, scheduler=args.scheduler, steps=args.steps, resolution=args.resolution,
                               dtype=args.dtype, skip_redundant_guidance=not args.full_guidance,
                               backend_options={"channels_last": args.channels_last}).to(device)
    image = torch.rand(3, args.resolution, args.resolution, device=device)
    mask = torch.zeros(args.resolution, args.resolution, dtype=torch.bool, device=device)
    quarter = args.resolution // 4
    mask[quarter:-quarter, quarter:-quarter] = True

    painter.set_image(image)
    painter.paint(mask, args.samples, torch.Generator().manual_seed(0))  # warm-up: one-time kernel setup
    timer = TimedRunners(painter, device)
    start = time.perf_counter()
    painted = painter.paint(mask, args.samples, torch.Generator().manual_seed(1))
    synchronize(device)
    total = time.perf_counter() - start

    threads = f", {torch.get_num_threads()} CPU threads" if device.type == "cpu" else ""
    print(f"device {device}{threads}, UNet {painter.unet.dtype}, VAE {painter.vae.dtype}, channels_last "
          f"{args.channels_last}, {args.resolution}x{args.resolution} px -> {args.resolution // 8}x"
          f"{args.resolution // 8} latents, {args.samples} samples, {args.scheduler} {args.steps} steps, "
          f"UNet batch {timer.unet_batches[0]} ({'guided' if painter.guided else 'guidance shortcut'})")
    unet_ms = [1000 * s for s in timer.seconds["unet"]]
    print("UNet per step (ms): " + ", ".join(f"{ms:.0f}" for ms in unet_ms) + f"  median {statistics.median(unet_ms):.0f}")
    print(f"VAE encode (masked image, batch 1): {1000 * sum(timer.seconds['encode']):.0f} ms")
    print(f"VAE decode (batch {args.samples}): {1000 * sum(timer.seconds['decode']):.0f} ms")
    print(f"paint call total: {1000 * total:.0f} ms; output {tuple(painted.shape)}")
    if device.type == "cuda":
        print(f"peak CUDA memory: {torch.cuda.max_memory_allocated(device) / 2**30:.2f} GiB")


if __name__ == "__main__":
    main()
