"""Reading images and masks robustly; writing outputs atomically."""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from torch import Tensor


class ImageLoadError(ValueError):
    """An image or mask file that is missing, unreadable or not an image."""


def _open(path: str | Path) -> Image.Image:
    path = Path(path)
    if not path.is_file():
        raise ImageLoadError(f"{path}: no such file")
    try:
        image = Image.open(path)
        image.load()
    except (UnidentifiedImageError, OSError, SyntaxError) as error:
        raise ImageLoadError(f"{path}: cannot be read as an image ({error})") from error
    return ImageOps.exif_transpose(image)


def _to_unit_float(array: np.ndarray) -> np.ndarray:
    if array.dtype == np.uint8:
        return array.astype(np.float32) / 255.0
    if array.dtype in (np.uint16, np.int32) and array.max(initial=0) > 255:
        return array.astype(np.float32) / 65535.0  # 16-bit PNG
    return np.clip(array.astype(np.float32) / 255.0, 0, 1)


def load_image(path: str | Path) -> Tensor:
    """An RGB image as float32 [3, H, W] in [0, 1].

    Grayscale and palette images are expanded to RGB, 16-bit images scaled to [0, 1], EXIF
    rotation applied, and an alpha channel dropped (the colour under it is kept as is).
    """
    image = _open(path)
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        gray = _to_unit_float(np.asarray(image))
        array = np.repeat(gray[..., None], 3, axis=2)
    else:
        array = _to_unit_float(np.asarray(image.convert("RGB")))
    return torch.from_numpy(np.ascontiguousarray(array)).permute(2, 0, 1)


def load_mask(path: str | Path) -> Tensor:
    """A mask as uint8 [H, W] (first channel of a colour file; 16-bit scaled to 0..255)."""
    image = _open(path)
    array = np.asarray(image)
    if array.ndim == 3:
        array = array[..., 0]
    if array.dtype != np.uint8:
        array = (_to_unit_float(array) * 255).round().astype(np.uint8)
    return torch.from_numpy(np.array(array, copy=True))


def _atomic_write(path: Path, write) -> None:
    """Write through a temporary file in the same folder and rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_png_atomic(path: str | Path, array: np.ndarray) -> None:
    _atomic_write(Path(path), lambda f: Image.fromarray(array).save(f, format="PNG"))


def write_json_atomic(path: str | Path, obj) -> None:
    _atomic_write(Path(path), lambda f: f.write(json.dumps(obj, indent=2).encode()))
