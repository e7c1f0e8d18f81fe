"""COCO results and mask AP, with pycocotools as it is (no AP re-derived here).

``result_entry`` turns one mask into a results-file entry (RLE of the Fortran-ordered uint8 mask,
as ``pycocotools.mask.encode`` wants); ``average_precision`` scores entries against the ground truth with
COCOeval, restricted to the images and categories that were run.
"""
from __future__ import annotations

import contextlib
import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from torch import Tensor

from .data.coco import CROWD, require_pycocotools, decode_segmentation, encode_mask

IOU_TYPES = ("segm", "bbox")


def box_to_xywh(box) -> list[float]:
    x0, y0, x1, y1 = (float(v) for v in box)
    return [x0, y0, x1 - x0, y1 - y0]


def result_entry(image_id: int, category_id: int, mask: Tensor | np.ndarray, score: float) -> dict:
    """One entry of a COCO segmentation results file; ``COCO.loadRes`` reads a list of them."""
    return {"image_id": int(image_id), "category_id": int(category_id), "segmentation": encode_mask(mask),
            "score": float(score)}


@dataclass(frozen=True)
class AveragePrecision:
    """COCOeval's AP over IoU 0.50:0.95, at 0.50 and at 0.75, as fractions in [0, 1]."""

    ap: float
    ap50: float
    ap75: float


def _complete(data: dict) -> dict:
    """COCOeval needs ``iscrowd`` and ``area`` on every annotation; minimal files may omit them."""
    images = {image["id"]: image for image in data["images"]}
    for ann in data["annotations"]:
        ann.setdefault(CROWD, 0)
        if "area" not in ann:
            image = images[ann["image_id"]]
            ann["area"] = float(decode_segmentation(ann["segmentation"], image["height"], image["width"]).sum())
    return data


def _quietly(function, *args):
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its progress
        return function(*args)


def average_precision(annotations: str | Path, results: list[dict], image_ids: list[int],
                      category_ids: list[int] | None = None, iou_type: str = "segm") -> AveragePrecision:
    """COCOeval of ``results`` (segm: RLE entries; bbox: ``bbox`` [x, y, w, h] entries) on
    ``image_ids``. No result at all scores 0; -1 (COCO's "no ground truth") reads as 0."""
    if iou_type not in IOU_TYPES:
        raise ValueError(f"iou_type must be one of {IOU_TYPES}, got {iou_type!r}")
    require_pycocotools()
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    if not results or not image_ids:
        return AveragePrecision(0.0, 0.0, 0.0)
    ground_truth = COCO()
    ground_truth.dataset = _complete(json.loads(Path(annotations).read_text()))
    _quietly(ground_truth.createIndex)
    detections = _quietly(ground_truth.loadRes, [dict(entry) for entry in results])  # loadRes adds keys
    evaluation = COCOeval(ground_truth, detections, iou_type)
    evaluation.params.imgIds = sorted(image_ids)
    if category_ids:
        evaluation.params.catIds = sorted(category_ids)
    for step in (evaluation.evaluate, evaluation.accumulate, evaluation.summarize):
        _quietly(step)
    ap, ap50, ap75 = (max(0.0, float(v)) for v in evaluation.stats[:3])
    return AveragePrecision(ap, ap50, ap75)
