"""Per-step latency of the full-size SD-inpainting UNet: ONNX Runtime vs torch eager, on CPU.

The weights are RANDOM (no download): latency does not depend on weight values, and the
ONNX output is still checked against torch. The UNet is exported with the engine's own export
command (fp32, external data: 3.4 GB, so the engine directory goes to /tmp, never the repo),
then both backends' runners are timed on the same inputs, one after the other.

    python -m benchmarks.onnx_vs_torch                      # 32x32 latents (256 px), batch 1 and 2
    python -m benchmarks.onnx_vs_torch --latent-size 64 --batches 1 --repeats 2
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import onnxruntime
import torch

from export import ExportSettings, export_engine
from paintseg_engine.pretrained import CLIP_CONTEXT_LENGTH
from paintseg_engine.runtime.exported import ExportedModel, ExportedUNetRunner
from paintseg_engine.runtime.manifest import MANIFEST_NAME, EngineManifest
from paintseg_engine.runtime.onnxruntime_backend import OnnxRuntimeModel
from paintseg_engine.runtime.torch_backend import TorchUNetRunner
from export.random_weights import random_unet

VAE_SCALE = 8  # SD's VAE: 8x8 pixels per latent
TEXT_TOKENS, TEXT_WIDTH = CLIP_CONTEXT_LENGTH, 768  # SD 1.x's CLIP context
SEED = 0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--engine-dir", type=Path, default=Path("/tmp/paintseg-engines/full-unet-fp32"))
    parser.add_argument("--latent-size", type=int, default=32, help="latent side (pixels / 8)")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--warmup", type=int, default=1, help="untimed calls per backend and batch")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per backend and batch")
    parser.add_argument("--reuse", action="store_true", help="reuse an engine directory exported before")
    parser.add_argument("--results", type=Path, help="also write the numbers to this JSON file")
    return parser.parse_args()


def inputs(batch: int, latent_size: int) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(SEED)
    return [torch.randn(batch, 9, latent_size, latent_size, generator=generator),
            torch.randint(0, 1000, (batch,), generator=generator),
            torch.randn(batch, TEXT_TOKENS, TEXT_WIDTH, generator=generator)]


def seconds_per_call(runner, args: list[torch.Tensor], warmup: int, repeats: int) -> tuple[list[float], torch.Tensor]:
    with torch.inference_mode():
        for _ in range(warmup):
            output = runner(*args)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            output = runner(*args)
            times.append(time.perf_counter() - start)
    return times, output


def main() -> None:
    args = parse_args()
    print("RANDOM WEIGHTS: the full-size SD-inpainting UNet (860M parameters) with random weights; "
          "only the timings and the ONNX-vs-torch agreement are meaningful.", flush=True)
    side = args.latent_size * VAE_SCALE
    if not (args.reuse and (args.engine_dir / MANIFEST_NAME).is_file()):
        export_engine(ExportSettings(
            out=args.engine_dir, random_full_size=True, seed=SEED, components=("unet",), precisions=("fp32",),
            batch=(min(args.batches), max(args.batches), max(args.batches)), image_size=(side, side, side),
            tensorrt=False))

    unet = random_unet(full_size=True, seed=SEED)
    manifest = EngineManifest(args.engine_dir)
    manifest.check_source("unet", unet)
    record = manifest.model("unet", "fp32", "onnx")
    path = manifest.check_files(record)[0]  # the model; its external data lies next to it
    runners = {"torch eager": TorchUNetRunner(unet),
               "onnxruntime cpu": ExportedUNetRunner(ExportedModel(manifest, record, OnnxRuntimeModel(path)))}

    results = []
    for batch in args.batches:
        step_inputs = inputs(batch, args.latent_size)
        outputs = {}
        for name, runner in runners.items():
            times, outputs[name] = seconds_per_call(runner, step_inputs, args.warmup, args.repeats)
            results.append(dict(backend=name, batch=batch, latent_size=args.latent_size, seconds=times,
                                median_seconds=statistics.median(times)))
            print(f"batch {batch}, {args.latent_size}x{args.latent_size} latents ({side} px): {name:16s} "
                  f"median {statistics.median(times):6.2f} s per UNet step  "
                  f"(runs: {', '.join(f'{t:.2f}' for t in times)})", flush=True)
        reference, onnx = outputs.values()
        error = ((onnx - reference).abs().max() / reference.abs().max()).item()
        print(f"batch {batch}: max|onnxruntime - torch| / max|torch| = {error:.2e}", flush=True)
        results[-1]["relative_error_vs_torch"] = error

    if args.results:
        args.results.parent.mkdir(parents=True, exist_ok=True)
        args.results.write_text(json.dumps(dict(
            random_weights=True, model="SD-inpainting UNet (full size, random weights)", precision="fp32",
            device=f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads)",
            versions={"torch": torch.__version__, "onnxruntime": onnxruntime.__version__},
            results=results), indent=2))


if __name__ == "__main__":
    main()
