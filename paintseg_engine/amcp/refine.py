"""Edge-aware refinement of a mask: a graph cut on the image's colours (GrabCut, with OpenCV's masks).

The reference refines each mask with a dense CRF (Gaussian and bilateral pairwise terms, the
current mask as unary) and blends the result into the contrast. Here the same role is played by a
graph cut: GrabCut fits colour models of object and background to the mask it is given, then
cuts along image edges (``graphcut.grabcut``: OpenCV's GrabCut, its masks, on a faster max-flow).
Every pixel starts as *probable* (the mask's as object, the rest as
background), so the cut may move the outline anywhere; only what lies outside ``valid`` is
definite background, and ``sure`` pixels (around positive clicks) definite object.

The cut runs in a window around ``valid`` (its box grown by ``context``): local background
colours describe the object's surroundings better than the whole image, and the cost follows the
object's size. GrabCut seeds its colour models' k-means from OpenCV's global generator; the generator is
seeded here (``seeded_grabcut_starts``, the one GrabCut call, which the GrabCut baseline and the
click start share), so equal inputs give equal masks.

A ``rival`` start (a box prompt's box: the classical GrabCut's own start) is cut too, on the same
graph, and the cut with the lower GrabCut energy is kept: where AMCP's steps lost part of the
object (or kept background that looks like it), the image decides between the two, not the steps.
"""
from __future__ import annotations

import cv2
import numpy as np
import torch
from torch import Tensor

from .graphcut import GAMMA, grabcut_starts


def seeded_grabcut(image: Tensor, labels: np.ndarray, iterations: int, seed: int,
                   rect: tuple[int, int, int, int] | None = None, gamma: float = GAMMA) -> np.ndarray:
    """Bool [h, w]: GrabCut (OpenCV's, graphcut.py) on ``image`` ([3, h, w] in [0, 1]) from ``labels``
    (uint8, OpenCV's GC_* classes, updated in place), or from ``rect`` (x, y, width, height) when
    given: inside it probable object, outside sure background. ``seed`` seeds its colour models'
    k-means, so equal inputs give equal masks; ``gamma`` weighs the neighbour links. Definite and
    probable foreground count as object."""
    if rect is not None:
        x, y, width, height = rect
        labels[:] = cv2.GC_BGD
        labels[y:y + height, x:x + width] = cv2.GC_PR_FGD
    return seeded_grabcut_starts(image, [labels], iterations, seed, gamma)[0][0]


def seeded_grabcut_starts(image: Tensor, starts: list[np.ndarray], iterations: int, seed: int,
                          gamma: float = GAMMA) -> list[tuple[np.ndarray, float]]:
    """``graphcut.grabcut_starts`` on ``image`` ([3, h, w] in [0, 1]): each start's mask and energy."""
    bgr = np.ascontiguousarray((image.permute(1, 2, 0).float().cpu().numpy()[..., ::-1] * 255).round().astype(np.uint8))
    return grabcut_starts(bgr, starts, iterations, seed, gamma)


def seed_labels(start: np.ndarray, valid: np.ndarray, sure: np.ndarray | None) -> np.ndarray:
    """OpenCV's GC_* labels of a cut from ``start``: inside ``valid`` probable object where
    ``start`` is, probable background elsewhere; outside it sure background; ``sure`` sure object."""
    labels = np.full(start.shape, cv2.GC_BGD, np.uint8)
    labels[valid] = np.where(start[valid], cv2.GC_PR_FGD, cv2.GC_PR_BGD)
    if sure is not None:
        labels[sure] = cv2.GC_FGD
    return labels


