"""A segmenter session, as segment-anything's ``SamPredictor``: set an image once, then answer
any number of prompts. What depends only on the image (its frame, the painter's per-image work
such as a VAE encode) is done in ``set_image``; what depends on the prompt, in ``predict``.
``predict_many`` answers several prompts in lockstep, their paintings of each iteration in one
painter call; ``predict`` is ``predict_many`` of one prompt.
"""
from __future__ import annotations

import time
from abc import ABC, abstractmethod
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable, Iterator, Literal

import torch
from torch import Tensor

from ..features import ColorTextureFeatures, FeatureExtractor
from ..painters import OpenCVPainter, Painter
from ..errors import PromptError
from ..prompts import Prompt, box_of
from .config import AMCPConfig
from .frame import Letterbox, click_discs, valid_region
from .refine import refine_mask
from .start import click_cut, click_window, image_click_cut
from .steps import Step, StepContext, StepOutput, step_at, step_in_lockstep, synced_elapsed

# How far above 1 a float image may go (resampling overshoot) before it counts as 0..255.
UNIT_RANGE_TOLERANCE = 1e-3


@dataclass
class StepRecord:
    """One AMCP iteration, as reported to ``on_step`` and kept in the result."""

    iteration: int
    kind: Literal["inpaint", "outpaint"]
    painter: str  # the class of the painter that painted this step
    mask: Tensor = field(repr=False)  # bool [H, W], the image's size: the mask after this step
    seconds: float
    paint_seconds: float  # with prompts painted together (predict_many), an equal share of their painter call
    features_seconds: float
    update_seconds: float  # clustering, votes and mask update: what painting and features did not take
    refine_seconds: float = 0.0  # the refinement's share of update_seconds (last iteration only)

    def __str__(self) -> str:
        """One line, as ``on_step=print`` shows it: the times and the mask's share of the image."""
        height, width = self.mask.shape[-2:]
        return (f"iteration {self.iteration} {self.kind}: {self.seconds:.3f} s (paint {self.paint_seconds:.3f}, "
                f"features {self.features_seconds:.3f}, update {self.update_seconds:.3f}), "
                f"mask {self.mask.float().mean().item():.1%} of {width}x{height}")

    def timings(self) -> dict:
        """The record without its mask, for JSON."""
        return {"iteration": self.iteration, "step": self.kind, "painter": self.painter, "seconds": self.seconds,
                "paint": self.paint_seconds, "features": self.features_seconds, "update": self.update_seconds,
                "refine": self.refine_seconds}


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


@contextmanager
def naming_the_prompt(index: int, count: int) -> Iterator[None]:
    """A ``PromptError`` raised inside, for prompt ``index`` of ``count``, says which prompt it is
    about (its ``index``, and its message where there are several)."""
    try:
        yield
    except PromptError as error:
        if count == 1:
            raise
        raise PromptError(error.reason, index) from error


@dataclass
class PromptRun:
    """A prompt being answered: what bounds it in the frame, its mask there now, its result so far."""

    ctx: StepContext  # what stays fixed over its steps: the valid region, its clicks, its generator
    iterations: int  # AMCP iterations it runs (config.iterations_for its kind)
    refine_iterations: int  # GrabCut iterations of its refinement (config.refine_iterations_for its kind)
    rival: Tensor | None  # [H, W] bool: the refinement's second start (a box prompt's box), or None
    seeds: Tensor  # [S, S] bool: discs around the positive clicks, always object
    foreground: Tensor  # [S, S] bool: the mask in the frame after the last step
    result: Segmentation


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

    def predict_many(self, prompts: list[Prompt],
                     on_step: Callable[[int, StepRecord], None] | None = None) -> list[Segmentation]:
        """Segment the object each of ``prompts`` points at, one result each, in order; ``on_step``
        sees each iteration as it ends, with the index of its prompt. This default answers the
        prompts one after the other; a bad one raises ``PromptError`` with its ``index``."""
        results = []
        for index, prompt in enumerate(prompts):
            report = None if on_step is None else (lambda record, index=index: on_step(index, record))
            with naming_the_prompt(index, len(prompts)):
                results.append(self.predict(prompt, report))
        return results

    @abstractmethod
    def reset_image(self) -> None:
        """Forget the image and free what every part holds for it."""

    def components(self) -> dict:
        """The named parts (painter, features) that hold weights or run on a device."""
        return {}

    def steps_for(self, prompt: Prompt) -> int:
        """How many times ``predict(prompt)`` calls ``on_step``."""
        return 0


