"""paintseg-engine: training-free object segmentation by painting (PaintSeg's AMCP).

    from paintseg_engine import Segmenter, BoxPrompt
    segmenter = Segmenter()                 # weight-free painter and features
    segmenter.set_image(image)              # [3, H, W] float in [0, 1]
    mask = segmenter.predict(BoxPrompt((40, 30, 200, 180))).mask
"""
import importlib

# Each public name and the module that defines it, imported on first use: torch takes seconds to
# import, and ``paintseg segment --help`` should not wait for it.
EXPORTS = {
    "AMCPConfig": ".amcp", "Segmentation": ".amcp", "Segmenter": ".amcp", "StepRecord": ".amcp", "segment": ".amcp",
    "load_image": ".imageio",
    "BoxPrompt": ".prompts", "MaskPrompt": ".prompts", "PointsPrompt": ".prompts", "PromptError": ".prompts",
    "ScribblePrompt": ".prompts",
}
__all__ = sorted(EXPORTS)


def __getattr__(name: str):
    if name not in EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(EXPORTS[name], __name__), name)