def window(valid: np.ndarray, context: float) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1): the box of ``valid`` scaled by ``1 + context`` about its centre, in the image."""
    ys, xs = np.nonzero(valid)
    height, width = valid.shape
    cy, cx = (ys.min() + ys.max() + 1) / 2, (xs.min() + xs.max() + 1) / 2
    half_h = (ys.max() - ys.min() + 1) * (1 + context) / 2
    half_w = (xs.max() - xs.min() + 1) * (1 + context) / 2
    return (max(0, int(cx - half_w)), max(0, int(cy - half_h)),
            min(width, int(np.ceil(cx + half_w))), min(height, int(np.ceil(cy + half_h))))


def refine_mask(image: Tensor, mask: Tensor, valid: Tensor, sure: Tensor | None = None, iterations: int = 5,
                context: float = 1.0, min_kept: float = 0.25, seed: int = 0, work_size: int | None = None,
                rival: Tensor | None = None) -> Tensor:
    """Bool [H, W]: ``mask`` re-cut along the edges of ``image`` ([3, H, W] in [0, 1]).

    ``valid`` (bool [H, W]) bounds the object; ``sure`` pixels stay object. A mask with no
    background left to model comes back unchanged, and so does one of which the cut keeps less
    than ``min_kept`` of the area: such a cut has collapsed (the background's colour model took
    the object's colours), as an I-step that erases the object has failed.

    ``work_size`` (None: the image's resolution) caps the window's longer side: a larger window is
    cut at that size and the cut brought back. The neighbour links' weight is scaled with the
    side, so the energy keeps its balance: the colour terms sum over the area (scale²), the
    boundary's links along its length (scale); with gamma times scale both totals shrink by scale².

    ``rival`` (bool [H, W], optional) is a second start, cut with the same sure pixels: whichever
    of the two cuts ends at the lower GrabCut energy is the answer.
    """
    if image.shape[-2:] != mask.shape or mask.shape != valid.shape:
        raise ValueError(f"refine_mask: image {tuple(image.shape)}, mask {tuple(mask.shape)} and valid "
                         f"{tuple(valid.shape)} must share their height and width")
    mask_np, valid_np = mask.cpu().numpy().astype(bool), valid.cpu().numpy().astype(bool)
    sure_np = None if sure is None else sure.cpu().numpy().astype(bool)
    x0, y0, x1, y1 = window(valid_np, context)
    crop = image[:, y0:y1, x0:x1]
    height, width = crop.shape[-2:]
    scale = 1.0 if work_size is None else min(1.0, work_size / max(height, width))
    if scale < 1.0:  # area-averaged colours
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        crop = torch.nn.functional.interpolate(crop[None].float(), size[::-1], mode="area")[0]

    # Labels of the window only: outside it no start has anything to cut.
    starts = [mask_np] if rival is None else [mask_np, rival.cpu().numpy().astype(bool)]
    inside = (slice(y0, y1), slice(x0, x1))
    full = [seed_labels(start[inside], valid_np[inside], None if sure_np is None else sure_np[inside])
            for start in starts]
    cuts = [labels if scale == 1.0 else cv2.resize(labels, size, interpolation=cv2.INTER_NEAREST) for labels in full]
    # A start with no object, or no background, in its window has nothing to cut.
    kept = [i for i, cut in enumerate(cuts) if 0 < ((cut == cv2.GC_FGD) | (cut == cv2.GC_PR_FGD)).sum() < cut.size]
    if iterations == 0 or not kept:
        return mask
    results = seeded_grabcut_starts(crop, [np.ascontiguousarray(cuts[i]) for i in kept], iterations, seed,
                                    gamma=GAMMA * scale)
    best = min(range(len(kept)), key=lambda k: results[k][1])
    object_cut, labels = results[best][0], full[kept[best]]
    if scale < 1.0:  # back to the window's size, then its sure pixels put back
        object_cut = cv2.resize(object_cut.astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR) >= 0.5
        object_cut = (object_cut & (labels != cv2.GC_BGD)) | (labels == cv2.GC_FGD)
    refined = np.zeros_like(mask_np)
    refined[y0:y1, x0:x1] = object_cut
    if refined.sum() <= min_kept * mask_np.sum():
        return mask
    return torch.from_numpy(refined).to(mask.device)
