"""The LightningModule: AMCP as ``predict_step``. Thin by design; the algorithm is in amcp.py."""
from __future__ import annotations

import time

import lightning as L

from .amcp import segment
from .config import AMCPConfig
from .features import ColorTextureFeatures, FeatureExtractor
from .metrics import mask_iou
from .painters import OpenCVPainter, Painter


class PaintSegModule(L.LightningModule):
    """Segments each image of a predict batch with AMCP.

    A batch is a list of items (``image`` [3, H, W] in [0, 1], ``prompt``, optional ``gt`` and
    ``ignore`` masks, ``name``, ``dataset``); ``predict_step`` returns one record per item with
    the mask, the IoU of the mask and of the raw prompt, and per-iteration timings.
    Painter and features default to the weight-free components.
    """

    def __init__(self, painter: Painter | None = None, features: FeatureExtractor | None = None,
                 amcp: AMCPConfig | None = None):
        super().__init__()
        self.painter = painter if painter is not None else OpenCVPainter()
        self.features = features if features is not None else ColorTextureFeatures()
        self.amcp = amcp if amcp is not None else AMCPConfig()

    def predict_step(self, batch: list[dict], batch_idx: int, dataloader_idx: int = 0) -> list[dict]:
        records = []
        for item in batch:
            start = time.perf_counter()
            result = segment(item["image"].to(self.device), item["prompt"], self.painter, self.features, self.amcp)
            mask, prompt_mask = result.mask.cpu(), result.prompt_mask.cpu()
            gt, ignore = item.get("gt"), item.get("ignore")
            records.append({
                "name": item["name"],
                "dataset": item["dataset"],
                "mask": mask,
                "prompt_mask": prompt_mask,
                "iou": None if gt is None else mask_iou(mask, gt, ignore),
                "prompt_iou": None if gt is None else mask_iou(prompt_mask, gt, ignore),
                "timings": result.timings,
                "seconds": time.perf_counter() - start,
            })
        return records
