"""The LightningModule: AMCP (or the GrabCut baseline) as ``predict_step``. Thin by design; the
algorithm is in the amcp package, the click protocol in clicks.py."""
from __future__ import annotations

import time
from typing import Literal

import lightning as L
from torch import Tensor

from .amcp import AMCPConfig, Segmenter
from .baselines import GRABCUT_ITERATIONS, grabcut_mask, grabcut_seed
from .clicks import NOC_THRESHOLDS, ClickProtocol, noc_key, number_of_clicks, simulate_clicks
from .features import ColorTextureFeatures, FeatureExtractor
from .metrics import mask_fbeta, mask_iou
from .painters import OpenCVPainter, Painter
from .prompts import PointsPrompt, Prompt


class PaintSegModule(L.LightningModule):
    """Segments each image of a predict batch.

    A batch is a list of items (``image`` [3, H, W] in [0, 1], ``prompt``, optional ``gt`` and
    ``ignore`` masks, ``name``, ``dataset``); ``predict_step`` returns one record per item with
    the mask, the IoU and F-beta of the mask, the IoU of the raw prompt, and timings. A
    ``clicks`` prompt runs the interactive protocol: one segmentation per simulated click, and
    the record adds the IoU after each click and NoC@85/90.

    ``method: grabcut`` replaces AMCP by OpenCV's GrabCut from the prompt's box, the classical
    baseline, with the same records (no timings per iteration). It has no use for clicks.
    Painter and features default to the weight-free components.
    """

    def __init__(self, painter: Painter | None = None, features: FeatureExtractor | None = None,
                 amcp: AMCPConfig | None = None, method: Literal["amcp", "grabcut"] = "amcp",
                 grabcut_iterations: int = GRABCUT_ITERATIONS):
        super().__init__()
        if method not in ("amcp", "grabcut"):
            raise ValueError(f"unknown method {method!r}; expected 'amcp' or 'grabcut'")
        self.painter = painter if painter is not None else OpenCVPainter()
        self.features = features if features is not None else ColorTextureFeatures()
        self.amcp = amcp if amcp is not None else AMCPConfig()
        self.method, self.grabcut_iterations = method, grabcut_iterations
        self.segmenter = Segmenter(self.painter, self.features, self.amcp)

    def segment_image(self, image: Tensor, prompt: Prompt, name: str = "") -> tuple[Tensor, Tensor, list[dict]]:
        """(mask, the prompt's starting mask, per-iteration timings) for the image last set and a prompt;
        ``name`` (the item's) seeds GrabCut, with the run's seed (``amcp.seed``)."""
        height, width = image.shape[-2:]
        if self.method == "grabcut":
            if isinstance(prompt, PointsPrompt):
                raise ValueError("the GrabCut baseline starts from a box; clicks give none (compare with its box run)")
            box = prompt.region_box(height, width)
            mask = grabcut_mask(image, box, self.grabcut_iterations, grabcut_seed(self.amcp.seed, name))
            return mask, prompt.initial_mask(height, width), []
        result = self.segmenter.predict(prompt)
        return result.mask.cpu(), result.prompt_mask.cpu(), [step.timings() for step in result.steps]

    def predict_step(self, batch: list[dict], batch_idx: int, dataloader_idx: int = 0) -> list[dict]:
        return [self.predict_item(item) for item in batch]

    def predict_item(self, item: dict) -> dict:
        start = time.perf_counter()
        prompt, gt, ignore = item["prompt"], item.get("gt"), item.get("ignore")
        record = {"name": item["name"], "dataset": item["dataset"], "method": self.method, "prompt_kind": prompt.kind}
        if self.method == "amcp":
            self.segmenter.set_image(item["image"].to(self.device))  # once per image, however many prompts
        if isinstance(prompt, ClickProtocol):
            record.update(self.run_clicks(item["image"], prompt, gt, ignore))
        else:
            mask, prompt_mask, timings = self.segment_image(item["image"], prompt, item["name"])
            record.update(mask=mask, prompt=prompt, prompt_iou=None if gt is None else mask_iou(prompt_mask, gt, ignore),
                          timings=timings)
        record["iou"] = None if gt is None else mask_iou(record["mask"], gt, ignore)
        record["fbeta"] = None if gt is None else mask_fbeta(record["mask"], gt, ignore)
        record["seconds"] = time.perf_counter() - start
        return record

    def run_clicks(self, image: Tensor, protocol: ClickProtocol, gt: Tensor | None, ignore: Tensor | None) -> dict:
        if gt is None:
            raise ValueError("the click protocol simulates clicks from ground truth, and this item has none")
        timings: list[dict] = []

        def predict(positive, negative):
            mask, _, click_timings = self.segment_image(image, PointsPrompt(positive, negative))
            timings.extend(click_timings)
            return mask

        run = simulate_clicks(predict, gt, ignore, protocol.max_clicks, protocol.stop_iou)
        nocs = {noc_key(t): number_of_clicks(run.ious, t, protocol.max_clicks) for t in NOC_THRESHOLDS}
        return {"mask": run.mask, "prompt": PointsPrompt(run.positive, run.negative), "prompt_iou": None,
                "clicks": [[c.x, c.y, c.positive] for c in run.clicks], "click_ious": run.ious, **nocs,
                "max_clicks": protocol.max_clicks, "timings": timings}
