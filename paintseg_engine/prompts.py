"""Prompts: what the user says about the object, turned into AMCP's starting mask and limits.

Coordinates are pixels of the input image: x to the right, y down; boxes are
(x0, y0, x1, y1) with x1, y1 exclusive.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import torch
from torch import Tensor

from .errors import PromptError
from .morphology import dilate

# The released script dilates a scribble once with a 5x5 cross.
SCRIBBLE_DILATION = 5


def _as_mask(mask, height: int, width: int, what: str) -> Tensor:
    mask = torch.as_tensor(mask)
    if mask.ndim == 3 and mask.shape[0] == 1:
        mask = mask[0]
    if tuple(mask.shape) != (height, width):
        raise PromptError(f"{what} has shape {tuple(mask.shape)}, but the image is {height}x{width} (HxW)")
    return mask


@dataclass
class Prompt:
    kind = "prompt"

    def initial_mask(self, height: int, width: int) -> Tensor:
        """Bool [H, W]: the mask AMCP starts from."""
        raise NotImplementedError

    def region_box(self, height: int, width: int) -> tuple[float, float, float, float]:
        """The box the object is known to lie in; the valid region is this box scaled up."""
        return box_of(self.initial_mask(height, width))

    def points(self) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
        """(positive, negative) points for the point prior; none for most prompts."""
        return [], []


def box_of(mask: Tensor) -> tuple[float, float, float, float]:
    ys, xs = torch.nonzero(mask, as_tuple=True)
    if len(xs) == 0:
        raise PromptError("the mask is empty: there is no object to segment")
    return (xs.min().item(), ys.min().item(), xs.max().item() + 1, ys.max().item() + 1)


@dataclass
class BoxPrompt(Prompt):
    box: Sequence[float]
    kind = "box"

    def _checked(self, height: int, width: int) -> tuple[int, int, int, int]:
        if len(self.box) != 4:
            raise PromptError(f"box must be (x0, y0, x1, y1), got {self.box!r}")
        x0, y0, x1, y1 = (float(v) for v in self.box)
        if not (x1 > x0 and y1 > y0):
            raise PromptError(f"box {tuple(self.box)} is empty: need x1 > x0 and y1 > y0")
        if x0 < 0 or y0 < 0 or x1 > width or y1 > height:
            raise PromptError(f"box {tuple(self.box)} lies outside the {width}x{height} (WxH) image")
        return int(x0), int(y0), max(int(round(x1)), int(x0) + 1), max(int(round(y1)), int(y0) + 1)

    def initial_mask(self, height: int, width: int) -> Tensor:
        x0, y0, x1, y1 = self._checked(height, width)
        mask = torch.zeros(height, width, dtype=torch.bool)
        mask[y0:y1, x0:x1] = True
        return mask

    def region_box(self, height: int, width: int) -> tuple[float, float, float, float]:
        return self._checked(height, width)


@dataclass
class MaskPrompt(Prompt):
    """A coarse mask (e.g. from an unsupervised method), binarized at `threshold`."""

    mask: Tensor
    threshold: float = 0.5
    kind = "coarse_mask"  # the same name as the data side's prompt kind

    def initial_mask(self, height: int, width: int) -> Tensor:
        mask = _as_mask(self.mask, height, width, "coarse mask").float()
        if mask.max() > 1:
            mask = mask / 255.0
        binary = mask >= self.threshold
        if not binary.any():
            raise PromptError("the coarse mask is empty: there is no object to segment")
        return binary


@dataclass
class ScribblePrompt(Prompt):
    """A stroke drawn on the object (bool [H, W]); it is dilated once to start from."""

    scribble: Tensor
    kind = "scribble"

    def initial_mask(self, height: int, width: int) -> Tensor:
        stroke = _as_mask(self.scribble, height, width, "scribble").bool()
        if not stroke.any():
            raise PromptError("the scribble is empty")
        return dilate(stroke, SCRIBBLE_DILATION)


@dataclass
class PointsPrompt(Prompt):
    """Positive (on the object) and negative (off it) clicks, as (x, y) pixels, and optionally the
    ``previous`` prediction (bool [H, W]) they correct, as SAM's ``mask_input``: a click of an
    interactive session is answered from where the last one left the mask.

    AMCP starts from the cut the clicks seed (``points_start``, docs/algorithm.md "Where clicks
    start"), or as the reference from the whole image.
    """

    positive: Sequence[Sequence[float]] = field(default_factory=list)
    negative: Sequence[Sequence[float]] = field(default_factory=list)
    previous: Tensor | None = field(default=None, compare=False, repr=False)
    kind = "points"

    def _check(self, height: int, width: int) -> None:
        if not self.positive:
            raise PromptError("a points prompt needs at least one positive point")
        self._check_inside(height, width)
        self.previous_mask(height, width)  # one of another size is refused, naming it

    def _check_inside(self, height: int, width: int) -> None:
        for name, points in (("positive", self.positive), ("negative", self.negative)):
            for p in points:
                if len(p) != 2:
                    raise PromptError(f"{name} point {p!r} must be (x, y)")
                if not (0 <= p[0] < width and 0 <= p[1] < height):
                    raise PromptError(f"{name} point {tuple(p)} lies outside the {width}x{height} (WxH) image")

    def initial_mask(self, height: int, width: int) -> Tensor:
        self._check(height, width)
        return torch.ones(height, width, dtype=torch.bool)

    def region_box(self, height: int, width: int) -> tuple[float, float, float, float]:
        self._check(height, width)
        return (0, 0, width, height)

    def points(self):
        return [tuple(map(float, p)) for p in self.positive], [tuple(map(float, p)) for p in self.negative]

    def previous_mask(self, height: int, width: int) -> Tensor | None:
        """Bool [H, W]: the prediction these clicks correct, or None for a first click."""
        return None if self.previous is None else _as_mask(self.previous, height, width, "previous mask").bool()


@dataclass
class BoxClicksPrompt(PointsPrompt, BoxPrompt):
    """A box with clicks that correct it, as SAM takes them together: AMCP starts from the box
    and keeps within it (as for ``BoxPrompt``); the clicks are hard constraints, positive ones
    also pull the prior (as for ``PointsPrompt``). Either list of clicks may be empty.

    Fields in order: ``box``, ``positive``, ``negative``.
    """

    kind = "box"

    def initial_mask(self, height: int, width: int) -> Tensor:
        self._check_inside(height, width)
        return BoxPrompt.initial_mask(self, height, width)

    def region_box(self, height: int, width: int) -> tuple[float, float, float, float]:
        self._check_inside(height, width)
        return BoxPrompt.region_box(self, height, width)


def prompt_from(box=None, positive=(), negative=(), previous: Tensor | None = None) -> Prompt:
    """The prompt a box and clicks make: a box alone, clicks alone (at least one positive), or both.
    ``previous``, the last answer the clicks correct, goes with clicks alone (a box is its own start)."""
    positive, negative = [tuple(p) for p in positive], [tuple(p) for p in negative]
    if box is None:
        if not positive:
            raise PromptError("give a box or at least one positive click")
        return PointsPrompt(positive, negative, previous)
    return BoxClicksPrompt(tuple(box), positive, negative) if positive or negative else BoxPrompt(tuple(box))
