from .base import Painter
from .opencv import OpenCVPainter

__all__ = ["Painter", "OpenCVPainter"]


def __getattr__(name: str):
    # DiffusionPainter needs the `diffusion` extra (diffusers); import it only when asked for.
    if name == "DiffusionPainter":
        from .diffusion import DiffusionPainter

        return DiffusionPainter
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
