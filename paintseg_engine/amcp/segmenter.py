"""A segmenter session, as segment-anything's ``SamPredictor``: set an image once, then answer
any number of prompts. What depends only on the image (its frame, the painter's per-image work
such as a VAE encode) is done in ``set_image``; what depends on the prompt, in ``predict``.
"""
from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Callable, Literal

import torch
from torch import Tensor

from ..features import ColorTextureFeatures, FeatureExtractor
from ..painters import OpenCVPainter, Painter
from ..errors import PromptError
from ..prompts import Prompt
from .config import AMCPConfig
from .frame import Letterbox, click_discs, valid_region
from .refine import refine_mask
from .steps import StepContext, step_at, synced_elapsed

# How far above 1 a float image may go (resampling overshoot) before it counts as 0..255.
UNIT_RANGE_TOLERANCE = 1e-3


@dataclass
class StepRecord:
    """One AMCP iteration, as reported to ``on_step`` and kept in the result."""

    iteration: int
    kind: Literal["inpaint", "outpaint"]
    mask: Tensor  # bool [H, W], the image's size: the mask after this step
    seconds: float
    paint_seconds: float
    features_seconds: float
    update_seconds: float  # clustering, votes and mask update: what painting and features did not take

    def timings(self) -> dict:
        """The record without its mask, for JSON."""
        return {"iteration": self.iteration, "step": self.kind, "seconds": self.seconds, "paint": self.paint_seconds,
                "features": self.features_seconds, "update": self.update_seconds}


@dataclass
class Segmentation:
    mask: Tensor  # bool [H, W], the image's size
    prompt_mask: Tensor  # bool [H, W]: the mask AMCP started from
    steps: list[StepRecord] = field(default_factory=list)


def check_image(image: Tensor) -> None:
    """Refuse what is not an RGB float image in [0, 1], naming what is wrong."""
    if not isinstance(image, Tensor):
        raise TypeError(f"image must be a torch.Tensor [3, H, W] in [0, 1], got {type(image).__name__}")
    if image.ndim != 3 or image.shape[0] != 3 or min(image.shape[1:]) < 1:
        raise ValueError(f"image must be [3, H, W], got shape {tuple(image.shape)}")
    if not image.is_floating_point():
        raise ValueError(f"image must be float in [0, 1], got {image.dtype}; e.g. image.float() / 255")
    if not torch.isfinite(image).all():  # NaN compares false with any bound: test it first
        bad = (~torch.isfinite(image)).sum().item()
        raise ValueError(f"image has {bad} NaN or infinite values; values must lie in [0, 1]")
    low, high = image.min().item(), image.max().item()
    if low < -UNIT_RANGE_TOLERANCE or high > 1 + UNIT_RANGE_TOLERANCE:
        raise ValueError(f"image values must lie in [0, 1], got [{low:g}, {high:g}]; a 0..255 image needs / 255")


class PromptSegmenter(ABC):
    """What every segmenter answers (AMCP's ``Segmenter``, the GrabCut baseline): a session over
    one image. ``method`` names it in records and results tables."""

    method: str

    @abstractmethod
    def set_image(self, image: Tensor, name: str = "") -> None:
        """Take ``image`` ([3, H, W], float in [0, 1]) for the following ``predict`` calls; ``name``
        (a dataset item's) seeds what a segmenter draws per item."""

    @abstractmethod
    def predict(self, prompt: Prompt, on_step: Callable[[StepRecord], None] | None = None) -> Segmentation:
        """Segment the object ``prompt`` points at; ``on_step`` sees each iteration as it ends."""

    @abstractmethod
    def reset_image(self) -> None:
        """Forget the image and free what every part holds for it."""

    def components(self) -> dict:
        """The named parts (painter, features) that hold weights or run on a device."""
        return {}

    @property
    def steps_per_prompt(self) -> int:
        """How many times ``predict`` calls ``on_step``."""
        return 0


