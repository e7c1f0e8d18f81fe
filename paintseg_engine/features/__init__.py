from .base import FeatureExtractor

__all__ = ["FeatureExtractor"]
