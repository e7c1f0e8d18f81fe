"""What the doors (``paintseg segment``, ``app``, ``serve``) share on their command lines: where the
configs are, the default device, and argparse types. Light on purpose: no torch at import, so
``paintseg segment --help`` and a bad option answer at once."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..limits import check_max_pixels

# configs/ of the repository this package runs from (an editable install or a checkout).
CONFIGS = Path(__file__).resolve().parents[2] / "configs"
DEFAULT_CONFIG = CONFIGS / "default.yaml"  # the weight-free default, the doors' config when none is given


def default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def pixel_limit(text: str) -> int:
    """argparse type: a pixel count >= 1."""
    try:
        return check_max_pixels(int(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number of pixels >= 1, got {text!r}") from None


def threads_option(text: str):
    """argparse type: ``auto`` or a thread count >= 1 (threads.py)."""
    if text == "auto":
        return text
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"--threads must be auto or an integer >= 1, got {text!r}")
    return int(text)