class Segmenter(PromptSegmenter):
    """AMCP over one image at a time. ``painter`` and ``features`` default to the weight-free ones."""

    method = "amcp"

    def __init__(self, painter: Painter | None = None, features: FeatureExtractor | None = None,
                 config: AMCPConfig | None = None):
        self.painter = painter if painter is not None else OpenCVPainter()
        self.features = features if features is not None else ColorTextureFeatures()
        self.config = config if config is not None else AMCPConfig()
        self.reset_image()

    def set_image(self, image: Tensor, name: str = "") -> None:
        """Take ``image`` ([3, H, W], float in [0, 1]) for the following ``predict`` calls; AMCP's
        draws come from ``config.seed`` alone, whatever the ``name``."""
        check_image(image)
        self.image_size = tuple(image.shape[-2:])
        self.image = image.float()  # the refinement cuts along the image's own edges
        self.letterbox = Letterbox(*self.image_size, self.config.frame_size)
        self.frame = self.letterbox.image_to_frame(self.image)
        self.content = self.letterbox.content(image.device)
        self.painter.set_image(self.frame)

    def reset_image(self) -> None:
        """Forget the image (and free its tensors, the painter's and the features' too); ``predict``
        needs a new ``set_image``."""
        self.image_size = self.image = self.frame = self.content = self.letterbox = None
        self.painter.reset_image()
        self.features.reset_image()

    def components(self) -> dict:
        return {"painter": self.painter, "features": self.features}

    @property
    def steps_per_prompt(self) -> int:
        return self.config.iterations

    @property
    def is_image_set(self) -> bool:
        return self.image_size is not None

    def predict(self, prompt: Prompt, on_step: Callable[[StepRecord], None] | None = None) -> Segmentation:
        """Segment the object ``prompt`` points at; ``on_step`` sees each iteration as it ends."""
        if not self.is_image_set:
            raise RuntimeError("Segmenter.set_image(image) must be called before predict()")
        cfg, letterbox, device = self.config, self.letterbox, self.frame.device
        height, width = self.image_size

        # 1. The prompt in the frame: starting mask, clicks, and where the object may be.
        prompt_mask = prompt.initial_mask(height, width).to(device)
        positive, negative = [[letterbox.point_to_frame(*p) for p in points] for points in prompt.points()]
        # Clicks are hard constraints: a disc around each positive click is object, around each
        # negative click background. (A negative prior, as broad as the positive one, cancels it.)
        radius = cfg.click_radius * cfg.frame_size
        seeds = click_discs(positive, radius, cfg.frame_size, device) & self.content
        blocked = click_discs(negative, radius, cfg.frame_size, device)
        valid = valid_region(prompt.region_box(height, width), cfg.valid_region_scale, letterbox, device) & ~blocked
        foreground = (letterbox.mask_to_frame(prompt_mask) & self.content & ~blocked) | seeds
        if not foreground.any():
            raise PromptError(f"the {prompt.kind} prompt covers no pixel of the frame (image {height}x{width})")
        ctx = StepContext(frame=self.frame, valid=valid, positive=positive, prompt_kind=prompt.kind,
                          painter=self.painter, features=self.features, config=cfg,
                          generator=torch.Generator().manual_seed(cfg.seed))

        # 2. Alternate I- and O-steps; the steps keep within valid, seeds keep the positive clicks in.
        result = Segmentation(mask=prompt_mask, prompt_mask=prompt_mask)
        for iteration in range(cfg.iterations):
            step = step_at(iteration)
            start = time.perf_counter()
            out = step(ctx, foreground, iteration)
            foreground = (out.mask & self.content) | seeds
            mask = letterbox.mask_from_frame(foreground)
            if iteration == cfg.iterations - 1 and cfg.refine_iterations:
                # The last update is re-cut along the image's edges at its own size (refine.py).
                mask = refine_mask(self.image, mask, letterbox.mask_from_frame(valid), letterbox.mask_from_frame(seeds),
                                   cfg.refine_iterations, cfg.refine_context, cfg.refine_min_kept, cfg.seed)
            seconds = synced_elapsed(start, mask)
            record = StepRecord(iteration, "inpaint" if iteration % 2 == 0 else "outpaint", mask, seconds,
                                out.paint_seconds, out.features_seconds,
                                seconds - out.paint_seconds - out.features_seconds)
            result.steps.append(record)
            if on_step is not None:
                on_step(record)

        # 3. The last step's mask, at the image's size.
        if result.steps:
            result.mask = result.steps[-1].mask
        return result


def segment(image: Tensor, prompt: Prompt, painter: Painter | None = None, features: FeatureExtractor | None = None,
            config: AMCPConfig | None = None) -> Segmentation:
    """One image, one prompt: ``Segmenter(painter, features, config)``, ``set_image``, ``predict``."""
    segmenter = Segmenter(painter, features, config)
    segmenter.set_image(image)
    return segmenter.predict(prompt)
