"""Where AMCP starts for clicks: a graph cut seeded by them (GrabCut in mask mode).

Discs around positive clicks are sure object, discs around negative ones sure background, every
other pixel probable background: the object's colour model is fitted to the positive discs, the
background's to the rest, and the cut grows the object from its discs along the image's edges.
It is the cut of refine.py with nothing probable-object to start from, in a window around the
positive clicks (or the whole image), so the two stay one GrabCut call (``seeded_grabcut``).
"""
from __future__ import annotations

import torch
from torch import Tensor

from .frame import Point, click_discs
from .refine import refine_mask


def click_window(positive: list[Point], margin: float, size: tuple[int, int], device=None) -> Tensor:
    """Bool [H, W]: the box of the positive clicks grown by ``margin`` pixels on every side."""
    height, width = size
    xs, ys = [x for x, _ in positive], [y for _, y in positive]
    window = torch.zeros(height, width, dtype=torch.bool, device=device)
    window[max(0, int(min(ys) - margin)):max(0, int(max(ys) + margin) + 1),
           max(0, int(min(xs) - margin)):max(0, int(max(xs) + margin) + 1)] = True
    return window


def click_cut(image: Tensor, positive: list[Point], negative: list[Point], radius: float, reach: float,
              iterations: int, seed: int = 0, inside: Tensor | None = None, previous: Tensor | None = None,
              work_size: int | None = None) -> Tensor:
    """Bool [H, W]: the object the clicks (image pixels) point at in ``image`` ([3, H, W] in [0, 1]).

    Discs of ``radius`` are sure, discs of ``reach`` around positive clicks probable object
    (the object is most likely near its click, and its colour model needs more than a disc's
    few pixels); nothing outside ``inside`` (bool [H, W], default everywhere) is object. The cut
    runs in the box of ``inside``: given a ``click_window``, its background model is fitted to
    the object's surroundings rather than to the whole image, where the object's colours may recur.
    A positive disc always stays object; where a negative disc overlaps it, the positive one
    wins (the protocol never clicks a pixel twice, so the later meaning cannot be known).
    ``previous`` (bool [H, W]), the prediction the clicks correct, is probable object too, unless
    a negative click lies in it: then the newest click says it spilled there, and a spill kept
    probable keeps its colours in the object's model, so the cut starts from the clicks alone
    (docs/algorithm.md "Where clicks start"). A positive click lands in missed object, outside it.
    ``work_size`` caps the cut's longer side as the refinement's (refine.refine_mask).
    """
    height, width = image.shape[-2:]
    allowed = torch.ones(height, width, dtype=torch.bool, device=image.device) if inside is None else inside
    sure = click_discs(positive, radius, (height, width), image.device) & allowed
    if not sure.any():
        raise ValueError("click_cut needs at least one positive click inside the image")
    allowed = allowed & ~(click_discs(negative, radius, (height, width), image.device) & ~sure)
    probable = click_discs(positive, reach, (height, width), image.device)
    if previous is not None and not any(previous[int(y), int(x)] for x, y in negative):
        probable = probable | previous
    probable = probable & allowed
    # min_kept 0: the discs are the start, any cut of them is an answer.
    return refine_mask(image, probable, allowed, sure, iterations, context=0.0, min_kept=0.0, seed=seed,
                       work_size=work_size)


def image_click_cut(image: Tensor, positive: list[Point], negative: list[Point], radius: float, reach: float,
                    iterations: int, seed: int = 0, window: float | None = None, previous: Tensor | None = None,
                    work_size: int | None = None) -> Tensor:
    """``click_cut`` on an image at its own size, ``radius``, ``reach`` and ``window`` (the margin of
    ``click_window``, None: the whole image) as fractions of its longer side, as AMCP's are of the
    frame's: the seeded-cut baseline, and AMCP's start with ``start_on: image``."""
    height, width = image.shape[-2:]
    side = max(height, width)
    inside = None if window is None else click_window(positive, window * side, (height, width), image.device)
    return click_cut(image, positive, negative, max(1.0, radius * side), reach * side, iterations, seed, inside,
                     previous, work_size)
