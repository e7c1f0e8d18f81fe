"""The embedded default dataset: procedural scenes with exact ground truth.

Each scene is a textured background (colour gradient, low-frequency mottling, fine grain,
sometimes faint stripes) with one object (ellipse, polygon or blob) of its own colour and
texture. Object colours are drawn at a random distance from the background's, some close,
so the set is not trivially separable by colour.
"""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from ..imageio import save_png_atomic

GENERATOR_VERSION = 1
SHAPES = ("ellipse", "polygon", "blob")


def _smooth_noise(rng: np.random.Generator, height: int, width: int, cells: int) -> np.ndarray:
    """Noise in [-1, 1] varying over about ``cells`` cells across the image."""
    grid = rng.uniform(-1, 1, (cells + 1, cells + 1)).astype(np.float32)
    return cv2.resize(grid, (width, height), interpolation=cv2.INTER_CUBIC)


def _background(rng: np.random.Generator, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    start, end = rng.uniform(0.15, 0.85, 3), rng.uniform(0.15, 0.85, 3)
    angle = rng.uniform(0, np.pi)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    t = (np.cos(angle) * xx / width + np.sin(angle) * yy / height)
    t = (t - t.min()) / max(1e-6, t.max() - t.min())
    image = start + (end - start) * t[..., None]
    image += 0.08 * _smooth_noise(rng, height, width, rng.integers(3, 8))[..., None] * rng.uniform(0.5, 1.5, 3)
    if rng.random() < 0.4:
        period = rng.uniform(8, 24)
        image += 0.04 * np.sin(2 * np.pi * (xx * np.cos(angle) - yy * np.sin(angle)) / period)[..., None]
    return image, (start + end) / 2


def _object_mask(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    mask = np.zeros((height, width), np.uint8)
    size = rng.uniform(0.18, 0.38) * min(height, width)
    cx, cy = rng.uniform(0.3, 0.7) * width, rng.uniform(0.3, 0.7) * height
    shape = SHAPES[rng.integers(len(SHAPES))]
    if shape == "ellipse":
        axes = (int(size * rng.uniform(0.6, 1.2)), int(size * rng.uniform(0.6, 1.2)))
        cv2.ellipse(mask, (int(cx), int(cy)), axes, rng.uniform(0, 180), 0, 360, 1, -1)
    elif shape == "polygon":
        angles = np.sort(rng.uniform(0, 2 * np.pi, rng.integers(5, 9)))
        radii = size * rng.uniform(0.6, 1.2, len(angles))
        points = np.stack([cx + radii * np.cos(angles), cy + radii * np.sin(angles)], 1).astype(np.int32)
        cv2.fillPoly(mask, [points], 1)
    else:
        for _ in range(rng.integers(3, 6)):
            ox, oy = rng.normal(0, size * 0.45, 2)
            cv2.circle(mask, (int(cx + ox), int(cy + oy)), int(size * rng.uniform(0.35, 0.65)), 1, -1)
    return mask.astype(bool)


def make_scene(rng: np.random.Generator, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """(image uint8 [H, W, 3], mask bool [H, W])."""
    background, mean_colour = _background(rng, height, width)
    mask = _object_mask(rng, height, width)
    direction = rng.normal(size=3)
    colour = mean_colour + rng.uniform(0.15, 0.45) * direction / np.linalg.norm(direction)
    texture = 0.07 * _smooth_noise(rng, height, width, rng.integers(6, 16))[..., None]
    foreground = np.clip(colour, 0.05, 0.95) + texture * rng.uniform(0.5, 1.5, 3)
    image = np.where(mask[..., None], foreground, background)
    image += rng.normal(0, 0.02, image.shape)  # sensor grain over everything
    return (np.clip(image, 0, 1) * 255).round().astype(np.uint8), mask


def generate_dataset(root: str | Path, num_images: int = 12, height: int = 240, width: int = 320,
                     seed: int = 0) -> Path:
    """Write ``images/scene_XXX.png`` and ``masks/scene_XXX.png`` (0/255) under ``root``.

    Idempotent: a complete folder made with the same parameters is left as it is. A folder
    that holds other images is refused, never written into.
    """
    root = Path(root)
    meta = {"generator_version": GENERATOR_VERSION, "num_images": num_images, "height": height,
            "width": width, "seed": seed}
    meta_path = root / "meta.json"
    if meta_path.is_file() and json.loads(meta_path.read_text()) == meta:
        return root
    if not meta_path.is_file() and any((root / "images").glob("*")):
        # Someone's own images (e.g. a dataset entry left with kind: synthetic): never mix scenes in.
        raise FileExistsError(f"{root}/images already holds files that the scene generator did not write; "
                              f"for a dataset of your own set kind: folder, or give the generator an empty root")
    meta_path.unlink(missing_ok=True)  # incomplete until rewritten
    for old in [*root.glob("images/scene_*.png"), *root.glob("masks/scene_*.png")]:
        old.unlink()  # scenes of other parameters: a smaller set must not keep their tail
    rng = np.random.default_rng(seed)
    for i in range(num_images):
        image, mask = make_scene(rng, height, width)
        save_png_atomic(root / "images" / f"scene_{i:03d}.png", image)
        save_png_atomic(root / "masks" / f"scene_{i:03d}.png", mask.astype(np.uint8) * 255)
    meta_path.write_text(json.dumps(meta, indent=2))  # written last: marks the folder complete
    return root
