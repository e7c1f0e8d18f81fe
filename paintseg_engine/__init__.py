"""paintseg-engine: training-free object segmentation by painting (PaintSeg's AMCP).

    from paintseg_engine import Segmenter, BoxPrompt
    segmenter = Segmenter()                 # weight-free painter and features
    segmenter.set_image(image)              # [3, H, W] float in [0, 1]
    mask = segmenter.predict(BoxPrompt((40, 30, 200, 180))).mask

    segmenter = build_segmenter("configs/default.yaml")   # a config's model.segmenter section
"""
from .amcp import AMCPConfig, PromptSegmenter, Segmentation, Segmenter, StepRecord, segment
from .build import build_segmenter, missing_weights
from .errors import PromptError, SettingsError
from .imageio import load_image
from .prompts import BoxClicksPrompt, BoxPrompt, MaskPrompt, PointsPrompt, ScribblePrompt

__all__ = ["AMCPConfig", "BoxClicksPrompt", "BoxPrompt", "MaskPrompt", "PointsPrompt", "PromptError",
           "PromptSegmenter", "ScribblePrompt", "Segmentation", "Segmenter", "SettingsError", "StepRecord",
           "build_segmenter", "load_image", "missing_weights", "segment"]