class Segmenter(PromptSegmenter):
    """AMCP over one image at a time. ``painter`` and ``features`` default to the weight-free ones.
    ``painter`` paints the I-steps, and the O-steps too unless ``outpaint_painter`` is given (the
    released script paints them with two models)."""

    method = "amcp"

    def __init__(self, painter: Painter | None = None, features: FeatureExtractor | None = None,
                 config: AMCPConfig | None = None, outpaint_painter: Painter | None = None):
        self.painter = painter if painter is not None else OpenCVPainter()
        self.outpaint_painter = outpaint_painter if outpaint_painter is not None else self.painter
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
        for painter in self.painters:
            painter.set_image(self.frame)

    def reset_image(self) -> None:
        """Forget the image (and free its tensors, the painter's and the features' too); ``predict``
        needs a new ``set_image``."""
        self.image_size = self.image = self.frame = self.content = self.letterbox = None
        for painter in self.painters:
            painter.reset_image()
        self.features.reset_image()

    def components(self) -> dict:
        parts = {"painter": self.painter, "features": self.features}
        if self.outpaint_painter is not self.painter:
            parts["outpaint_painter"] = self.outpaint_painter
        return parts

    def steps_for(self, prompt: Prompt) -> int:
        return self.config.iterations_for(prompt.kind)

    @property
    def painters(self) -> list[Painter]:
        """The distinct painters: one, or the I-step's and the O-step's."""
        return list({id(p): p for p in (self.painter, self.outpaint_painter)}.values())

    @property
    def is_image_set(self) -> bool:
        return self.image_size is not None

    def predict(self, prompt: Prompt, on_step: Callable[[StepRecord], None] | None = None) -> Segmentation:
        """Segment the object ``prompt`` points at; ``on_step`` sees each iteration as it ends."""
        report = None if on_step is None else (lambda index, record: on_step(record))
        return self.predict_many([prompt], report)[0]

    def predict_many(self, prompts: list[Prompt],
                     on_step: Callable[[int, StepRecord], None] | None = None) -> list[Segmentation]:
        """Segment the object each of ``prompts`` points at, in lockstep: each iteration paints all
        their regions in one painter call (``Painter.paint_many``; the diffusion painter stacks
        them into one UNet call per denoising step), then updates each prompt's mask on its own.
        Each prompt draws from its own generator, seeded from ``config.seed`` as ``predict`` seeds
        it, so its result is the one ``predict`` gives it alone.

        Every prompt is checked before any is painted: a bad one raises ``PromptError`` with its
        ``index`` and nothing is answered. ``on_step(index, record)`` sees each prompt's iteration
        as it ends. No prompts, no results: ``[]``.
        """
        if not self.is_image_set:
            raise RuntimeError("Segmenter.set_image(image) must be called before predict()")
        if not prompts:
            return []
        # 1. Each prompt in the frame, all checked before any is painted.
        runs = []
        for index, prompt in enumerate(prompts):
            with naming_the_prompt(index, len(prompts)):
                runs.append(self.prompt_run(prompt))
        # 2. Alternate I- and O-steps, the prompts in lockstep (each for its own count of
        # iterations); each result is its last step's mask.
        for iteration in range(max(run.iterations for run in runs)):
            step = step_at(iteration)
            active = [(index, run) for index, run in enumerate(runs) if iteration < run.iterations]
            outputs = step_in_lockstep(step, [run.ctx for _, run in active], [run.foreground for _, run in active],
                                       iteration)
            for (index, run), out in zip(active, outputs):
                record = self.advance(run, step, out, iteration)
                if on_step is not None:
                    on_step(index, record)
        return [run.result for run in runs]

    def prompt_run(self, prompt: Prompt) -> PromptRun:
        """The prompt in the frame: starting mask, clicks, and where the object may be."""
        cfg, letterbox, device = self.config, self.letterbox, self.frame.device
        height, width = self.image_size
        box = prompt.region_box(height, width)  # also checks the prompt against the image
        positive, negative = [[letterbox.point_to_frame(*p) for p in points] for points in prompt.points()]
        radius = cfg.click_radius * cfg.frame_size
        kind, scale, window = prompt.kind, cfg.valid_region_scale, None
        if prompt.kind == "points" and cfg.points_start == "clicks":
            # Start where the clicks say the object is (start.py); from there on the clicks'
            # start is to AMCP what a coarse mask is, the valid region sized from it and kept
            # inside the start's window: what the start excluded, no later step brings back.
            if cfg.start_window is not None:
                window = click_window(positive, cfg.start_window * cfg.frame_size, (cfg.frame_size,) * 2, device)
            previous = prompt.previous_mask(height, width) if cfg.points_previous else None
            previous = None if previous is None else previous.to(device)
            if cfg.start_on == "image":
                prompt_mask = image_click_cut(self.image, *prompt.points(), cfg.click_radius, cfg.start_reach,
                                              cfg.start_iterations, cfg.seed, cfg.start_window, previous,
                                              cfg.refine_work_size)
            else:
                inside = self.content if window is None else self.content & window
                start = click_cut(self.frame, positive, negative, radius, cfg.start_reach * cfg.frame_size,
                                  cfg.start_iterations, cfg.seed, inside,
                                  None if previous is None else letterbox.mask_to_frame(previous))
                prompt_mask = letterbox.mask_from_frame(start)
            box, kind, scale = box_of(prompt_mask), "coarse_mask", cfg.start_valid_scale
        else:
            prompt_mask = prompt.initial_mask(height, width).to(device)
        # Clicks are hard constraints: a disc around each positive click is object, around each
        # negative click background. (A negative prior, as broad as the positive one, cancels it.)
        seeds = click_discs(positive, radius, cfg.frame_size, device) & self.content
        blocked = click_discs(negative, radius, cfg.frame_size, device)
        valid = valid_region(box, scale, letterbox, device) & ~blocked
        if window is not None:
            valid &= window
        foreground = (letterbox.mask_to_frame(prompt_mask) & self.content & ~blocked) | seeds
        if not foreground.any():
            raise PromptError(f"the {prompt.kind} prompt covers no pixel of the frame (image {height}x{width})")
        ctx = StepContext(frame=self.frame, valid=valid, positive=positive, prompt_kind=kind,
                          inpaint_painter=self.painter, outpaint_painter=self.outpaint_painter,
                          features=self.features, config=cfg,
                          generator=torch.Generator().manual_seed(cfg.seed))
        rival = prompt_mask if cfg.refine_from_box and prompt.kind == "box" else None
        return PromptRun(ctx, cfg.iterations_for(prompt.kind), cfg.refine_iterations_for(prompt.kind), rival, seeds,
                         foreground, Segmentation(mask=prompt_mask, prompt_mask=prompt_mask))

    def advance(self, run: PromptRun, step: Step, out: StepOutput, iteration: int) -> StepRecord:
        """Take a step's output into ``run``: the steps keep within the valid region, the seeds keep
        the positive clicks in, the last update is re-cut along the image's edges at its own size
        (refine.py). The step's record, whose mask is also the result's mask now."""
        cfg, letterbox = self.config, self.letterbox
        start = time.perf_counter()
        run.foreground = (out.mask & self.content) | run.seeds
        mask = letterbox.mask_from_frame(run.foreground)
        refine_seconds = 0.0
        if iteration == run.iterations - 1 and run.refine_iterations:
            refine_start = time.perf_counter()
            mask = refine_mask(self.image, mask, letterbox.mask_from_frame(run.ctx.valid),
                               letterbox.mask_from_frame(run.seeds), run.refine_iterations, cfg.refine_context,
                               cfg.refine_min_kept, cfg.seed, cfg.refine_work_size, run.rival)
            refine_seconds = time.perf_counter() - refine_start
        seconds = out.seconds + synced_elapsed(start, mask)
        record = StepRecord(iteration, step.kind, type(step.painter(run.ctx)).__name__, mask, seconds,
                            out.paint_seconds, out.features_seconds,
                            seconds - out.paint_seconds - out.features_seconds, refine_seconds)
        run.result.steps.append(record)
        run.result.mask = mask
        return record


def segment(image: Tensor, prompt: Prompt, painter: Painter | None = None, features: FeatureExtractor | None = None,
            config: AMCPConfig | None = None, outpaint_painter: Painter | None = None) -> Segmentation:
    """One image, one prompt: ``Segmenter(painter, features, config, outpaint_painter)``, ``set_image``, ``predict``."""
    segmenter = Segmenter(painter, features, config, outpaint_painter)
    segmenter.set_image(image)
    return segmenter.predict(prompt)
