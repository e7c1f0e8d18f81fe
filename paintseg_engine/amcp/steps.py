"""The two AMCP steps. Each paints, measures contrast and updates the mask under its constraint:

    I-step (inpaint_step):  repaint the (dilated) foreground from the background; where the
                            painting differs from the original is foreground -> the mask shrinks.
    O-step (outpaint_step): repaint the background around the object from the foreground; band
                            pixels that come back unchanged are missed foreground -> the mask grows.

Each step comes in two halves, what to paint (``inpaint_region``, ``outpaint_region``) and the
update from the paintings (``inpaint_update``, ``outpaint_update``), so that several prompts on
one image advance in lockstep (``step_in_lockstep``): all their regions go to the painter in one
``paint_many`` call, then each prompt's update runs on its own paintings.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Literal

import torch
from torch import Tensor

from ..features import FeatureExtractor
from ..morphology import closing, dilate, opening
from ..painters import Painter
from .config import AMCPConfig
from .contrast import average_votes, cluster_votes, contrast_map, crop_boxes, crop_features, log_contrast, point_prior
from .frame import Point


@dataclass(frozen=True)
class StepContext:
    """What stays fixed over the steps of one prompt on one image."""

    frame: Tensor  # [3, S, S] in [0, 1]
    valid: Tensor  # [S, S] bool: where the object may be (negative clicks carved out)
    positive: list[Point]  # positive clicks, frame coordinates
    prompt_kind: str
    inpaint_painter: Painter  # paints the I-steps
    outpaint_painter: Painter  # paints the O-steps (the same painter by default)
    features: FeatureExtractor
    config: AMCPConfig
    generator: torch.Generator  # draws the crops' shifts (and the painter's noise)


@dataclass(frozen=True)
class StepOutput:
    """What a step changes for one prompt: the mask, and where its time went."""

    mask: Tensor  # [S, S] bool
    paint_seconds: float  # its share of the painter call, which the prompts stacked in it share equally
    features_seconds: float
    seconds: float  # its paint share and its own update (features, clustering, votes, mask update)


def synced_elapsed(start: float, result: Tensor) -> float:
    """Seconds since ``start``, after the device has finished computing ``result``."""
    if result.is_cuda:
        torch.cuda.synchronize(result.device)
    return time.perf_counter() - start


def clusters_at(iteration: int, prompt_kind: str, config: AMCPConfig) -> int:
    early = {"box": config.early_iterations_box, "points": config.early_iterations_points}.get(prompt_kind, 0)
    return config.kmeans_clusters_early if iteration < early else config.kmeans_clusters


def contrast_votes(ctx: StepContext, painted: Tensor, foreground: Tensor, iteration: int,
                   pick: Literal["highest", "lowest"]) -> tuple[Tensor, float]:
    """(Vote fraction per frame pixel that it belongs to the picked contrast cluster, feature seconds)."""
    cfg = ctx.config
    boxes = crop_boxes(foreground, len(painted), cfg, ctx.generator)
    start = time.perf_counter()
    painted_f, original_f = crop_features(ctx.features, ctx.frame, painted, boxes, cfg.cache_original_features)
    x0, y0, x1, y1 = boxes[0]
    contrast = contrast_map(painted_f, original_f, (y1 - y0, x1 - x0))
    features_seconds = synced_elapsed(start, contrast)

    weight = max(0.0, cfg.point_prior_weight - cfg.point_prior_decay * iteration)
    if weight > 0 and ctx.positive:
        # The prior pulls toward positive clicks: added where the step keeps high contrast
        # (I-step), subtracted where it keeps low contrast (O-step).
        sign = 1.0 if pick == "highest" else -1.0
        span = contrast.amax() - contrast.amin()
        prior = point_prior(boxes, ctx.positive, cfg.point_sigma_divisor, contrast.device)
        contrast = contrast + sign * weight * span * prior
    if cfg.log_contrast:
        contrast = log_contrast(contrast, cfg.log_contrast_floor)
    votes = cluster_votes(contrast, clusters_at(iteration, ctx.prompt_kind, cfg), pick, cfg.kmeans_steps)
    return average_votes(votes, boxes, foreground.shape[-1]), features_seconds


def clean(mask: Tensor, size: int) -> Tensor:
    return closing(opening(mask, size), size)


def inpaint_region(ctx: StepContext, foreground: Tensor) -> Tensor:
    """I-step, what to paint: the foreground, dilated so that its outline is repainted too."""
    return dilate(foreground, 3, ctx.config.inpaint_dilation)


def inpaint_update(ctx: StepContext, foreground: Tensor, iteration: int, region: Tensor,
                   painted: Tensor) -> tuple[Tensor, float]:
    """I-step, the update from the paintings of ``region``: what the painting changes stays
    foreground. Only shrinks. (The new mask, feature seconds.)"""
    cfg = ctx.config
    if cfg.paste_back:
        painted = torch.where(region, painted, ctx.frame)
    votes, features_seconds = contrast_votes(ctx, painted, foreground, iteration, "highest")
    kept = (votes >= cfg.vote_threshold) & foreground & ctx.valid
    kept = clean(kept, cfg.morphology_kernel) & foreground
    # A step that erases the whole object has failed; the mask it started from is the better answer.
    return (kept if kept.any() else foreground), features_seconds


def inpaint_step(ctx: StepContext, foreground: Tensor, iteration: int) -> StepOutput:
    """I-step of one prompt: paint the foreground away; what the painting changes stays foreground. Only shrinks."""
    return step_in_lockstep(INPAINT, [ctx], [foreground], iteration)[0]


def grow_zone(ctx: StepContext, foreground: Tensor) -> Tensor:
    """Where the O-step may grow the mask: a band around it (the whole background for clicks,
    which the reference repaints whole)."""
    if ctx.prompt_kind == "points":
        return ~foreground
    return dilate(foreground, 2 * ctx.config.outpaint_band + 1) & ~foreground


def outpaint_region(ctx: StepContext, foreground: Tensor) -> Tensor:
    """O-step, what to paint: the grow zone, or the whole background (``outpaint_region``)."""
    return ~foreground if ctx.config.outpaint_region == "background" else grow_zone(ctx, foreground)


def outpaint_update(ctx: StepContext, foreground: Tensor, iteration: int, region: Tensor,
                    painted: Tensor) -> tuple[Tensor, float]:
    """O-step, the update from the paintings: grow-zone pixels that come back unchanged are
    foreground that was missed. Only grows. (The new mask, feature seconds.)"""
    cfg = ctx.config
    votes, features_seconds = contrast_votes(ctx, painted, foreground, iteration, "lowest")
    grown = foreground | ((votes >= cfg.vote_threshold) & grow_zone(ctx, foreground) & ctx.valid)
    return clean(grown, cfg.morphology_kernel) | foreground, features_seconds


def outpaint_step(ctx: StepContext, foreground: Tensor, iteration: int) -> StepOutput:
    """O-step of one prompt: paint the background back from the foreground; grow-zone pixels that
    come back unchanged are foreground that was missed. Only grows."""
    return step_in_lockstep(OUTPAINT, [ctx], [foreground], iteration)[0]


@dataclass(frozen=True)
class Step:
    """One kind of AMCP step in its two halves: ``region(ctx, foreground)`` says what to paint,
    ``update(ctx, foreground, iteration, region, painted)`` gives the new mask and feature seconds."""

    kind: Literal["inpaint", "outpaint"]
    region: Callable[[StepContext, Tensor], Tensor]
    update: Callable[[StepContext, Tensor, int, Tensor, Tensor], tuple[Tensor, float]]

    def painter(self, ctx: StepContext) -> Painter:
        return ctx.inpaint_painter if self.kind == "inpaint" else ctx.outpaint_painter


INPAINT = Step("inpaint", inpaint_region, inpaint_update)
OUTPAINT = Step("outpaint", outpaint_region, outpaint_update)


def step_at(iteration: int) -> Step:
    """Even iterations are I-steps, odd ones O-steps: an odd count ends on an I-step."""
    return INPAINT if iteration % 2 == 0 else OUTPAINT


def step_in_lockstep(step: Step, contexts: list[StepContext], foregrounds: list[Tensor],
                     iteration: int) -> list[StepOutput]:
    """``step`` for several prompts on one image, one output each: every prompt's region is painted
    in one ``paint_many`` call, each from its own generator, then each prompt's update runs on its
    own paintings. The contexts are one segmenter's (the same frame, painters and config)."""
    painter, num_samples = step.painter(contexts[0]), contexts[0].config.num_samples
    regions = [step.region(ctx, foreground) for ctx, foreground in zip(contexts, foregrounds)]
    start = time.perf_counter()
    paintings = painter.paint_many(regions, num_samples, [ctx.generator for ctx in contexts])
    paintings = [painted.to(ctx.frame) for painted, ctx in zip(paintings, contexts)]
    paint_share = synced_elapsed(start, paintings[-1]) / len(contexts)
    outputs = []
    for ctx, foreground, region, painted in zip(contexts, foregrounds, regions, paintings):
        start = time.perf_counter()
        mask, features_seconds = step.update(ctx, foreground, iteration, region, painted)
        outputs.append(StepOutput(mask, paint_share, features_seconds, paint_share + synced_elapsed(start, mask)))
    return outputs
