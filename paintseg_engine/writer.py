"""Writes each prediction as it comes, and per-dataset metrics at the end of predict.

Per image, under ``<output_dir>/<dataset>/``: ``masks/<stem>.png``, ``overlays/<stem>.png`` and
last ``records/<stem>.json``. Every file is written atomically and the record last, so a record
means the image is finished: a restarted run skips it and its IoU still counts in the metrics.
"""
from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import numpy as np
import torch
from lightning.pytorch.callbacks import BasePredictionWriter
from torchmetrics import MeanMetric

from .io import save_png_atomic, write_json_atomic
from .prompts import BoxPrompt, PointsPrompt

MASK_TINT = np.array([255, 64, 32], np.float32)  # RGB
TINT_ALPHA = 0.45
PROMPT_COLOUR = (255, 255, 0)
NEGATIVE_COLOUR = (0, 160, 255)
METRIC_KEYS = ("iou", "prompt_iou", "seconds", "inpaint_seconds", "outpaint_seconds")


def overlay(image: torch.Tensor, mask: torch.Tensor, prompt) -> np.ndarray:
    """The image with the mask tinted and outlined, and the prompt drawn on top."""
    rgb = (image.permute(1, 2, 0).numpy() * 255).astype(np.float32)
    m = mask.numpy()
    rgb[m] = (1 - TINT_ALPHA) * rgb[m] + TINT_ALPHA * MASK_TINT
    out = np.ascontiguousarray(rgb.round().astype(np.uint8))
    contours, _ = cv2.findContours(m.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    cv2.drawContours(out, contours, -1, tuple(int(c) for c in MASK_TINT), 1)
    if isinstance(prompt, BoxPrompt):
        x0, y0, x1, y1 = (int(v) for v in prompt.box)
        cv2.rectangle(out, (x0, y0), (x1 - 1, y1 - 1), PROMPT_COLOUR, 1)
    if isinstance(prompt, PointsPrompt):
        for points, colour in ((prompt.positive, PROMPT_COLOUR), (prompt.negative, NEGATIVE_COLOUR)):
            for x, y in points:
                cv2.circle(out, (int(x), int(y)), 4, colour, -1)
    return out


def step_seconds(timings: list[dict], step: str) -> float | None:
    seconds = [t["seconds"] for t in timings if t["step"] == step]
    return sum(seconds) / len(seconds) if seconds else None


class PredictionWriter(BasePredictionWriter):
    def __init__(self, output_dir: str = "outputs", overlays: bool = True):
        super().__init__(write_interval="batch")
        self.output_dir = Path(output_dir)
        self.overlays = overlays

    def setup(self, trainer, pl_module, stage: str) -> None:
        # Resume: the DataModule skips images this writer has finished.
        datamodule = getattr(trainer, "datamodule", None)
        if datamodule is not None and getattr(datamodule, "skip_done_in", "") is None:
            datamodule.skip_done_in = str(self.output_dir)

    def write_on_batch_end(self, trainer, pl_module, prediction, batch_indices, batch, batch_idx, dataloader_idx):
        for record, item in zip(prediction, batch):
            folder = self.output_dir / record["dataset"]
            stem = record["name"]
            save_png_atomic(folder / "masks" / f"{stem}.png", record["mask"].numpy().astype(np.uint8) * 255)
            if self.overlays:
                save_png_atomic(folder / "overlays" / f"{stem}.png", overlay(item["image"], record["mask"], item["prompt"]))
            write_json_atomic(folder / "records" / f"{stem}.json", {
                "name": stem,
                "dataset": record["dataset"],
                "prompt": item["prompt"].kind,
                "iou": record["iou"],
                "prompt_iou": record["prompt_iou"],
                "seconds": record["seconds"],
                "inpaint_seconds": step_seconds(record["timings"], "inpaint"),
                "outpaint_seconds": step_seconds(record["timings"], "outpaint"),
                "timings": record["timings"],
            })

    def on_predict_end(self, trainer, pl_module) -> None:
        datamodule = getattr(trainer, "datamodule", None)
        names = getattr(datamodule, "dataset_names", None) or sorted(
            p.name for p in self.output_dir.iterdir() if (p / "records").is_dir())
        rows = [self.dataset_metrics(name) for name in names]
        self.output_dir.mkdir(parents=True, exist_ok=True)
        with open(self.output_dir / "metrics.csv", "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        print(format_table(rows))

    def dataset_metrics(self, name: str) -> dict:
        """Means over every finished image of a dataset, this run's and earlier runs'."""
        means = {key: MeanMetric() for key in METRIC_KEYS}
        records = sorted((self.output_dir / name / "records").glob("*.json"))
        for path in records:
            record = json.loads(path.read_text())
            for key, metric in means.items():
                if record.get(key) is not None:
                    metric.update(record[key])
        row = {"dataset": name, "images": len(records)}
        for key, metric in means.items():
            row[key] = round(metric.compute().item(), 4) if metric.update_count else None
        write_json_atomic(self.output_dir / name / "metrics.json", row)
        return row


def format_table(rows: list[dict]) -> str:
    lines = ["", f"{'dataset':<20} {'images':>6} {'mIoU AMCP':>10} {'mIoU prompt':>12} {'s/image':>8}"]
    for r in rows:
        fmt = lambda v: "-" if v is None else f"{v:.4f}"  # noqa: E731
        lines.append(f"{r['dataset']:<20} {r['images']:>6} {fmt(r['iou']):>10} {fmt(r['prompt_iou']):>12} "
                     f"{fmt(r['seconds']):>8}")
    return "\n".join(lines)
