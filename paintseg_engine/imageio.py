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

from .errors import ImageLoadError


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# Outputs get the permissions any new file would (mkstemp makes them owner-only).
FILE_MODE = 0o666 & ~_current_umask()
SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I")  # PNG's 16-bit grey opens as one of these


def _open(path: str | Path, apply_exif: bool = True) -> Image.Image:
    path = Path(path)
    if not path.is_file():
        raise ImageLoadError(f"{path}: no such file")
    try:
        image = Image.open(path)
        image.load()
    except (UnidentifiedImageError, OSError, SyntaxError) as error:
        raise ImageLoadError(f"{path}: cannot be read as an image ({error})") from error
    if min(image.size) < 1:
        raise ImageLoadError(f"{path}: the image is empty ({image.size[0]}x{image.size[1]})")
    return ImageOps.exif_transpose(image) if apply_exif else image


def _unit_float(image: Image.Image) -> np.ndarray:
    """Pixel values in [0, 1]: 16-bit files by their bit depth, whatever values they hold."""
    if image.mode in SIXTEEN_BIT_MODES:
        return np.clip(np.asarray(image).astype(np.float32) / 65535.0, 0, 1)
    return np.asarray(image).astype(np.float32) / 255.0


def load_image(path: str | Path, apply_exif: bool = True) -> Tensor:
    """An RGB image as float32 [3, H, W] in [0, 1].

    Grayscale and palette images are expanded to RGB, 16-bit images scaled to [0, 1], EXIF
    rotation applied (unless ``apply_exif`` is False), and an alpha channel dropped (the colour
    under it is kept as is).
    """
    image = _open(path, apply_exif)
    if image.mode in SIXTEEN_BIT_MODES:
        array = np.repeat(_unit_float(image)[..., None], 3, axis=2)
    else:
        array = _unit_float(image.convert("RGB"))
    return torch.from_numpy(np.ascontiguousarray(array)).permute(2, 0, 1)


def load_mask(path: str | Path) -> Tensor:
    """A mask as uint8 [H, W] as stored (no EXIF rotation; first channel of a colour file;
    16-bit scaled to 0..255)."""
    image = _open(path, apply_exif=False)
    if image.mode in SIXTEEN_BIT_MODES:
        array = (_unit_float(image) * 255).round().astype(np.uint8)
    else:
        array = np.asarray(image)
        array = array[..., 0] if array.ndim == 3 else array
        array = array.astype(np.uint8) if array.dtype == bool else array
    return torch.from_numpy(np.array(array, dtype=np.uint8, copy=True))


def _atomic_write(path: Path, write) -> None:
    """Write through a temporary file in the same folder and rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_png_atomic(path: str | Path, array: np.ndarray) -> None:
    _atomic_write(Path(path), lambda f: Image.fromarray(array).save(f, format="PNG"))


def write_json_atomic(path: str | Path, obj) -> None:
    _atomic_write(Path(path), lambda f: f.write(json.dumps(obj, indent=2).encode()))


def write_text_atomic(path: str | Path, text: str) -> None:
    _atomic_write(Path(path), lambda f: f.write(text.encode()))
