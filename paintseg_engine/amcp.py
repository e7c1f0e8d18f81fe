"""Adversarial Masked Contrastive Painting (AMCP), the algorithm of PaintSeg.

Pure tensor functions, independent of Lightning and of any model: a ``Painter``
fills masked pixels, a ``FeatureExtractor`` gives the space contrast is measured in.

    mask = prompt's initial mask
    for i in range(iterations):
        I-step (i even): repaint the (dilated) foreground from the background; where the
                         painting differs from the original is foreground -> the mask shrinks.
        O-step (i odd):  repaint the background around the object from the foreground; band
                         pixels that come back unchanged are missed foreground -> the mask grows.

Each step: paint N samples, cut one jittered crop per sample around the current object,
measure contrast (squared feature distance, painted vs original), split the contrast values
of all crops with k-means, let each crop vote, average the votes, constrain, clean up.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from .config import AMCPConfig
from .features import FeatureExtractor
from .morphology import closing, dilate, opening
from .painters import Painter
from .prompts import Prompt

Box = tuple[int, int, int, int]  # (y0, x0, y1, x1), end exclusive

# Values k-means fits its centres on (torch.quantile also caps its input near 16M).
KMEANS_MAX_FIT = 200_000


# --- The frame: a square letterbox the painters work in --------------------------------------


@dataclass
class Letterbox:
    """Maps an H x W image into a size x size frame (aspect kept, centred) and back."""

    height: int
    width: int
    size: int

    def __post_init__(self) -> None:
        self.scale = self.size / max(self.height, self.width)
        self.inner_h = max(1, round(self.height * self.scale))
        self.inner_w = max(1, round(self.width * self.scale))
        self.top = (self.size - self.inner_h) // 2
        self.left = (self.size - self.inner_w) // 2

    def image_to_frame(self, image: Tensor) -> Tensor:
        inner = F.interpolate(image[None], (self.inner_h, self.inner_w), mode="bicubic", antialias=True,
                              align_corners=False).clamp(0, 1)
        # Replicated edges give painters plausible context; the content mask keeps the object out.
        pad = (self.left, self.size - self.inner_w - self.left, self.top, self.size - self.inner_h - self.top)
        return F.pad(inner, pad, mode="replicate")[0]

    def mask_to_frame(self, mask: Tensor) -> Tensor:
        inner = F.interpolate(mask[None, None].float(), (self.inner_h, self.inner_w), mode="nearest")
        frame = torch.zeros(self.size, self.size, dtype=torch.bool, device=mask.device)
        frame[self.top:self.top + self.inner_h, self.left:self.left + self.inner_w] = inner[0, 0] > 0.5
        return frame

    def mask_from_frame(self, frame_mask: Tensor) -> Tensor:
        inner = frame_mask[self.top:self.top + self.inner_h, self.left:self.left + self.inner_w]
        resized = F.interpolate(inner[None, None].float(), (self.height, self.width), mode="bilinear",
                                align_corners=False)
        return resized[0, 0] > 0.5

    def content(self, device: torch.device | None = None) -> Tensor:
        frame = torch.zeros(self.size, self.size, dtype=torch.bool, device=device)
        frame[self.top:self.top + self.inner_h, self.left:self.left + self.inner_w] = True
        return frame

    def point_to_frame(self, x: float, y: float) -> tuple[float, float]:
        return x * self.scale + self.left, y * self.scale + self.top


# --- Step parts ----------------------------------------------------------------------------


def valid_region(box: tuple[float, float, float, float], scale: float, letterbox: Letterbox,
                 device: torch.device | None = None) -> Tensor:
    """The prompt's box scaled about its centre, in frame pixels: the object may not leave it."""
    x0, y0, x1, y1 = box
    cx, cy, hw, hh = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) * scale / 2, (y1 - y0) * scale / 2
    fx0, fy0 = letterbox.point_to_frame(cx - hw, cy - hh)
    fx1, fy1 = letterbox.point_to_frame(cx + hw, cy + hh)
    region = torch.zeros(letterbox.size, letterbox.size, dtype=torch.bool, device=device)
    region[max(0, math.floor(fy0)):math.ceil(fy1), max(0, math.floor(fx0)):math.ceil(fx1)] = True
    return region & letterbox.content(device)


