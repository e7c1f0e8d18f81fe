from .base import Painter
from .opencv import OpenCVPainter

__all__ = ["Painter", "OpenCVPainter"]


def __getattr__(name: str):
    # The diffusion painters need the `diffusion` extra (diffusers); import them only when asked for.
    if name == "DiffusionPainter":
        from .diffusion import DiffusionPainter

        return DiffusionPainter
    if name == "LDMInpaintPainter":
        from .ldm import LDMInpaintPainter

        return LDMInpaintPainter
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
