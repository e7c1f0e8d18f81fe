from .base import Painter

__all__ = ["Painter"]
