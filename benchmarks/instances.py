"""Time per instance against instances per image: a generated scene with 1, 4 and 16 objects, each
prompted by its ground-truth box, answered one-shot (``segment`` per instance: the image set up
again for every object) and on one ``Segmenter`` session (``set_image`` once, ``predict`` per
instance, as a ``layout: coco`` run does). Both must give the same masks.

    python -m benchmarks.instances                                   # prints a table
    python -m benchmarks.instances --repeats 1 --out benchmarks/results/x/results.json

Weight-free default (``configs/default.yaml``). Raw seconds of every repeat are kept, with the
load average before and after, because the machine this ran on is shared.
"""
from __future__ import annotations

import argparse
import os
import platform
import time
from datetime import date
from pathlib import Path

import numpy as np
import torch

from paintseg_engine import BoxPrompt, Segmenter, build_segmenter, segment
from paintseg_engine.data.synthetic import make_multi_scene
from paintseg_engine.imageio import write_json_atomic
from paintseg_engine.prompts import box_of

from .cases import REPO

INSTANCES = (1, 4, 16)
CONFIG = REPO / "configs/default.yaml"


def scene(objects: int, seed: int = 0) -> tuple[torch.Tensor, list[BoxPrompt]]:
    """A 240x320 generated scene with ``objects`` objects, and each object's tight box."""
    pixels, masks = make_multi_scene(np.random.default_rng(seed), 240, 320, objects)
    image = torch.from_numpy(pixels).permute(2, 0, 1).float() / 255
    return image, [BoxPrompt(box_of(torch.from_numpy(mask))) for mask, _ in masks]


def timed(image: torch.Tensor, prompts: list[BoxPrompt], session: Segmenter, one_shot: bool
          ) -> tuple[float, list[torch.Tensor]]:
    """(seconds for all of the image's instances, their masks)."""
    start = time.perf_counter()
    if one_shot:
        masks = [segment(image, p, session.painter, session.features, session.config).mask for p in prompts]
    else:
        session.set_image(image)
        masks = [session.predict(p).mask for p in prompts]
    return time.perf_counter() - start, masks


def main(args: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--instances", type=int, nargs="+", default=list(INSTANCES))
    parser.add_argument("--out", type=Path, default=None, help="JSON file for the results")
    options = parser.parse_args(args)
    session = build_segmenter(CONFIG)
    warm_image, warm_prompts = scene(1, seed=99)
    timed(warm_image, warm_prompts, session, one_shot=False)  # warm-up: first-call costs out of the numbers
    rows = []
    for count in options.instances:
        image, prompts = scene(count)
        runs = {"one_shot": [], "session": []}
        masks = {}
        load_before = os.getloadavg()[0]
        for _ in range(options.repeats):  # interleaved, so machine load falls on both alike
            for mode in runs:
                seconds, masks[mode] = timed(image, prompts, session, mode == "one_shot")
                runs[mode].append(seconds / count)
        same = all(torch.equal(a, b) for a, b in zip(masks["one_shot"], masks["session"]))
        row = {"instances": count, "repeats": options.repeats,
               "seconds_per_instance_one_shot": float(np.median(runs["one_shot"])),
               "seconds_per_instance_session": float(np.median(runs["session"])), "same_masks": same,
               "seconds_per_instance_runs": runs, "load_average": [load_before, os.getloadavg()[0]]}
        rows.append(row)
        print(f"{count:2d} instances: {row['seconds_per_instance_one_shot']:.3f} s/instance one-shot, "
              f"{row['seconds_per_instance_session']:.3f} s/instance session; same masks: {same}; "
              f"load {load_before:.1f} -> {row['load_average'][1]:.1f}", flush=True)
    result = {"date": date.today().isoformat(), "config": str(CONFIG.relative_to(REPO)),
              "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
                         f"{torch.get_num_threads()} torch threads", "rows": rows}
    if options.out:
        write_json_atomic(options.out, result)
    return result


if __name__ == "__main__":
    main()
