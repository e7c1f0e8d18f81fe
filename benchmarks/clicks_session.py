"""Time per click of the interactive protocol: one-shot ``segment`` per click (before the session
API: the frame and the painter's per-image work redone every click) against one ``Segmenter``
session per image (after: ``set_image`` once, ``predict`` per click). Both run the same simulated
clicks and must give the same masks.

    python -m benchmarks.clicks_session                       # prints a table, writes JSON
    python -m benchmarks.clicks_session --clicks 5 --repeats 3 --out benchmarks/results/x.json

Cases: the weight-free default (``configs/default.yaml``) and the diffusion painter on a TINY
random SD-inpainting checkpoint (random weights: the timings are what counts) with
``blend_unmasked`` on, so that its per-image work, the VAE encode of the image, is real.
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

from .cases import REPO

TINY_AMCP = AMCPConfig(frame_size=128, iterations=3, num_samples=3, log_contrast=True, outpaint_region="background")


def weight_free() -> tuple[Segmenter, str]:
    return build_segmenter(REPO / "configs/default.yaml"), "configs/default.yaml (frame 320, 5 iterations, 5 samples)"


def tiny_diffusion(folder: Path) -> tuple[Segmenter, str]:
    from export.random_weights import save_tiny_sd_inpainting
    from paintseg_engine.painters.diffusion import DiffusionPainter

    painter = DiffusionPainter(str(save_tiny_sd_inpainting(folder / "sd")), steps=4, blend_unmasked=True)
    return Segmenter(painter, ColorTextureFeatures(), TINY_AMCP), "tiny random SD-inpainting, DDIM 4 steps, blend_unmasked, frame 128"


def click_run(image: torch.Tensor, gt: torch.Tensor, clicks: int, session: Segmenter, one_shot: bool):
    """(seconds per click, masks) for ``clicks`` simulated clicks."""
    if one_shot:
        def predict(positive, negative):
            return segment(image, PointsPrompt(positive, negative), session.painter, session.features,
                           session.config).mask
    else:
        session.set_image(image)

        def predict(positive, negative):
            return session.predict(PointsPrompt(positive, negative)).mask
    start = time.perf_counter()
    run = simulate_clicks(predict, gt, None, clicks, stop_iou=None)
    seconds = time.perf_counter() - start
    return seconds / len(run.clicks), run.ious


def main(args: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clicks", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=None, help="JSON file for the results")
    options = parser.parse_args(args)
    image_np, gt_np = make_scene(np.random.default_rng(7), 240, 320)
    image = torch.from_numpy(image_np).permute(2, 0, 1).float() / 255
    gt = torch.from_numpy(gt_np)
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for build in (weight_free, lambda: tiny_diffusion(Path(scratch))):
            session, description = build()
            click_run(image, gt, 1, session, one_shot=False)  # warm-up
            times = {"one_shot": [], "session": []}
            ious = {}
            for _ in range(options.repeats):  # interleaved, so machine load falls on both alike
                for mode in times:
                    seconds, ious[mode] = click_run(image, gt, options.clicks, session, mode == "one_shot")
                    times[mode].append(seconds)
            before, after = np.median(times["one_shot"]), np.median(times["session"])
            rows.append({"case": description, "clicks": options.clicks, "repeats": options.repeats,
                         "seconds_per_click_one_shot": before, "seconds_per_click_session": after,
                         "speedup": before / after, "same_ious": ious["one_shot"] == ious["session"],
                         "seconds_per_click_runs": times})
            print(f"{description}: {before:.3f} s/click one-shot, {after:.3f} s/click session "
                  f"(x{before / after:.2f}); same IoUs after every click: {rows[-1]['same_ious']}", flush=True)
    result = {"date": date.today().isoformat(), "machine": platform.processor() or platform.machine(),
              "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
              "load_average_at_end": os.getloadavg(), "rows": rows}
    if options.out:
        options.out.parent.mkdir(parents=True, exist_ok=True)
        options.out.write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
