"""paintseg-engine: training-free object segmentation by painting (PaintSeg's AMCP).

    from paintseg_engine import Segmenter, BoxPrompt
    segmenter = Segmenter()                 # weight-free painter and features
    segmenter.set_image(image)              # [3, H, W] float in [0, 1]
    mask = segmenter.predict(BoxPrompt((40, 30, 200, 180))).mask

    segmenter = build_segmenter("configs/default.yaml")   # a config's model.segmenter section
"""
import importlib

# Each public name and the module that defines it, imported on first use: torch takes seconds to
# import, and ``paintseg segment --help`` should not wait for it.
EXPORTS = {
    **dict.fromkeys(["AMCPConfig", "PromptSegmenter", "Segmentation", "Segmenter", "StepRecord", "segment"], ".amcp"),
    **dict.fromkeys(["build_segmenter", "missing_weights"], ".build"),
    **dict.fromkeys(["PromptError", "SettingsError"], ".errors"),
    "load_image": ".imageio",
    **dict.fromkeys(["BoxClicksPrompt", "BoxPrompt", "MaskPrompt", "PointsPrompt", "ScribblePrompt"], ".prompts"),
}
__all__ = sorted(EXPORTS)


def __getattr__(name: str):
    if name not in EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(EXPORTS[name], __name__), name)