def crop_boxes(foreground: Tensor, num: int, config: AMCPConfig, generator: torch.Generator) -> list[Box]:
    """One crop per sample around the foreground's box, all the same size, randomly shifted."""
    size = foreground.shape[-1]
    ys, xs = torch.nonzero(foreground, as_tuple=True)
    cy, cx = (ys.min() + ys.max() + 1).item() / 2, (xs.min() + xs.max() + 1).item() / 2
    half_h = min(size / 2, (ys.max() - ys.min() + 1).item() / 2 * config.crop_scale + config.crop_margin)
    half_w = min(size / 2, (xs.max() - xs.min() + 1).item() / 2 * config.crop_scale + config.crop_margin)
    h, w = max(2, round(2 * half_h)), max(2, round(2 * half_w))
    shifts = torch.randint(-config.crop_jitter, config.crop_jitter + 1, (num, 2), generator=generator)
    boxes = []
    for dy, dx in shifts.tolist():
        # Shift inwards at the frame border so every crop keeps the same size.
        y0 = min(max(0, round(cy - h / 2) + dy), size - h)
        x0 = min(max(0, round(cx - w / 2) + dx), size - w)
        boxes.append((y0, x0, y0 + h, x0 + w))
    return boxes


def crop(images: Tensor, box: Box) -> Tensor:
    y0, x0, y1, x1 = box
    return images[..., y0:y1, x0:x1]


def contrast_map(painted_features: Tensor, original_features: Tensor, size: tuple[int, int]) -> Tensor:
    """Squared feature distance between painted and original crops, upsampled to the crops' size."""
    distance = (painted_features.float() - original_features.float()).pow(2).sum(1, keepdim=True)
    if distance.shape[-2:] != size:
        distance = F.interpolate(distance, size, mode="bilinear", align_corners=False)
    return distance[:, 0]


def crop_features(features: FeatureExtractor, frame: Tensor, painted: Tensor, boxes: list[Box],
                  reuse_original: bool) -> tuple[Tensor, Tensor]:
    """Features of each painted crop and of the matching original crop, in one extractor call.

    With ``reuse_original`` an original crop shared by several samples is featurised once.
    """
    painted_crops = torch.stack([crop(painted[i], b) for i, b in enumerate(boxes)])
    originals = list(dict.fromkeys(boxes)) if reuse_original else boxes
    original_crops = torch.stack([crop(frame, b) for b in originals])
    out = features(torch.cat([painted_crops, original_crops]))
    painted_f, original_f = out[: len(boxes)], out[len(boxes):]
    index = [originals.index(b) for b in boxes] if reuse_original else list(range(len(boxes)))
    return painted_f, original_f[index]


def point_prior(boxes: list[Box], points: list[tuple[float, float]], divisor: float,
                device: torch.device | None = None) -> Tensor:
    """Sum of Gaussians around frame points, evaluated on each crop: [N, h, w] in [0, 1]."""
    y0, x0, y1, x1 = boxes[0]
    h, w = y1 - y0, x1 - x0
    sigma = (h + w) / divisor
    offsets = torch.tensor([(b[0], b[1]) for b in boxes], dtype=torch.float32, device=device)
    yy = torch.arange(h, device=device, dtype=torch.float32)[None, :, None] + offsets[:, 0, None, None]
    xx = torch.arange(w, device=device, dtype=torch.float32)[None, None, :] + offsets[:, 1, None, None]
    prior = torch.zeros(len(boxes), h, w, device=device)
    for px, py in points:
        prior += torch.exp(-((xx - px) ** 2 + (yy - py) ** 2) / (2 * sigma**2))
    return prior / prior.amax().clamp_min(1e-12)


def click_discs(points: list[tuple[float, float]], radius: float, size: int,
                device: torch.device | None = None) -> Tensor:
    """[S, S] bool: the pixels within ``radius`` of any of the frame points."""
    yy = torch.arange(size, device=device, dtype=torch.float32)[:, None]
    xx = torch.arange(size, device=device, dtype=torch.float32)[None, :]
    discs = torch.zeros(size, size, dtype=torch.bool, device=device)
    for px, py in points:
        discs |= (xx - px) ** 2 + (yy - py) ** 2 <= radius**2
    return discs


