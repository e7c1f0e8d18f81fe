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

from ..imageio import save_png_atomic, write_json_atomic
from .coco import annotation_of

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


def _object_mask(rng: np.random.Generator, height: int, width: int) -> tuple[np.ndarray, str]:
    """(mask, its shape's name)."""
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
    return mask.astype(bool), shape


def _foreground(rng: np.random.Generator, mean_colour: np.ndarray, height: int, width: int) -> np.ndarray:
    """An object's own colour, at a random distance from the background's, and texture."""
    direction = rng.normal(size=3)
    colour = mean_colour + rng.uniform(0.15, 0.45) * direction / np.linalg.norm(direction)
    texture = 0.07 * _smooth_noise(rng, height, width, rng.integers(6, 16))[..., None]
    return np.clip(colour, 0.05, 0.95) + texture * rng.uniform(0.5, 1.5, 3)


def _finished(rng: np.random.Generator, image: np.ndarray) -> np.ndarray:
    image = image + rng.normal(0, 0.02, image.shape)  # sensor grain over everything
    return (np.clip(image, 0, 1) * 255).round().astype(np.uint8)


def make_scene(rng: np.random.Generator, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """(image uint8 [H, W, 3], mask bool [H, W])."""
    background, mean_colour = _background(rng, height, width)
    mask, _ = _object_mask(rng, height, width)
    image = np.where(mask[..., None], _foreground(rng, mean_colour, height, width), background)
    return _finished(rng, image), mask


def make_multi_scene(rng: np.random.Generator, height: int, width: int, objects: int
                     ) -> tuple[np.ndarray, list[tuple[np.ndarray, str]]]:
    """(image uint8 [H, W, 3], (bool [H, W] mask, shape) per object): the objects lie in the cells of
    a near-square grid, one per cell, so they never overlap and each has background around it."""
    columns = int(np.ceil(np.sqrt(objects)))
    rows = int(np.ceil(objects / columns))
    cell_h, cell_w = height // rows, width // columns
    image, mean_colour = _background(rng, height, width)
    masks = []
    for index in range(objects):
        top, left = (index // columns) * cell_h, (index % columns) * cell_w
        mask = np.zeros((height, width), bool)
        mask[top:top + cell_h, left:left + cell_w], shape = _object_mask(rng, cell_h, cell_w)
        image = np.where(mask[..., None], _foreground(rng, mean_colour, height, width), image)
        masks.append((mask, shape))
    return _finished(rng, image), masks


def generate_coco_dataset(root: str | Path, num_images: int = 4, objects: int = 4, height: int = 240,
                          width: int = 320, seed: int = 0) -> Path:
    """Write ``images/scene_XXX.png`` with ``objects`` objects each and ``annotations.json``
    (COCO instances, RLE, one category per shape) under ``root``; returns the annotations' path."""
    root = Path(root)
    if objects < 1 or num_images < 1:
        raise ValueError(f"generate_coco_dataset needs objects >= 1 and num_images >= 1, got {objects}, {num_images}")
    rng = np.random.default_rng(seed)
    categories = {shape: index + 1 for index, shape in enumerate(SHAPES)}
    images, annotations = [], []
    for i in range(num_images):
        image, masks = make_multi_scene(rng, height, width, objects)
        file_name = f"images/scene_{i:03d}.png"
        save_png_atomic(root / file_name, image)
        images.append({"id": i + 1, "file_name": file_name, "height": height, "width": width})
        first = len(annotations) + 1
        annotations += [annotation_of(mask, first + k, i + 1, categories[shape]) for k, (mask, shape) in enumerate(masks)]
    path = root / "annotations.json"
    write_json_atomic(path, {"images": images, "annotations": annotations,
                             "categories": [{"id": i, "name": shape} for shape, i in categories.items()]})
    return path


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
