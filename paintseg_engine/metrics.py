"""Segmentation metrics, on torchmetrics."""
from __future__ import annotations

import torch
from torch import Tensor
from torchmetrics.functional.classification import binary_jaccard_index

IGNORE = -1


def mask_iou(pred: Tensor, gt: Tensor, ignore: Tensor | None = None) -> float:
    """IoU of two bool masks [H, W]; pixels where ``ignore`` is True do not count."""
    target = gt.long()
    if ignore is not None:
        target = torch.where(ignore, torch.full_like(target, IGNORE), target)
    return binary_jaccard_index(pred.long(), target, ignore_index=IGNORE, zero_division=1.0).item()
