"""The bound on the work one image may bring: its pixel count, checked on the file's header before
any pixel is decoded. No torch here: the command lines read it before loading any model."""
from __future__ import annotations

from .errors import ImageTooLargeError

# The most pixels an image may have (width x height) unless a setting says otherwise: 32 MP,
# e.g. 6532 x 4899. The heaviest default path (``paintseg segment`` with the default config,
# writing mask, overlay and step strip: the app's work per request) peaked at 7.2 GiB on a 32 MP
# image (benchmarks/results/2026-12-02-cpu-pixel-limit): under a third of a 24 GiB machine.
DEFAULT_MAX_PIXELS = 32_000_000


def check_pixel_count(width: int, height: int, max_pixels: int, name: str) -> None:
    """Refuse an image of more than ``max_pixels`` pixels, in one line naming it and the limit."""
    if width * height > max_pixels:
        raise ImageTooLargeError(f"{name}: {width}x{height} is {width * height:,} pixels, more than the limit of "
                                 f"{max_pixels:,} (max_pixels)")


def check_max_pixels(max_pixels: int) -> int:
    if max_pixels < 1:
        raise ValueError(f"max_pixels must be >= 1, got {max_pixels}")
    return max_pixels
