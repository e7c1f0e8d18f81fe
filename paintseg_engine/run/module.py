"""The LightningModule: AMCP (or the GrabCut baseline) as ``predict_step``. Thin by design: the
algorithm is the amcp package's Segmenter, the click protocol is clicks.py, writing is the
prediction writer's."""
from __future__ import annotations

import time
from typing import Literal

import lightning as L
from torch import Tensor

from ..amcp import AMCPConfig, Segmenter
from ..baselines import GRABCUT_ITERATIONS, grabcut_mask, grabcut_seed
from ..clicks import NOC_THRESHOLDS, ClickProtocol, noc_key, number_of_clicks, simulate_clicks
from ..features import ColorTextureFeatures, FeatureExtractor
from ..imageio import ImageLoadError
from ..metrics import mask_fbeta, mask_iou
from ..painters import OpenCVPainter, Painter
from ..prompts import PointsPrompt, Prompt, PromptError
from .coco import coco_record
from .records import Failure, Prediction, PredictionRecord

# What one item may fail with and the run go on: bad files, prompts and inputs. A bug elsewhere
# (TypeError, RuntimeError from a model) still stops the run with its traceback.
ITEM_ERRORS = (ImageLoadError, PromptError, ValueError, OSError)


class PaintSegModule(L.LightningModule):
    """Segments each image of a predict batch.

    A batch is a list of items (``image`` [3, H, W] in [0, 1], ``prompt``, optional ``gt`` and
    ``ignore`` masks, ``name``, ``dataset``); ``predict_step`` returns one ``Prediction`` per item:
    the mask with its ``PredictionRecord`` (IoU and F-beta of the mask, IoU of the raw prompt,
    timings), or a ``Failure`` saying why the item could not be segmented. A ``clicks`` prompt
    runs the interactive protocol on one segmenter session: one prediction per simulated click,
    and the record adds the IoU after each click and NoC@85/90.

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

    def predict_step(self, batch: list[dict], batch_idx: int, dataloader_idx: int = 0) -> list[Prediction]:
        predictions = []
        for item in batch:
            predictions += self.predict_instances(item) if "instances" in item else [self.predict_item(item)]
        return predictions

    def predict_instances(self, item: dict) -> list[Prediction]:
        """One prediction per instance of a COCO image (run/coco.py), all on one segmenter session:
        the image is set once; an instance that fails fails alone. Each record's seconds are its
        own prompt's plus an equal share of setting the image."""
        dataset, instances = item["dataset"], item["instances"]
        start = time.perf_counter()
        error = item.get("error")
        if error is None and instances:
            try:
                self.set_image(item["image"])
            except ITEM_ERRORS as failure:
                error = f"{item['name']}: {failure}"
        if error is not None:
            return [Prediction(i["name"], dataset, failure=Failure(i["name"], dataset, error)) for i in instances]
        share = (time.perf_counter() - start) / max(1, len(instances))
        predictions = []
        for instance in instances:
            prediction = self.predict_item({**instance, "dataset": dataset, "image": item["image"]}, image_set=True)
            if prediction.record is not None:
                prediction.record.seconds += share
                prediction.record.coco = coco_record(instance["coco"], prediction.mask, prediction.prompt)
            predictions.append(prediction)
        return predictions

    def set_image(self, image: Tensor) -> None:
        if self.method == "amcp":
            self.segmenter.set_image(image.to(self.device))  # once per image, however many prompts

    def predict_item(self, item: dict, image_set: bool = False) -> Prediction:
        name, dataset = item["name"], item["dataset"]
        if "error" in item:  # the DataModule could not read it
            return Prediction(name, dataset, failure=Failure(name, dataset, item["error"]))
        try:
            return self.segment_item(item, image_set)
        except ITEM_ERRORS as error:
            return Prediction(name, dataset, failure=Failure(name, dataset, f"{item.get('path', name)}: {error}"))

    def segment_item(self, item: dict, image_set: bool = False) -> Prediction:
        start = time.perf_counter()
        image, prompt, gt, ignore = item["image"], item["prompt"], item.get("gt"), item.get("ignore")
        if not image_set:
            self.set_image(image)
        record = PredictionRecord(name=item["name"], dataset=item["dataset"], prompt=prompt.kind, method=self.method,
                                  iou=None, prompt_iou=None, fbeta=None, seconds=0.0)
        if isinstance(prompt, ClickProtocol):
            mask, prompt = self.run_clicks(item, prompt, record)
        else:
            mask, prompt_mask, record.timings = self.segment_image(image, prompt, item["name"])
            record.prompt_iou = None if gt is None else mask_iou(prompt_mask, gt, ignore)
        if gt is not None:
            record.iou, record.fbeta = mask_iou(mask, gt, ignore), mask_fbeta(mask, gt, ignore)
        record.seconds = time.perf_counter() - start
        return Prediction(item["name"], item["dataset"], record=record, mask=mask, prompt=prompt)

    def segment_image(self, image: Tensor, prompt: Prompt, name: str) -> tuple[Tensor, Tensor, list[dict]]:
        """(mask, the prompt's starting mask, per-iteration timings) for the image last set and a prompt;
        ``name`` (the item's) seeds GrabCut, with the run's seed (``amcp.seed``)."""
        height, width = image.shape[-2:]
        if self.method == "grabcut":
            if isinstance(prompt, PointsPrompt):
                raise ValueError("the GrabCut baseline starts from a box; clicks give none (compare with its box run)")
            box = prompt.region_box(height, width)
            return (grabcut_mask(image, box, self.grabcut_iterations, grabcut_seed(self.amcp.seed, name)),
                    prompt.initial_mask(height, width), [])
        result = self.segmenter.predict(prompt)
        return result.mask.cpu(), result.prompt_mask.cpu(), [step.timings() for step in result.steps]

    def run_clicks(self, item: dict, protocol: ClickProtocol, record: PredictionRecord) -> tuple[Tensor, Prompt]:
        gt, ignore = item.get("gt"), item.get("ignore")
        if gt is None:
            raise ValueError("the click protocol simulates clicks from ground truth, and this item has none")

        def predict(positive, negative):
            mask, _, timings = self.segment_image(item["image"], PointsPrompt(positive, negative), item["name"])
            record.timings.extend(timings)
            return mask

        run = simulate_clicks(predict, gt, ignore, protocol.max_clicks, protocol.stop_iou)
        record.clicks = [[c.x, c.y, c.positive] for c in run.clicks]
        record.click_ious, record.max_clicks = run.ious, protocol.max_clicks
        record.noc85, record.noc90 = (number_of_clicks(run.ious, t, protocol.max_clicks) for t in NOC_THRESHOLDS)
        return run.mask, PointsPrompt(run.positive, run.negative)
