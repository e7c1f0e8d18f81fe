"""The LightningModule: a segmenter as ``predict_step``. Thin by design: the algorithm is the
segmenter's (AMCP's ``Segmenter`` or the GrabCut baseline, built from the config's
``model.segmenter`` section, build.py), the click protocol is clicks.py, writing is the
prediction writer's."""
from __future__ import annotations

import time

import lightning as L
import torch
from torch import Tensor, nn

from ..amcp import PromptSegmenter, Segmenter
from ..clicks import NOC_THRESHOLDS, ClickProtocol, number_of_clicks, simulate_clicks
from ..errors import ITEM_ERRORS, ItemError
from ..metrics import mask_fbeta, mask_iou
from ..prompts import PointsPrompt, Prompt
from .coco import coco_record
from .records import Failure, Item, Prediction, PredictionRecord
from ..threads import Threads, check_threads, use_threads


class PaintSegModule(L.LightningModule):
    """Segments each item of a predict batch with ``segmenter`` (default: AMCP, weight-free).

    A batch is a list of ``Item`` s; ``predict_step`` returns one ``Prediction`` per item: the mask
    with its ``PredictionRecord`` (IoU and F-beta of the mask, IoU of the raw prompt, timings), or
    a ``Failure`` saying why the item could not be segmented (``ITEM_ERRORS`` only: anything else,
    an engine that does not fit for one, stops the run). A ``clicks`` prompt runs the interactive
    protocol on one segmenter session: one prediction per simulated click, and the record adds
    the IoU after each click and NoC@85/90. ``threads``: torch's intra-op threads for the run,
    ``auto`` choosing from the segmenter's components (threads.py), set as predicting starts.
    """

    def __init__(self, segmenter: PromptSegmenter | None = None, threads: Threads = "auto"):
        super().__init__()
        self.segmenter = segmenter if segmenter is not None else Segmenter()
        self.threads = check_threads(threads)
        # The segmenter's networks as submodules: Lightning moves them to the run's device.
        self.components = nn.ModuleDict({name: part for name, part in self.segmenter.components().items()
                                         if isinstance(part, nn.Module)})

    def on_predict_start(self) -> None:
        # Lightning's CPU strategies give each process its share of the cores; this is where the work starts.
        processes = self.trainer.num_devices if self.device.type == "cpu" else 1
        use_threads(self.threads, *self.segmenter.components().values(), processes=processes)

    def transfer_batch_to_device(self, batch: list[Item], device: torch.device, dataloader_idx: int) -> list[Item]:
        """The batch stays on the CPU. The segmenter moves the image to the models' device itself (once
        per image, in ``set_image``); the ground truth, the prompt and the metrics stay with the masks,
        which come back to the CPU (Lightning's default moves every tensor, and a CUDA ``gt`` would
        meet a CPU mask)."""
        return batch

    def predict_step(self, batch: list[Item], batch_idx: int, dataloader_idx: int = 0) -> list[Prediction]:
        predictions = []
        for item in batch:
            predictions += self.predict_instances(item) if item.instances is not None else [self.predict_item(item)]
        return predictions

    def predict_item(self, item: Item, image_is_set: bool = False) -> Prediction:
        if item.error is not None:  # the DataModule could not read it
            return Prediction(item.name, item.dataset, failure=Failure(item.name, item.dataset, item.error))
        try:
            return self.segment_item(item, image_is_set)
        except ITEM_ERRORS as error:
            return Prediction(item.name, item.dataset, failure=Failure(item.name, item.dataset, f"{item.name}: {error}"))
        finally:
            if not image_is_set:
                self.segmenter.reset_image()  # the next item is another image: hold nothing of this one

    def predict_instances(self, item: Item) -> list[Prediction]:
        """One prediction per instance of a COCO image (run/coco.py), all on one segmenter session:
        the image is set once, an instance that fails fails alone, and an image that cannot be
        read or set fails each of its instances. Each record's seconds are its own prompt's plus
        an equal share of setting the image."""
        start, error = time.perf_counter(), item.error
        try:
            if error is None and item.instances:
                try:
                    self.segmenter.set_image(item.image.to(self.device), item.name)
                except ITEM_ERRORS as failure:
                    error = f"{item.name}: {failure}"
            if error is not None:
                return [Prediction(i.name, i.dataset, failure=Failure(i.name, i.dataset, error)) for i in item.instances]
            share = (time.perf_counter() - start) / max(1, len(item.instances))
            predictions = [self.predict_item(instance, image_is_set=True) for instance in item.instances]
        finally:
            self.segmenter.reset_image()
        for prediction, instance in zip(predictions, item.instances):
            if prediction.record is not None:
                prediction.record.seconds += share
                prediction.record.coco = coco_record(instance.coco, prediction.mask, prediction.prompt)
        return predictions

    def segment_item(self, item: Item, image_is_set: bool = False) -> Prediction:
        start = time.perf_counter()
        prompt, gt, ignore = item.prompt, item.gt, item.ignore
        if not image_is_set:
            self.segmenter.set_image(item.image.to(self.device), item.name)  # once per image, however many prompts
        record = PredictionRecord(name=item.name, dataset=item.dataset, prompt=prompt.kind,
                                  method=self.segmenter.method, iou=None, prompt_iou=None, fbeta=None, seconds=0.0)
        if isinstance(prompt, ClickProtocol):
            mask, prompt = self.run_clicks(item, prompt, record)
        else:
            mask, prompt_mask, record.timings = self.segment_image(prompt)
            record.prompt_iou = None if gt is None else mask_iou(prompt_mask, gt, ignore)
        if gt is not None:
            record.iou, record.fbeta = mask_iou(mask, gt, ignore), mask_fbeta(mask, gt, ignore)
        record.seconds = time.perf_counter() - start
        return Prediction(item.name, item.dataset, record=record, mask=mask, prompt=prompt)

    def segment_image(self, prompt: Prompt) -> tuple[Tensor, Tensor, list[dict]]:
        """(mask, the prompt's starting mask, per-iteration timings) for the image last set and a prompt."""
        result = self.segmenter.predict(prompt)
        return result.mask.cpu(), result.prompt_mask.cpu(), [step.timings() for step in result.steps]

    def run_clicks(self, item: Item, protocol: ClickProtocol, record: PredictionRecord) -> tuple[Tensor, Prompt]:
        if item.gt is None:
            raise ItemError("the click protocol simulates clicks from ground truth, and this item has none")

        def predict(positive, negative, previous):
            mask, _, timings = self.segment_image(PointsPrompt(positive, negative, previous))
            record.timings.extend(timings)
            return mask

        run = simulate_clicks(predict, item.gt, item.ignore, protocol.max_clicks, protocol.stop_iou)
        record.clicks = [[c.x, c.y, c.positive] for c in run.clicks]
        record.click_ious, record.max_clicks = run.ious, protocol.max_clicks
        record.noc85, record.noc90 = (number_of_clicks(run.ious, t, protocol.max_clicks) for t in NOC_THRESHOLDS)
        return run.mask, PointsPrompt(run.positive, run.negative)