def kmeans_1d(values: Tensor, k: int, steps: int, max_fit: int = KMEANS_MAX_FIT) -> tuple[Tensor, Tensor]:
    """k-means on scalars: (sorted centres, labels).

    Centres start at evenly spaced quantiles and are fitted on an evenly strided subsample of at
    most ``max_fit`` values (centres of scalars converge long before that); labels follow from
    the midpoints between sorted centres.
    """
    sample = values[:: max(1, values.numel() // max_fit)].float().contiguous()
    centres = torch.quantile(sample, (torch.arange(k, device=values.device, dtype=torch.float32) + 0.5) / k)
    for _ in range(steps):
        labels = torch.bucketize(sample, (centres[1:] + centres[:-1]) / 2)
        sums = torch.zeros(k, device=values.device).index_add_(0, labels, sample)
        counts = torch.bincount(labels, minlength=k).float()
        updated = torch.where(counts > 0, sums / counts.clamp_min(1), centres).sort().values
        if torch.equal(updated, centres):
            break
        centres = updated
    return centres, torch.bucketize(values, (centres[1:] + centres[:-1]) / 2)


def log_contrast(contrast: Tensor, floor: float) -> Tensor:
    """Contrast on a log scale, floored at ``floor`` times its mean: k-means then splits
    "unchanged" from "changed" rather than "changed a little" from "changed a lot"."""
    return torch.log(contrast + floor * contrast.mean().clamp_min(1e-12))


def cluster_votes(contrast: Tensor, clusters: int, pick: Literal["highest", "lowest"], steps: int) -> Tensor:
    """Bool [N, h, w]: pixels of all crops in the highest (or lowest) contrast cluster."""
    _, labels = kmeans_1d(contrast.flatten(), clusters, steps)
    chosen = clusters - 1 if pick == "highest" else 0
    return (labels == chosen).reshape(contrast.shape)


def average_votes(votes: Tensor, boxes: list[Box], size: int) -> Tensor:
    """Average the crops' binary votes in the frame; a pixel outside a crop votes 0 there."""
    total = torch.zeros(size, size, device=votes.device)
    for vote, (y0, x0, y1, x1) in zip(votes, boxes):
        total[y0:y1, x0:x1] += vote.float()
    return total / len(boxes)


# --- The two steps -----------------------------------------------------------------------------


@dataclass
class AMCPState:
    """What every step of one image needs: the frame, constraints and components."""

    frame: Tensor  # [3, S, S] in [0, 1]
    valid: Tensor  # [S, S] bool: where the object may be (negative clicks carved out)
    positive: list[tuple[float, float]]  # frame coordinates
    prompt_kind: str
    painter: Painter
    features: FeatureExtractor
    config: AMCPConfig
    generator: torch.Generator


def clusters_at(iteration: int, prompt_kind: str, config: AMCPConfig) -> int:
    early = {"box": config.early_iterations_box, "points": config.early_iterations_points}.get(prompt_kind, 0)
    return config.kmeans_clusters_early if iteration < early else config.kmeans_clusters


def contrast_votes(state: AMCPState, painted: Tensor, foreground: Tensor, iteration: int,
                   pick: Literal["highest", "lowest"], timing: dict) -> Tensor:
    """Vote fraction per frame pixel that it belongs to the picked contrast cluster."""
    cfg = state.config
    boxes = crop_boxes(foreground, len(painted), cfg, state.generator)
    start = time.perf_counter()
    painted_f, original_f = crop_features(state.features, state.frame, painted, boxes, cfg.cache_original_features)
    y0, x0, y1, x1 = boxes[0]
    contrast = contrast_map(painted_f, original_f, (y1 - y0, x1 - x0))
    timing["features"] = _synced_elapsed(start, contrast)

    weight = max(0.0, cfg.point_prior_weight - cfg.point_prior_decay * iteration)
    if weight > 0 and state.positive:
        # The prior pulls toward positive clicks: added where the step keeps high contrast
        # (I-step), subtracted where it keeps low contrast (O-step).
        sign = 1.0 if pick == "highest" else -1.0
        span = contrast.amax() - contrast.amin()
        prior = point_prior(boxes, state.positive, cfg.point_sigma_divisor, contrast.device)
        contrast = contrast + sign * weight * span * prior
    if cfg.log_contrast:
        contrast = log_contrast(contrast, cfg.log_contrast_floor)
    votes = cluster_votes(contrast, clusters_at(iteration, state.prompt_kind, cfg), pick, cfg.kmeans_steps)
    return average_votes(votes, boxes, foreground.shape[-1])


def clean(mask: Tensor, size: int) -> Tensor:
    return closing(opening(mask, size), size)


def inpaint_step(state: AMCPState, foreground: Tensor, iteration: int, timing: dict) -> Tensor:
    """I-step: paint the foreground away; what the painting changes stays foreground. Only shrinks."""
    cfg = state.config
    region = dilate(foreground, 3, cfg.inpaint_dilation)
    start = time.perf_counter()
    painted = state.painter.paint(region, cfg.num_samples, state.generator).to(state.frame)
    if cfg.paste_back:
        painted = torch.where(region, painted, state.frame)
    timing["paint"] = _synced_elapsed(start, painted)
    votes = contrast_votes(state, painted, foreground, iteration, "highest", timing)
    kept = (votes >= cfg.vote_threshold) & foreground & state.valid
    kept = clean(kept, cfg.morphology_kernel) & foreground
    # A step that erases the whole object has failed; the mask it started from is the better answer.
    return kept if kept.any() else foreground


def outpaint_step(state: AMCPState, foreground: Tensor, iteration: int, timing: dict) -> Tensor:
    """O-step: paint the background back from the foreground; band pixels that come back
    unchanged are foreground that was missed. Only grows."""
    cfg = state.config
    background = ~foreground
    if state.prompt_kind == "points":
        grow_zone = background  # the reference repaints the whole background for clicks
    else:
        grow_zone = dilate(foreground, 2 * cfg.outpaint_band + 1) & background
    region = background if cfg.outpaint_region == "background" else grow_zone
    start = time.perf_counter()
    painted = state.painter.paint(region, cfg.num_samples, state.generator).to(state.frame)
    timing["paint"] = _synced_elapsed(start, painted)
    votes = contrast_votes(state, painted, foreground, iteration, "lowest", timing)
    grown = foreground | ((votes >= cfg.vote_threshold) & grow_zone & state.valid)
    grown = clean(grown, cfg.morphology_kernel) | foreground
    return grown


# --- The loop ----------------------------------------------------------------------------------


@dataclass
class AMCPResult:
    mask: Tensor  # bool [H, W], the input image's size
    prompt_mask: Tensor  # bool [H, W], the mask AMCP started from
    timings: list[dict] = field(default_factory=list)  # one per iteration
    frame_masks: list[Tensor] = field(default_factory=list)  # the mask after each iteration, frame size


def segment(image: Tensor, prompt: Prompt, painter: Painter, features: FeatureExtractor,
            config: AMCPConfig | None = None) -> AMCPResult:
    """Segment the object the prompt points at in ``image`` ([3, H, W], float in [0, 1])."""
    config = config or AMCPConfig()
    if image.ndim != 3 or image.shape[0] != 3:
        raise ValueError(f"image must be [3, H, W], got shape {tuple(image.shape)}")
    height, width = image.shape[-2:]
    prompt_mask = prompt.initial_mask(height, width).to(image.device)
    letterbox = Letterbox(height, width, config.frame_size)
    frame = letterbox.image_to_frame(image.float())
    content = letterbox.content(image.device)
    positive, negative = [[letterbox.point_to_frame(*p) for p in points] for points in prompt.points()]
    # Clicks are hard constraints: a disc around each positive click is object, around each
    # negative click background. (A negative prior, as broad as the positive one, cancels it.)
    radius = config.click_radius * config.frame_size
    seeds = click_discs(positive, radius, config.frame_size, image.device) & content
    blocked = click_discs(negative, radius, config.frame_size, image.device)
    valid = valid_region(prompt.region_box(height, width), config.valid_region_scale, letterbox, image.device)
    state = AMCPState(frame=frame, valid=valid & ~blocked, positive=positive, prompt_kind=prompt.kind,
                      painter=painter, features=features, config=config,
                      generator=torch.Generator().manual_seed(config.seed))
    foreground = (letterbox.mask_to_frame(prompt_mask) & content & ~blocked) | seeds
    if not foreground.any():
        raise ValueError(f"the {prompt.kind} prompt covers no pixel of the frame (image {height}x{width})")

    painter.set_image(frame)
    result = AMCPResult(mask=prompt_mask, prompt_mask=prompt_mask)
    for iteration in range(config.iterations):
        step = inpaint_step if iteration % 2 == 0 else outpaint_step
        timing: dict = {"iteration": iteration, "step": "inpaint" if step is inpaint_step else "outpaint"}
        start = time.perf_counter()
        # The steps keep within valid (no negative click); seeds keep the positive clicks in.
        foreground = (step(state, foreground, iteration, timing) & content) | seeds
        timing["seconds"] = _synced_elapsed(start, foreground)
        # Clustering, votes and mask update: whatever painting and features did not take.
        timing["update"] = timing["seconds"] - timing["paint"] - timing["features"]
        result.timings.append(timing)
        result.frame_masks.append(foreground)
    result.mask = letterbox.mask_from_frame(foreground) if config.iterations else prompt_mask
    return result


def _synced_elapsed(start: float, result: Tensor) -> float:
    """Seconds since ``start``, after the device has finished computing ``result``."""
    if result.is_cuda:
        torch.cuda.synchronize(result.device)
    return time.perf_counter() - start
