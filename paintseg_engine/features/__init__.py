from .base import FeatureExtractor
from .color import ColorTextureFeatures

__all__ = ["FeatureExtractor", "ColorTextureFeatures"]
