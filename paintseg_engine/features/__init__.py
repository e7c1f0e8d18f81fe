from .base import FeatureExtractor
from .color import ColorTextureFeatures

__all__ = ["FeatureExtractor", "ColorTextureFeatures"]


def __getattr__(name: str):
    # DinoFeatures needs the `diffusion` extra (transformers); import it only when asked for.
    if name == "DinoFeatures":
        from .dino import DinoFeatures

        return DinoFeatures
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
