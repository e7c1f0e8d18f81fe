"""paintseg-engine: training-free object segmentation by painting (PaintSeg's AMCP).

    from paintseg_engine import Segmenter, BoxPrompt
    segmenter = Segmenter()                 # weight-free painter and features
    segmenter.set_image(image)              # [3, H, W] float in [0, 1]
    mask = segmenter.predict(BoxPrompt((40, 30, 200, 180))).mask
"""
from .amcp import AMCPConfig, Segmentation, Segmenter, StepRecord, segment
from .imageio import load_image
from .prompts import BoxPrompt, MaskPrompt, PointsPrompt, PromptError, ScribblePrompt

__all__ = ["AMCPConfig", "BoxPrompt", "MaskPrompt", "PointsPrompt", "PromptError", "ScribblePrompt", "Segmentation",
           "Segmenter", "StepRecord", "load_image", "segment"]
