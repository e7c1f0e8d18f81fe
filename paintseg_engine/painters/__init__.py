from .base import Painter
from .opencv import OpenCVPainter

__all__ = ["Painter", "OpenCVPainter"]
