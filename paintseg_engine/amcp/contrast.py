"""Contrast: where painted crops differ from the original in feature space, split by k-means.

Each step cuts one jittered crop per painted sample around the current object, measures the
squared feature distance between painted and original crop, clusters the contrast values of
all crops together, lets each crop vote and averages the votes in the frame.
"""
from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from ..features import FeatureExtractor
from .config import AMCPConfig
from .frame import Point

Box = tuple[int, int, int, int]  # (x0, y0, x1, y1), end exclusive, as prompts' boxes

# Values k-means fits its centres on (subsampled evenly beyond this).
KMEANS_MAX_FIT = 20_000


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
        boxes.append((x0, y0, x0 + w, y0 + h))
    return boxes


def crop(images: Tensor, box: Box) -> Tensor:
    x0, y0, x1, y1 = box
    return images[..., y0:y1, x0:x1]


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


def contrast_map(painted_features: Tensor, original_features: Tensor, size: tuple[int, int]) -> Tensor:
    """Squared feature distance between painted and original crops, upsampled to the crops' size."""
    distance = (painted_features.float() - original_features.float()).pow(2).sum(1, keepdim=True)
    if distance.shape[-2:] != size:
        distance = F.interpolate(distance, size, mode="bilinear", align_corners=False)
    return distance[:, 0]


def point_prior(boxes: list[Box], points: list[Point], divisor: float, device: torch.device | None = None) -> Tensor:
    """Sum of Gaussians around frame points, evaluated on each crop: [N, h, w] in [0, 1]."""
    x0, y0, x1, y1 = boxes[0]
    h, w = y1 - y0, x1 - x0
    sigma = (h + w) / divisor
    offsets = torch.tensor([(b[1], b[0]) for b in boxes], dtype=torch.float32, device=device)
    yy = torch.arange(h, device=device, dtype=torch.float32)[None, :, None] + offsets[:, 0, None, None]
    xx = torch.arange(w, device=device, dtype=torch.float32)[None, None, :] + offsets[:, 1, None, None]
    prior = torch.zeros(len(boxes), h, w, device=device, dtype=torch.float32)
    for px, py in points:
        prior += torch.exp(-((xx - px) ** 2 + (yy - py) ** 2) / (2 * sigma**2))
    return prior / prior.amax().clamp_min(1e-12)


def log_contrast(contrast: Tensor, floor: float) -> Tensor:
    """Contrast on a log scale, floored at ``floor`` times its mean: k-means then splits
    "unchanged" from "changed" rather than "changed a little" from "changed a lot"."""
    return torch.log(contrast + floor * contrast.mean().clamp_min(1e-12))


def kmeans_1d(values: Tensor, k: int, steps: int, max_fit: int = KMEANS_MAX_FIT) -> tuple[Tensor, Tensor]:
    """k-means on scalars: (sorted centres, labels).

    Centres start at evenly spaced quantiles and are fitted on an evenly strided subsample of at
    most ``max_fit`` values (centres of scalars converge long before that); labels follow from
    the midpoints between sorted centres. The subsample is sorted once, so each Lloyd step is a
    binary search for the midpoints and differences of prefix sums (in float64), not a pass over
    every value.
    """
    sample = values[:: max(1, values.numel() // max_fit)].float().sort().values
    last = sample.numel() - 1
    # The starting quantiles, interpolated as torch.quantile does (without sorting again).
    position = (torch.arange(k, device=values.device, dtype=torch.float32) + 0.5) / k * last
    below, above = position.floor().long(), position.ceil().long()
    centres = torch.lerp(sample[below], sample[above], position - below)
    prefix = torch.cat([sample.new_zeros(1, dtype=torch.float64), sample.double().cumsum(0)])
    for _ in range(steps):
        # Cluster i holds the sample values in (midpoint i-1, midpoint i], as bucketize assigns them.
        cuts = torch.searchsorted(sample, (centres[1:] + centres[:-1]) / 2, right=True)
        edges = torch.cat([cuts.new_zeros(1), cuts, cuts.new_full((1,), last + 1)])
        counts = edges[1:] - edges[:-1]
        means = ((prefix[edges[1:]] - prefix[edges[:-1]]) / counts.clamp_min(1)).float()
        updated = torch.where(counts > 0, means, centres).sort().values
        if torch.equal(updated, centres):
            break
        centres = updated
    return centres, torch.bucketize(values, (centres[1:] + centres[:-1]) / 2)


def cluster_votes(contrast: Tensor, clusters: int, pick: Literal["highest", "lowest"], steps: int) -> Tensor:
    """Bool [N, h, w]: pixels of all crops in the highest (or lowest) contrast cluster."""
    _, labels = kmeans_1d(contrast.flatten(), clusters, steps)
    chosen = clusters - 1 if pick == "highest" else 0
    return (labels == chosen).reshape(contrast.shape)


def average_votes(votes: Tensor, boxes: list[Box], size: int) -> Tensor:
    """Average the crops' binary votes in the frame; a pixel outside a crop votes 0 there."""
    total = torch.zeros(size, size, device=votes.device, dtype=torch.float32)
    for vote, (x0, y0, x1, y1) in zip(votes, boxes):
        total[y0:y1, x0:x1] += vote.float()
    return total / len(boxes)
