"""Time per click of the interactive protocol: one-shot ``segment`` per click (before the session
API: the frame and the painter's per-image work redone every click) against one ``Segmenter``
session per image (after: ``set_image`` once, ``predict`` per click). Both run the same simulated
clicks and must give the same masks.

    python -m benchmarks.clicks_session                       # prints a table, writes JSON
    python -m benchmarks.clicks_session --clicks 5 --repeats 3 --out benchmarks/results/x.json
    python -m benchmarks.clicks_session --cases weight-free      # the default's time per click only

Cases: the weight-free default (``configs/default.yaml``) and the diffusion painter on a TINY
random SD-inpainting checkpoint (random weights: the timings are what counts) with
``blend_unmasked`` on, so that its per-image work, the VAE encode of the image, is real.
Threads follow the engine's policy (threads.py: one for the weight-free components). Besides
wall seconds it reports the process's CPU seconds per click: with one thread that is the time on
an idle core, which a loaded machine's wall time is not.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np
import torch

from paintseg_engine import AMCPConfig, PointsPrompt, Segmenter, build_segmenter, segment
from paintseg_engine.clicks import simulate_clicks
from paintseg_engine.data.synthetic import make_scene
from paintseg_engine.features import ColorTextureFeatures
from paintseg_engine.threads import use_threads

from .cases import REPO

TINY_AMCP = AMCPConfig(frame_size=128, iterations=3, num_samples=3, log_contrast=True, outpaint_region="background")


def weight_free() -> tuple[Segmenter, str]:
    segmenter = build_segmenter(REPO / "configs/default.yaml")
    config = segmenter.config
    return segmenter, (f"configs/default.yaml (frame {config.frame_size}, {config.iterations} iterations, "
                       f"{config.num_samples} samples)")


def tiny_diffusion(folder: Path) -> tuple[Segmenter, str]:
    from export.random_weights import save_tiny_sd_inpainting
    from paintseg_engine.painters.diffusion import DiffusionPainter

    painter = DiffusionPainter(str(save_tiny_sd_inpainting(folder / "sd")), steps=4, blend_unmasked=True)
    return Segmenter(painter, ColorTextureFeatures(), TINY_AMCP), "tiny random SD-inpainting, DDIM 4 steps, blend_unmasked, frame 128"


CASES = {"weight-free": lambda scratch: weight_free(), "tiny-diffusion": tiny_diffusion}


def click_run(image: torch.Tensor, gt: torch.Tensor, clicks: int, session: Segmenter, one_shot: bool):
    """(wall seconds per click, CPU seconds per click, IoUs) for ``clicks`` simulated clicks."""
    if one_shot:
        def predict(positive, negative, previous):
            return segment(image, PointsPrompt(positive, negative, previous), session.painter, session.features,
                           session.config).mask
    else:
        session.set_image(image)

        def predict(positive, negative, previous):
            return session.predict(PointsPrompt(positive, negative, previous)).mask
    start, cpu_start = time.perf_counter(), time.process_time()
    run = simulate_clicks(predict, gt, None, clicks, stop_iou=None)
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    return seconds / len(run.clicks), cpu_seconds / len(run.clicks), run.ious


def main(args: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clicks", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=None, help="JSON file for the results")
    parser.add_argument("--cases", nargs="+", choices=sorted(CASES), default=list(CASES))
    options = parser.parse_args(args)
    image_np, gt_np = make_scene(np.random.default_rng(7), 240, 320)
    image = torch.from_numpy(image_np).permute(2, 0, 1).float() / 255
    gt = torch.from_numpy(gt_np)
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for case in options.cases:
            session, description = CASES[case](Path(scratch))
            use_threads("auto", session.painter, session.features)  # the engine's policy, as its doors set it
            click_run(image, gt, 1, session, one_shot=False)  # warm-up
            times, cpu_times = {"one_shot": [], "session": []}, {"one_shot": [], "session": []}
            ious = {}
            for _ in range(options.repeats):  # interleaved, so machine load falls on both alike
                for mode in times:
                    seconds, cpu_seconds, ious[mode] = click_run(image, gt, options.clicks, session, mode == "one_shot")
                    times[mode].append(seconds)
                    cpu_times[mode].append(cpu_seconds)
            before, after = np.median(times["one_shot"]), np.median(times["session"])
            rows.append({"case": description, "clicks": options.clicks, "repeats": options.repeats,
                         "seconds_per_click_one_shot": before, "seconds_per_click_session": after,
                         "speedup": before / after, "same_ious": ious["one_shot"] == ious["session"],
                         "cpu_seconds_per_click_session": np.median(cpu_times["session"]),
                         "seconds_per_click_runs": times, "cpu_seconds_per_click_runs": cpu_times,
                         "ious_session": ious["session"]})
            print(f"{description}: {before:.3f} s/click one-shot, {after:.3f} s/click session "
                  f"(x{before / after:.2f}), {rows[-1]['cpu_seconds_per_click_session']:.3f} CPU s/click session; "
                  f"same IoUs after every click: {rows[-1]['same_ious']}", flush=True)
    result = {"date": date.today().isoformat(), "machine": platform.processor() or platform.machine(),
              "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
              "load_average_at_end": os.getloadavg(), "rows": rows}
    if options.out:
        options.out.parent.mkdir(parents=True, exist_ok=True)
        options.out.write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
