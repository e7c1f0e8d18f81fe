"""Segmentation metrics, on torchmetrics."""
from __future__ import annotations

import torch
from torch import Tensor
from torchmetrics.functional.classification import binary_fbeta_score, binary_jaccard_index

IGNORE = -1
# Salient-object benchmarks weigh precision over recall with beta^2 = 0.3 (Achanta et al., 2009).
FBETA_BETA = 0.3 ** 0.5


def _target(gt: Tensor, ignore: Tensor | None) -> Tensor:
    target = gt.long()
    if ignore is not None:
        target = torch.where(ignore, torch.full_like(target, IGNORE), target)
    return target


def mask_iou(pred: Tensor, gt: Tensor, ignore: Tensor | None = None) -> float:
    """IoU of two bool masks [H, W]; pixels where ``ignore`` is True do not count."""
    return binary_jaccard_index(pred.long(), _target(gt, ignore), ignore_index=IGNORE, zero_division=1.0).item()


def mask_fbeta(pred: Tensor, gt: Tensor, ignore: Tensor | None = None, beta: float = FBETA_BETA) -> float:
    """F-beta of a bool mask. Max F-beta takes the best threshold of a soft map; a binary mask
    has a single non-trivial threshold, so its max F-beta is this value."""
    return binary_fbeta_score(pred.long(), _target(gt, ignore), beta=beta, ignore_index=IGNORE,
                              zero_division=1.0).item()
