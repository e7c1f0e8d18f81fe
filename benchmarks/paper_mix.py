"""The released script's painter mix (configs/paper.yaml) measured: latent-diffusion's
inpainting_big paints the I-steps, Stable-Diffusion inpainting the O-steps (DDIM, guidance 7.5
with both branches run, as released). The weights are RANDOM (no download): latency and call
counts do not depend on weight values, the masks are meaningless.

Two runs of AMCP on one generated image, each painter's UNet and autoencoder calls recorded at
its runners:
  count  the paper's schedule (iterations, samples, DDIM steps) on tiny networks of the two
         architectures in a small frame: how many UNet calls and samples each painter's loop
         makes does not depend on network widths or image sizes, so this counts the UNet
         sample-steps per image of the released mix without running the full networks 1,750 times.
  timed  the full-size networks, 5 samples, with few denoising steps and iterations and a small
         frame where the machine cannot take the paper's 512 px (--steps, --iterations, --frame;
         at least one I-step and one O-step): seconds per step and per UNet call of each
         painter. No warm-up run.
FLOPs of one UNet sample-step of each full-size network at the paper's frame (its latent size)
are counted on meta twins (``cost.CostMeter``), so count x FLOPs gives the UNet work per image.

    python -m benchmarks.paper_mix --out benchmarks/results/<date>-cpu-paper-mix
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch

from paintseg_engine.amcp import AMCPConfig, Segmenter
from paintseg_engine.build import segmenter_section
from paintseg_engine.features import ColorTextureFeatures
from paintseg_engine.painters.diffusion import DiffusionPainter, SDComponents
from paintseg_engine.painters.ldm import LDMInpaintPainter

from .cases import REPO, Images, fixed_images
from .cost import CostMeter
from .suite import machine_facts
from .timing import TimedRunners

PAPER_CONFIG = REPO / "configs" / "paper.yaml"
COUNT_FRAME = 64  # the count run's frame: calls and batches are the same at any size


def paper_model() -> dict:
    """The paper config's segmenter arguments: painter, outpaint_painter, features, config (AMCP's)."""
    return segmenter_section(PAPER_CONFIG)["init_args"]


def build_painters(model: dict, full_size: bool, steps: int | None) -> tuple[LDMInpaintPainter, DiffusionPainter]:
    """The paper's two painters on random weights (full-size or tiny), ``steps`` over the config's."""
    from export.random_weights import SD_SCHEDULE, random_ldm_components, random_unet, random_vae

    ldm_args = {k: v for k, v in model["painter"]["init_args"].items() if k != "model"}
    # As released: both guidance branches run (the engine's exact shortcut would halve the O-step's UNet batch).
    sd_args = {**{k: v for k, v in model["outpaint_painter"]["init_args"].items() if k != "model"},
               "skip_redundant_guidance": False}
    if steps is not None:
        ldm_args["steps"] = sd_args["steps"] = steps
    sd = SDComponents(random_unet(full_size), random_vae(full_size), dict(SD_SCHEDULE))
    return (LDMInpaintPainter(random_ldm_components(full_size), **ldm_args).eval(),
            DiffusionPainter(sd, **sd_args).eval())


@torch.inference_mode()
def run_amcp(painters: tuple, amcp: AMCPConfig, image: torch.Tensor, prompt) -> dict:
    """One AMCP run: per step its kind, painter and seconds with its runner calls; per painter its calls."""
    runners = {"inpaint": TimedRunners(painters[0], image.device), "outpaint": TimedRunners(painters[1], image.device)}
    segmenter = Segmenter(painters[0], ColorTextureFeatures(), amcp, outpaint_painter=painters[1])
    start = time.perf_counter()
    segmenter.set_image(image)
    steps = []
    segmenter.predict(prompt, on_step=lambda s: steps.append({**s.timings(), **runners[s.kind].take()}))
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "steps": steps, "calls": {kind: r.take_calls() for kind, r in runners.items()}}


def unet_sample_steps(calls: list) -> dict:
    unet = [shapes for name, shapes in calls if name == "unet"]
    return {"calls": len(unet), "sample_steps": sum(shapes[0][0] for shapes in unet)}


def paper_frame_flops(painter, timed_call: tuple, frame: int) -> tuple[int, list[int]]:
    """FLOPs of one sample of ``painter``'s UNet call ``timed_call`` moved to the paper's frame."""
    latent = frame // painter.vae_scale
    shapes = ((*timed_call[0][:2], latent, latent), *timed_call[1:])
    return CostMeter(painter, ColorTextureFeatures()).flops(("unet", shapes)), list(shapes[0])


def measure(steps: int, iterations: int, frame: int) -> dict:
    model, image_spec = paper_model(), Images(count=1)
    image, prompt = fixed_images(image_spec)[0]
    amcp = model["config"]

    count_amcp = AMCPConfig(**{**amcp, "frame_size": COUNT_FRAME})
    count = run_amcp(build_painters(model, full_size=False, steps=None), count_amcp, image, prompt)
    per_painter = {kind: unet_sample_steps(calls) for kind, calls in count["calls"].items()}

    painters = build_painters(model, full_size=True, steps=steps)
    timed_amcp = AMCPConfig(**{**amcp, "iterations": iterations, "frame_size": frame})
    timed = run_amcp(painters, timed_amcp, image, prompt)
    for kind, painter in zip(("inpaint", "outpaint"), painters):
        unet_call = next(shapes for name, shapes in timed["calls"][kind] if name == "unet")
        flops, unet_input = paper_frame_flops(painter, unet_call, amcp["frame_size"])
        per_painter[kind].update(painter=type(painter).__name__, tflop_per_sample_step=flops / 1e12,
                                 unet_input=unet_input,
                                 tflop_per_image=flops / 1e12 * per_painter[kind]["sample_steps"])
    return {"weights": "RANDOM (full-size architectures in the timed run, tiny ones in the count run)",
            "settings": {"config": str(PAPER_CONFIG.relative_to(REPO)), "amcp": amcp,
                         "painter": model["painter"]["init_args"], "outpaint_painter": model["outpaint_painter"]["init_args"],
                         "released_guidance": "both branches run (skip_redundant_guidance false)",
                         "features": "ColorTextureFeatures (weight-free stand-in: DINO is not part of this case)"},
            "image": {"height": image_spec.height, "width": image_spec.width},
            "count_run": {"frame_size": COUNT_FRAME, "iterations": count_amcp.iterations,
                          "samples": count_amcp.num_samples, "per_painter": per_painter,
                          "unet_sample_steps_per_image": sum(p["sample_steps"] for p in per_painter.values()),
                          "steps": [{k: v for k, v in s.items() if k in ("iteration", "step", "painter", "unet_steps",
                                                                         "unet_batch")} for s in count["steps"]]},
            "paper_frame_size": amcp["frame_size"],
            "timed_run": {"frame_size": frame, "samples": amcp["num_samples"], "denoising_steps": steps,
                          "iterations": iterations, "seconds": timed["seconds"], "steps": timed["steps"]}}


def report(results: dict) -> str:
    count, timed = results["count_run"], results["timed_run"]
    lines = [f"# The paper's painter mix (`{results['settings']['config']}`), {results['machine']['cpu_cores']}-core CPU", "",
             f"- **Weights: {results['weights']}**: the times and counts hold, the masks mean nothing.",
             f"- Load average (1, 5, 15 min) at start {', '.join(f'{x:.2f}' for x in results['load_average_at_start'])}, "
             f"at end {', '.join(f'{x:.2f}' for x in results['load_average_at_end'])} "
             f"(8 engineers share these 2 cores: times are slowed by the load).",
             f"- Features: {results['settings']['features']}; O-step guidance: {results['settings']['released_guidance']}.",
             f"- Commit {results['machine']['git_commit']}, torch {results['machine']['versions']['torch']}, "
             f"diffusers {results['machine']['versions']['diffusers']}.", "",
             "## UNet sample-steps per image at the paper's settings (counted)", "",
             f"{count['iterations']} iterations, {count['samples']} samples, the config's DDIM steps; counted on "
             f"tiny networks of the same architectures in a {count['frame_size']} px frame (calls and batches "
             f"do not depend on widths or sizes).", "",
             f"| step | painter | UNet calls | UNet sample-steps | TFLOP per sample-step (full size, "
             f"{results['paper_frame_size']} px frame) | UNet TFLOP per image |",
             "|---|---|---|---|---|---|"]
    for kind, p in count["per_painter"].items():
        lines.append(f"| {kind} | {p['painter']} | {p['calls']} | {p['sample_steps']} | "
                     f"{p['tflop_per_sample_step']:.3f} (input {p['unet_input']}) | {p['tflop_per_image']:.0f} |")
    lines += [f"| **per image** | | | **{count['unet_sample_steps_per_image']}** | | "
              f"**{sum(p['tflop_per_image'] for p in count['per_painter'].values()):.0f}** |", "",
              "## Timed run (full size, random weights)", "",
              f"Frame **{timed['frame_size']} px** (paper: {results['paper_frame_size']}), {timed['samples']} samples, "
              f"**{timed['denoising_steps']} denoising "
              f"step(s)** (paper: 50), **{timed['iterations']} iterations** (paper: 5); one run, no warm-up. "
              f"Whole run {timed['seconds']:.1f} s.", "",
              "| iteration | step | painter | seconds | paint | UNet calls x batch | UNet seconds | encode | decode |",
              "|---|---|---|---|---|---|---|---|---|"]
    for s in timed["steps"]:
        lines.append(f"| {s['iteration']} | {s['step']} | {s['painter']} | {s['seconds']:.1f} | {s['paint']:.1f} | "
                     f"{s['unet_steps']} x {s['unet_batch']} | {s['unet']:.1f} | {s['encode']:.1f} | {s['decode']:.1f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="results folder (results.json, results.md)")
    parser.add_argument("--steps", type=int, default=1, help="denoising steps of the timed run")
    parser.add_argument("--iterations", type=int, default=2, help="AMCP iterations of the timed run (>= 2)")
    parser.add_argument("--frame", type=int, default=512, help="frame size of the timed run (the paper's: 512)")
    args = parser.parse_args(argv)
    if args.steps < 1 or args.iterations < 2:
        parser.error("--steps must be >= 1 and --iterations >= 2 (one I-step and one O-step)")
    load = os.getloadavg()
    results = measure(args.steps, args.iterations, args.frame)
    results.update(machine=machine_facts(torch.device("cpu")), load_average_at_start=load,
                   load_average_at_end=os.getloadavg())
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=2, default=str))
    (args.out / "results.md").write_text(report(results))
    print(report(results))


if __name__ == "__main__":
    main()
