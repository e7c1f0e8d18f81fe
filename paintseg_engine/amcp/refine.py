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
seeded here (``seeded_grabcut``, the one GrabCut call, which the GrabCut baseline and the click
start share), so equal inputs give equal masks.
"""
from __future__ import annotations

import cv2
import numpy as np
import torch
from torch import Tensor

from .graphcut import GAMMA, grabcut


def seeded_grabcut(image: Tensor, labels: np.ndarray, iterations: int, seed: int,
                   rect: tuple[int, int, int, int] | None = None, gamma: float = GAMMA) -> np.ndarray:
    """Bool [h, w]: GrabCut (OpenCV's, graphcut.py) on ``image`` ([3, h, w] in [0, 1]) from ``labels``
    (uint8, OpenCV's GC_* classes, updated in place), or from ``rect`` (x, y, width, height) when
    given: inside it probable object, outside sure background. ``seed`` seeds its colour models'
    k-means, so equal inputs give equal masks; ``gamma`` weighs the neighbour links. Definite and
    probable foreground count as object."""
    bgr = np.ascontiguousarray((image.permute(1, 2, 0).float().cpu().numpy()[..., ::-1] * 255).round().astype(np.uint8))
    if rect is not None:
        x, y, width, height = rect
        labels[:] = cv2.GC_BGD
        labels[y:y + height, x:x + width] = cv2.GC_PR_FGD
    return grabcut(bgr, labels, iterations, seed, gamma)


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
                context: float = 1.0, min_kept: float = 0.25, seed: int = 0, work_size: int | None = None) -> Tensor:
    """Bool [H, W]: ``mask`` re-cut along the edges of ``image`` ([3, H, W] in [0, 1]).

    ``valid`` (bool [H, W]) bounds the object; ``sure`` pixels stay object. A mask with no
    background left to model comes back unchanged, and so does one of which the cut keeps less
    than ``min_kept`` of the area: such a cut has collapsed (the background's colour model took
    the object's colours), as an I-step that erases the object has failed.

    ``work_size`` (None: the image's resolution) caps the window's longer side: a larger window is
    cut at that size and the cut brought back. The neighbour links' weight is scaled with the
    side, so the energy keeps its balance: the colour terms sum over the area (scale²), the
    boundary's links along its length (scale); with gamma times scale both totals shrink by scale².
    """
    if image.shape[-2:] != mask.shape or mask.shape != valid.shape:
        raise ValueError(f"refine_mask: image {tuple(image.shape)}, mask {tuple(mask.shape)} and valid "
                         f"{tuple(valid.shape)} must share their height and width")
    mask_np, valid_np = mask.cpu().numpy().astype(bool), valid.cpu().numpy().astype(bool)
    labels = np.full(mask_np.shape, cv2.GC_BGD, np.uint8)
    labels[valid_np] = np.where(mask_np[valid_np], cv2.GC_PR_FGD, cv2.GC_PR_BGD)
    if sure is not None:
        labels[sure.cpu().numpy().astype(bool)] = cv2.GC_FGD
    x0, y0, x1, y1 = window(valid_np, context)
    crop, cut = image[:, y0:y1, x0:x1], np.ascontiguousarray(labels[y0:y1, x0:x1])
    height, width = cut.shape
    scale = 1.0 if work_size is None else min(1.0, work_size / max(height, width))
    if scale < 1.0:  # area-averaged colours, nearest labels
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        crop = torch.nn.functional.interpolate(crop[None].float(), size[::-1], mode="area")[0]
        cut = cv2.resize(cut, size, interpolation=cv2.INTER_NEAREST)
    is_object = (cut == cv2.GC_FGD) | (cut == cv2.GC_PR_FGD)
    if iterations == 0 or not is_object.any() or is_object.all():
        return mask  # nothing to refine, or no background to model
    object_cut = seeded_grabcut(crop, cut, iterations, seed, gamma=GAMMA * scale)
    if scale < 1.0:  # back to the window's size, then its sure pixels put back
        object_cut = cv2.resize(object_cut.astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR) >= 0.5
        fixed = labels[y0:y1, x0:x1]
        object_cut = (object_cut & (fixed != cv2.GC_BGD)) | (fixed == cv2.GC_FGD)
    refined = np.zeros_like(mask_np)
    refined[y0:y1, x0:x1] = object_cut
    if refined.sum() <= min_kept * mask_np.sum():
        return mask
    return torch.from_numpy(refined).to(mask.device)
