"""The two AMCP steps. Each paints, measures contrast and updates the mask under its constraint:

    I-step (inpaint_step):  repaint the (dilated) foreground from the background; where the
                            painting differs from the original is foreground -> the mask shrinks.
    O-step (outpaint_step): repaint the background around the object from the foreground; band
                            pixels that come back unchanged are missed foreground -> the mask grows.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

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
    painter: Painter
    features: FeatureExtractor
    config: AMCPConfig
    generator: torch.Generator  # draws the crops' shifts (and the painter's noise)


@dataclass(frozen=True)
class StepOutput:
    """What a step changes: the mask, and where its time went."""

    mask: Tensor  # [S, S] bool
    paint_seconds: float
    features_seconds: float


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


def paint(ctx: StepContext, region: Tensor) -> tuple[Tensor, float]:
    """(``num_samples`` paintings of ``region``, seconds)."""
    start = time.perf_counter()
    painted = ctx.painter.paint(region, ctx.config.num_samples, ctx.generator).to(ctx.frame)
    return painted, synced_elapsed(start, painted)


def inpaint_step(ctx: StepContext, foreground: Tensor, iteration: int) -> StepOutput:
    """I-step: paint the foreground away; what the painting changes stays foreground. Only shrinks."""
    cfg = ctx.config
    region = dilate(foreground, 3, cfg.inpaint_dilation)
    painted, paint_seconds = paint(ctx, region)
    if cfg.paste_back:
        painted = torch.where(region, painted, ctx.frame)
    votes, features_seconds = contrast_votes(ctx, painted, foreground, iteration, "highest")
    kept = (votes >= cfg.vote_threshold) & foreground & ctx.valid
    kept = clean(kept, cfg.morphology_kernel) & foreground
    # A step that erases the whole object has failed; the mask it started from is the better answer.
    return StepOutput(kept if kept.any() else foreground, paint_seconds, features_seconds)


def outpaint_step(ctx: StepContext, foreground: Tensor, iteration: int) -> StepOutput:
    """O-step: paint the background back from the foreground; band pixels that come back
    unchanged are foreground that was missed. Only grows."""
    cfg = ctx.config
    background = ~foreground
    if ctx.prompt_kind == "points":
        grow_zone = background  # the reference repaints the whole background for clicks
    else:
        grow_zone = dilate(foreground, 2 * cfg.outpaint_band + 1) & background
    region = background if cfg.outpaint_region == "background" else grow_zone
    painted, paint_seconds = paint(ctx, region)
    votes, features_seconds = contrast_votes(ctx, painted, foreground, iteration, "lowest")
    grown = foreground | ((votes >= cfg.vote_threshold) & grow_zone & ctx.valid)
    grown = clean(grown, cfg.morphology_kernel) | foreground
    return StepOutput(grown, paint_seconds, features_seconds)


def step_at(iteration: int):
    """Even iterations are I-steps, odd ones O-steps: an odd count ends on an I-step."""
    return inpaint_step if iteration % 2 == 0 else outpaint_step
