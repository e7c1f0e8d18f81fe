"""Reading images and masks robustly, no larger than a pixel limit; writing outputs atomically."""
from __future__ import annotations

import json
import os
import signal
import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from torch import Tensor

from .errors import ImageLoadError, ImageTooLargeError
from .limits import DEFAULT_MAX_PIXELS, check_pixel_count


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# Outputs get the permissions any new file would (mkstemp makes them owner-only).
FILE_MODE = 0o666 & ~_current_umask()
SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I")  # PNG's 16-bit grey opens as one of these


def _open(path: str | Path, apply_exif: bool = True, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    path = Path(path)
    if not path.is_file():
        raise ImageLoadError(f"{path}: no such file")
    image = None
    try:
        image = Image.open(path)  # reads the header only: the size is known before any pixel is decoded
        check_pixel_count(*image.size, max_pixels, str(path))
        image.load()
    except Image.DecompressionBombError as error:  # PIL's own limit, for a limit set above it
        raise ImageTooLargeError(f"{path}: refused as a decompression bomb ({error})") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        if image is not None:
            image.close()  # refused (too many pixels) or broken: its file is not left open
        if isinstance(error, ImageLoadError):
            raise
        raise ImageLoadError(f"{path}: cannot be read as an image ({error})") from error
    if min(image.size) < 1:
        raise ImageLoadError(f"{path}: the image is empty ({image.size[0]}x{image.size[1]})")
    return ImageOps.exif_transpose(image) if apply_exif else image


def _unit_float(image: Image.Image) -> np.ndarray:
    """Pixel values in [0, 1]: 16-bit files by their bit depth, whatever values they hold."""
    if image.mode in SIXTEEN_BIT_MODES:
        return np.clip(np.asarray(image).astype(np.float32) / 65535.0, 0, 1)
    return np.asarray(image).astype(np.float32) / 255.0


def load_image(path: str | Path, apply_exif: bool = True, max_pixels: int = DEFAULT_MAX_PIXELS) -> Tensor:
    """An RGB image as float32 [3, H, W] in [0, 1].

    Grayscale and palette images are expanded to RGB, 16-bit images scaled to [0, 1], EXIF
    rotation applied (unless ``apply_exif`` is False), and an alpha channel dropped (the colour
    under it is kept as is). An image of more than ``max_pixels`` pixels is refused
    (ImageTooLargeError) before it is decoded.
    """
    return rgb_tensor(_open(path, apply_exif, max_pixels))


def rgb_tensor(image: Image.Image) -> Tensor:
    """A loaded PIL image as float32 [3, H, W] in [0, 1], converted as ``load_image`` says."""
    if image.mode in SIXTEEN_BIT_MODES:
        array = np.repeat(_unit_float(image)[..., None], 3, axis=2)
    else:
        array = _unit_float(image.convert("RGB"))
    return torch.from_numpy(np.ascontiguousarray(array)).permute(2, 0, 1)


def load_mask(path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> Tensor:
    """A mask as uint8 [H, W] as stored (no EXIF rotation; first channel of a colour file;
    16-bit scaled to 0..255); refused above ``max_pixels`` as images are."""
    image = _open(path, apply_exif=False, max_pixels=max_pixels)
    if image.mode in SIXTEEN_BIT_MODES:
        array = (_unit_float(image) * 255).round().astype(np.uint8)
    else:
        array = np.asarray(image)
        array = array[..., 0] if array.ndim == 3 else array
        array = array.astype(np.uint8) if array.dtype == bool else array
    return torch.from_numpy(np.array(array, dtype=np.uint8, copy=True))


# Of the target's name in its temporary file's: a name near the file system's 255-byte limit
# must still leave room for the random part and ".tmp".
TMP_NAME_CHARS = 64
# Signals that end a run from outside (Ctrl-C, kill): held back while files that must agree are renamed.
ENDING_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _staged(path: Path, write) -> str:
    """A temporary file in ``path``'s folder holding what ``write`` writes, with new files' permissions."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name[:TMP_NAME_CHARS]}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.chmod(tmp, FILE_MODE)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return tmp


def _atomic_write(path: Path, write) -> None:
    """Write through a temporary file in the same folder and rename it into place."""
    tmp = _staged(path, write)
    try:
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_png_atomic(path: str | Path, array: np.ndarray) -> None:
    _atomic_write(Path(path), lambda f: Image.fromarray(array).save(f, format="PNG"))


def write_json_atomic(path: str | Path, obj) -> None:
    _atomic_write(Path(path), lambda f: f.write(json.dumps(obj, indent=2).encode()))


@contextmanager
def ending_signals_held():
    """Ctrl-C and SIGTERM that arrive inside take effect on leaving (main thread only: Python runs
    signal handlers there, and only there may they be swapped)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    arrived: list[int] = []
    previous = {sig: signal.signal(sig, lambda sig, frame: arrived.append(sig)) for sig in ENDING_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, signal.SIG_DFL if handler is None else handler)  # None: set outside Python
        for sig in arrived:
            signal.raise_signal(sig)


def write_texts_together(texts: dict[str | Path, str]) -> None:
    """Write several text files that must agree: every one staged first, then all renamed into
    place with Ctrl-C and SIGTERM held back, so an interrupted write leaves the old set or the new."""
    staged: dict[str, Path] = {}
    try:
        for path, text in texts.items():
            staged[_staged(Path(path), lambda f, text=text: f.write(text.encode()))] = Path(path)
        with ending_signals_held():
            for tmp, path in staged.items():
                os.replace(tmp, path)
    finally:
        for tmp in staged:
            Path(tmp).unlink(missing_ok=True)
