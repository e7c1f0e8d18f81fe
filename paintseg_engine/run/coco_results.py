"""The end of a run on a COCO dataset: ``coco_results.json`` and the mask AP columns of its row.

From the dataset's records (each a COCO instance with its mask as RLE) and its ``coco_scope.json``
(the annotations, images and categories of the run): the masks as COCO results, scored by
COCOeval ``segm``; the prompts' own regions (a box prompt: the filled rectangle) scored the same
way, and their boxes by COCOeval ``bbox``, for reference.
"""
from __future__ import annotations

import json

from ..coco_eval import AveragePrecision, average_precision
from ..imageio import write_json_atomic
from .folder import RunFolder
from .records import PredictionRecord

AP_COLUMNS = ("mask_ap", "mask_ap50", "mask_ap75", "prompt_mask_ap", "prompt_mask_ap50", "prompt_mask_ap75",
              "prompt_box_ap")
DECIMALS = 4


def results_of(records: list[PredictionRecord], region: str = "segmentation") -> list[dict]:
    """COCO results entries of the records' masks (``region`` segmentation), their prompts' regions
    (prompt_segmentation) or their prompts' boxes (prompt_bbox)."""
    key = {"segmentation": "segmentation", "prompt_segmentation": "segmentation", "prompt_bbox": "bbox"}[region]
    return [{"image_id": r.coco["image_id"], "category_id": r.coco["category_id"], key: r.coco[region],
             "score": r.coco["score"]} for r in records]


def _columns(prefix: str, ap: AveragePrecision) -> dict:
    return {f"{prefix}_ap": round(ap.ap, DECIMALS), f"{prefix}_ap50": round(ap.ap50, DECIMALS),
            f"{prefix}_ap75": round(ap.ap75, DECIMALS)}


def mask_ap_columns(run: RunFolder, dataset: str, records: list[PredictionRecord], write_results: bool = False
                    ) -> dict:
    """The AP columns of ``dataset``'s row ({} when it is not a COCO dataset); with ``write_results``
    also its ``coco_results.json``, atomically."""
    path = run.coco_scope_path(dataset)
    if not path.is_file():
        return {}
    scope = json.loads(path.read_text())
    records = [r for r in records if r.dataset == dataset and r.coco is not None]
    masks = results_of(records)
    if write_results:
        write_json_atomic(run.coco_results_path(dataset), masks)

    def ap(results: list[dict], iou_type: str = "segm") -> AveragePrecision:
        return average_precision(scope["annotations"], results, scope["image_ids"], scope["category_ids"], iou_type)

    return {**_columns("mask", ap(masks)), **_columns("prompt_mask", ap(results_of(records, "prompt_segmentation"))),
            "prompt_box_ap": round(ap(results_of(records, "prompt_bbox"), "bbox").ap, DECIMALS)}
