"""Every setting of the AMCP loop, with the released script's defaults where it has one."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ..errors import SettingsError


def out_of_range(settings, ranges: dict) -> list[str]:
    """``name=value (allowed: ...)`` for each setting whose value fails its test in ``ranges``
    (name -> (test, the allowed range in words))."""
    return [f"{name}={getattr(settings, name)!r} (allowed: {allowed})"
            for name, (ok, allowed) in ranges.items() if not ok(getattr(settings, name))]


@dataclass
class AMCPConfig:
    # Frame: the image is letterboxed into a square of this side before painting.
    frame_size: int = 512
    # Iterations alternate I-step (even) and O-step (odd); an odd count ends on an I-step.
    iterations: int = 5
    # Iterations for box prompts (None: ``iterations``; not in the reference), see refine_from_box.
    iterations_box: int | None = None
    # Painted samples per step; each sample gets its own jittered crop.
    num_samples: int = 5
    seed: int = 0

    # I-step: repaint the foreground dilated by this many 3x3-cross steps, pasting the rest back.
    inpaint_dilation: int = 4
    paste_back: bool = True
    # O-step: the foreground may grow only into a band this wide (a 2r+1 cross around it).
    outpaint_band: int = 7
    # What the O-step repaints: the band only (reference, for diffusion painters), or the whole
    # background, so that the band is painted from the foreground alone (better for weight-free painters).
    outpaint_region: Literal["band", "background"] = "band"

    # Crops around the current foreground box: half-extent scaled, plus a margin that keeps the
    # O-step band inside the crop, plus a random shift.
    crop_scale: float = 1.1
    crop_margin: int = 8
    crop_jitter: int = 4
    # Reuse original-crop features when two samples share a crop box (identical result).
    cache_original_features: bool = True

    # Cluster log-contrast instead of contrast (not in the reference). Colour features give
    # contrast spanning orders of magnitude across one object; on a log scale the split falls
    # between "unchanged" and "changed". The floor (times the mean) bounds the log near zero.
    log_contrast: bool = False
    log_contrast_floor: float = 1e-3

    # k-means on scalar contrast: more clusters early on, when the mask still holds much background.
    kmeans_clusters: int = 2
    kmeans_clusters_early: int = 3
    early_iterations_box: int = 1
    early_iterations_points: int = 3
    kmeans_steps: int = 30

    # Point prior: Gaussians of sigma = (crop_h + crop_w) / divisor, weight (start - decay * i).
    point_sigma_divisor: float = 5.0
    point_prior_weight: float = 0.2
    point_prior_decay: float = 0.04
    # Clicks as hard constraints (not in the reference, which has positive clicks only): discs of
    # this radius (fraction of the frame side) around positive clicks stay object, around
    # negative clicks background.
    click_radius: float = 0.02
    # Where AMCP starts for clicks: the whole image (reference), or a graph cut seeded by the
    # clicks (start.py; not in the reference): discs of click_radius sure, discs of start_reach
    # (fraction of the frame side) around positive clicks probable object, cut by start_iterations
    # of GrabCut in the frame. The valid region is then the start's box scaled by start_valid_scale.
    # The cut runs in a window, the positive clicks' box grown by start_window (fraction of the
    # frame side) on every side (None: the whole frame), so that the background's colour model is
    # the object's surroundings, not everything in the image that shares its colours.
    points_start: Literal["image", "clicks"] = "image"
    start_reach: float = 0.1
    start_window: float | None = 0.4
    start_iterations: int = 5
    start_valid_scale: float = 2.0
    # A points prompt that carries the previous prediction (PointsPrompt.previous, as the click
    # protocol and the app give it) starts its cut from that mask too, as probable object, so a
    # positive click grows the last answer instead of making a new one from the clicks alone
    # (after a negative click in it, the cut starts afresh: start.click_cut).
    points_previous: bool = False
    # Where the clicks' cut runs: in the painters' frame, or on the image at its own size (as the
    # refinement cuts, at most refine_work_size a side; as the seeded-cut baseline does).
    start_on: Literal["frame", "image"] = "frame"

    # Mask update: votes averaged over samples, thresholded, kept inside the prompt's box scaled
    # by valid_region_scale, then opened and closed with a cross of this size.
    vote_threshold: float = 0.5
    valid_region_scale: float = 1.25
    morphology_kernel: int = 5

    # Refinement, the reference's dense CRF as a graph cut (refine.py): the last mask update is
    # re-cut along the image's edges by this many GrabCut iterations (0: off), in a window around
    # the valid region, its box grown by refine_context of its size, the window's longer side cut
    # at most at refine_work_size pixels (None: the image's resolution). A cut that keeps less
    # than refine_min_kept of the mask has collapsed and is not taken.
    refine_iterations: int = 5  # as the classical GrabCut's (baselines.GRABCUT_ITERATIONS)
    refine_context: float = 1.0
    refine_work_size: int | None = None
    refine_min_kept: float = 0.25
    # Box prompts (not in the reference): the refinement also cuts from the box itself, the
    # classical GrabCut's start, and keeps whichever of the two cuts ends at the lower GrabCut
    # energy, so that an object AMCP's steps lost part of is judged by the image, not by them.
    # Two cuts cost twice one; a box prompt may then run fewer AMCP iterations (iterations_box)
    # and GrabCut iterations (refine_iterations_box; None: refine_iterations): docs/algorithm.md.
    refine_from_box: bool = False
    refine_iterations_box: int | None = None

    def iterations_for(self, prompt_kind: str) -> int:
        """How many AMCP iterations a prompt of ``prompt_kind`` runs."""
        if prompt_kind == "box" and self.iterations_box is not None:
            return self.iterations_box
        return self.iterations

    def refine_iterations_for(self, prompt_kind: str) -> int:
        """How many GrabCut iterations refine the last update of a prompt of ``prompt_kind``."""
        if prompt_kind == "box" and self.refine_iterations_box is not None:
            return self.refine_iterations_box
        return self.refine_iterations

    def __post_init__(self) -> None:
        errors = out_of_range(self, self._ranges())
        if errors:
            raise SettingsError("AMCPConfig: " + "; ".join(errors))

    @staticmethod
    def _ranges() -> dict:
        """Each checked setting: (test, the allowed range in words)."""
        at_least = lambda low: (lambda v: v >= low, f">= {low}")  # noqa: E731
        return {
            "frame_size": at_least(32),
            "iterations": at_least(0),
            "iterations_box": (lambda v: v is None or v >= 0, ">= 0, or None for iterations"),
            "num_samples": at_least(1),
            "inpaint_dilation": at_least(0),
            "outpaint_band": at_least(0),
            "outpaint_region": (lambda v: v in ("band", "background"), "'band' or 'background'"),
            "crop_scale": (lambda v: v > 0, "> 0"),
            "crop_margin": at_least(0),
            "crop_jitter": at_least(0),
            "log_contrast_floor": (lambda v: v > 0, "> 0"),
            "kmeans_clusters": at_least(2),
            "kmeans_clusters_early": at_least(2),
            "early_iterations_box": at_least(0),
            "early_iterations_points": at_least(0),
            "kmeans_steps": at_least(1),
            "point_sigma_divisor": (lambda v: v > 0, "> 0"),
            "point_prior_weight": at_least(0),
            "point_prior_decay": at_least(0),
            "click_radius": (lambda v: 0.0 <= v < 0.5, "[0, 0.5)"),
            "points_start": (lambda v: v in ("image", "clicks"), "'image' or 'clicks'"),
            "start_reach": (lambda v: 0.0 <= v <= 1.0, "[0, 1]"),
            "start_window": (lambda v: v is None or v > 0, "> 0, or None for the whole frame"),
            "start_iterations": at_least(1),
            "start_valid_scale": at_least(1.0),
            "start_on": (lambda v: v in ("frame", "image"), "'frame' or 'image'"),
            "vote_threshold": (lambda v: 0.0 < v <= 1.0, "(0, 1]"),
            "valid_region_scale": at_least(1.0),
            "morphology_kernel": (lambda v: v >= 1 and v % 2 == 1, "a positive odd number"),
            "refine_iterations": at_least(0),
            "refine_iterations_box": (lambda v: v is None or v >= 0, ">= 0, or None for refine_iterations"),
            "refine_context": at_least(0.0),
            "refine_work_size": (lambda v: v is None or v >= 16, ">= 16, or None for the image's resolution"),
            "refine_min_kept": (lambda v: 0.0 <= v < 1.0, "[0, 1)"),
        }
