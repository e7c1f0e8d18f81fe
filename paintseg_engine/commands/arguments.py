"""argparse types shared by the doors (``paintseg segment``, ``paintseg app``)."""
from __future__ import annotations

import argparse

from ..imageio import check_max_pixels


def pixel_limit(text: str) -> int:
    """argparse type: a pixel count >= 1."""
    try:
        return check_max_pixels(int(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number of pixels >= 1, got {text!r}") from None
