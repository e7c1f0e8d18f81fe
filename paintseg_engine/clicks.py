"""The interactive click protocol of RITM / PaintSeg, as pure functions.

The rules of RITM's evaluation (``isegm/inference/clicker.py``), so NoC compares with the
published tables. The first click goes to the interior-most point of the object; each next click
to the interior-most point of the larger error region of the current prediction: a positive click
in missed object (false negatives), a negative one in spilled background (false positives).
"Interior-most" is the maximum of the exact Euclidean distance transform, the image border
counting as boundary; "larger" compares those maxima, ties going negative; ignored pixels are no
error; a pixel already clicked is never clicked again (a click that did not fix its pixel moves
on); among equally deep pixels the first in row-major order wins. NoC@t is the first click count
whose IoU reaches t, or the click cap when none does.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import cv2
import numpy as np
import torch
from torch import Tensor

from .amcp.frame import Point
from .metrics import mask_iou

NOC_THRESHOLDS = (0.85, 0.90)
MAX_CLICKS = 20


@dataclass
class ClickProtocol:
    """An item's prompt under the interactive protocol: clicks are simulated against its ground truth."""

    max_clicks: int = MAX_CLICKS
    stop_iou: float | None = max(NOC_THRESHOLDS)  # stop once IoU reaches this (None: all max_clicks)
    kind = "clicks"


@dataclass
class Click:
    x: float
    y: float
    positive: bool


@dataclass
class ClickRun:
    clicks: list[Click] = field(default_factory=list)
    ious: list[float] = field(default_factory=list)  # IoU after each click
    mask: Tensor | None = None  # the prediction after the last click

    @property
    def positive(self) -> list[Point]:
        return [(c.x, c.y) for c in self.clicks if c.positive]

    @property
    def negative(self) -> list[Point]:
        return [(c.x, c.y) for c in self.clicks if not c.positive]


def depth_map(region: np.ndarray) -> np.ndarray:
    """Exact Euclidean distance to the nearest pixel outside ``region``, the image border
    counting as outside (a one-pixel zero frame, as RITM pads)."""
    padded = np.pad(region.astype(np.uint8), 1)
    return cv2.distanceTransform(padded, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)[1:-1, 1:-1]


def interior_point(mask: np.ndarray) -> Point:
    """(x, y) of the pixel of ``mask`` farthest from its boundary: the first click."""
    depth = depth_map(mask)
    y, x = np.unravel_index(np.argmax(depth), depth.shape)
    return float(x), float(y)


def next_click(pred: Tensor, gt: Tensor, ignore: Tensor | None = None, clicked: Sequence[Click] = ()) -> Click | None:
    """The click that corrects ``pred`` most, or None when it has no error left that is not
    already ``clicked``."""
    counted = np.ones(gt.shape, bool) if ignore is None else ~ignore.numpy()
    pred_np, gt_np = pred.numpy().astype(bool), gt.numpy().astype(bool)
    not_clicked = np.ones(gt.shape, np.float32)
    for c in clicked:
        not_clicked[int(c.y), int(c.x)] = 0
    missed = depth_map(gt_np & ~pred_np & counted) * not_clicked
    spilled = depth_map(pred_np & ~gt_np & counted) * not_clicked
    if max(missed.max(), spilled.max()) == 0:
        return None
    positive = bool(missed.max() > spilled.max())  # ties go negative, as in RITM
    depth = missed if positive else spilled
    y, x = np.unravel_index(np.argmax(depth), depth.shape)
    return Click(float(x), float(y), positive)


def simulate_clicks(predict: Callable[[list[Point], list[Point], Tensor | None], Tensor], gt: Tensor,
                    ignore: Tensor | None = None, max_clicks: int = MAX_CLICKS, stop_iou: float | None = None) -> ClickRun:
    """Click, predict, measure, up to ``max_clicks`` times, from an empty prediction.

    ``predict(positive_points, negative_points, previous)`` returns a bool mask [H, W]; it is called
    once per click with every click so far and the prediction before this click (None for the
    first), which a segmenter may start from (RITM feeds its network the previous mask too).
    Stops early when IoU reaches ``stop_iou`` or no error is left.
    """
    run = ClickRun(mask=torch.zeros_like(gt, dtype=torch.bool))
    for _ in range(max_clicks):
        click = next_click(run.mask, gt, ignore, run.clicks)
        if click is None:
            break
        previous = run.mask if run.clicks else None
        run.clicks.append(click)
        run.mask = predict(run.positive, run.negative, previous)
        run.ious.append(mask_iou(run.mask, gt, ignore))
        if stop_iou is not None and run.ious[-1] >= stop_iou:
            break
    return run


def noc_key(threshold: float) -> str:
    """The record / table key of NoC at ``threshold``: noc85 for 0.85."""
    return f"noc{round(threshold * 100)}"


def number_of_clicks(ious: Sequence[float], threshold: float, max_clicks: int = MAX_CLICKS) -> int:
    """Clicks needed to reach ``threshold`` IoU; ``max_clicks`` when never reached."""
    reached = [k for k, iou in enumerate(ious[:max_clicks], start=1) if iou >= threshold]
    return reached[0] if reached else max_clicks


def iou_at(ious: Sequence[float], k: int) -> float:
    """IoU after ``k`` clicks; a run that stopped earlier keeps its last IoU."""
    return ious[min(k, len(ious)) - 1]


def mean_iou_at(runs: Sequence[Sequence[float]], k: int) -> float:
    """mIoU@k over images, each image's IoU after k clicks."""
    return float(np.mean([iou_at(ious, k) for ious in runs]))
