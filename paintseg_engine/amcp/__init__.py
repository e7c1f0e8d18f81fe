"""Adversarial Masked Contrastive Painting (AMCP), the algorithm of PaintSeg.

Pure tensor functions, independent of Lightning and of any model: a ``Painter`` fills masked
pixels, a ``FeatureExtractor`` gives the space contrast is measured in.

    config.py     every setting, as one dataclass
    frame.py      the square letterbox the painters work in, and the prompt's limits in it
    contrast.py   crops, contrast in feature space, k-means, votes
    steps.py      the I-step and the O-step
    refine.py     the last mask re-cut along the image's edges (a seeded GrabCut), shared with the baseline
    graphcut.py   that GrabCut: OpenCV's energy and masks, the graph built once, its max-flow reused
    segmenter.py  the session: set an image once, answer many prompts
"""
from ..errors import SettingsError
from .config import AMCPConfig
from .refine import refine_mask, seeded_grabcut
from .segmenter import PromptSegmenter, Segmentation, Segmenter, StepRecord, segment
from .steps import inpaint_step, outpaint_step

__all__ = ["AMCPConfig", "PromptSegmenter", "SettingsError", "Segmentation", "Segmenter", "StepRecord", "inpaint_step",
           "outpaint_step", "refine_mask", "seeded_grabcut", "segment"]
