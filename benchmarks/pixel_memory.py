"""Peak memory of the heaviest default path against the image's pixel count, to size max_pixels.

    python -m benchmarks.pixel_memory --megapixels 1 4 --out /tmp/pixel_memory

Each size: a generated scene (a disc on a textured background) saved as PNG, then
``paintseg segment`` with the default config writing the mask, the overlay and the strip of
per-step masks (everything the app does per request), in a fresh process under ``/usr/bin/time``;
prints megapixels, peak resident memory and wall seconds. Pass --max-pixels above the sizes so
the guard does not refuse them.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

ASPECT = 4 / 3  # width / height, a camera's


def scene(megapixels: float, seed: int = 0) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """(uint8 HxWx3 image, box around its disc)."""
    height = int(round((megapixels * 1e6 / ASPECT) ** 0.5))
    width = int(round(height * ASPECT))
    rng = np.random.default_rng(seed)
    image = (rng.normal(0.4, 0.05, (height, width, 3)).clip(0, 1) * 255).astype(np.uint8)
    yy, xx = np.ogrid[:height, :width]
    cy, cx, r = height // 2, width // 2, height // 4
    image[(yy - cy) ** 2 + (xx - cx) ** 2 <= r * r] = (200, 40, 40)
    return image, (cx - r - r // 8, cy - r - r // 8, cx + r + r // 8, cy + r + r // 8)


def measure(megapixels: float, out: Path, max_pixels: int) -> tuple[float, float, float]:
    image, box = scene(megapixels)
    path = out / f"scene_{megapixels:g}mp.png"
    Image.fromarray(image).save(path)
    command = ["/usr/bin/time", "-f", "%M", sys.executable, "-m", "paintseg_engine", "segment", str(path),
               "--box", ",".join(map(str, box)), "-o", str(out / "mask.png"), "--overlay", str(out / "overlay.png"),
               "--steps", str(out / "steps.png"), "--device", "cpu"]
    if max_pixels:
        command += ["--max-pixels", str(max_pixels)]
    start = time.perf_counter()
    run = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if run.returncode != 0:
        raise SystemExit(f"{path}: paintseg segment failed:\n{run.stderr[-2000:]}")
    peak_kib = int(run.stderr.strip().splitlines()[-1])
    return image.shape[0] * image.shape[1] / 1e6, peak_kib / 2**20, seconds


def main(args: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megapixels", type=float, nargs="+", default=[1, 4])
    parser.add_argument("--out", type=Path, default=Path("/tmp/pixel_memory"))
    parser.add_argument("--max-pixels", type=int, default=0, help="passed to paintseg segment (0: not passed)")
    options = parser.parse_args(args)
    options.out.mkdir(parents=True, exist_ok=True)
    print("| megapixels | peak memory (GiB) | seconds |\n|---|---|---|")
    for megapixels in options.megapixels:
        print("| {:.2f} | {:.2f} | {:.1f} |".format(*measure(megapixels, options.out, options.max_pixels)), flush=True)


if __name__ == "__main__":
    main()
