"""Writes each prediction as it comes, and the results table at the end of predict.

Per image, under ``<output_dir>/<dataset>/``: ``masks/<stem>.png``, ``overlays/<stem>.png`` and
last ``records/<stem>.json``. Every file is written atomically and the record last, so a record
means the image is finished: a restarted run skips it and its IoU still counts in the metrics.
At the end: ``<dataset>/metrics.json`` (that dataset's row) and ``results.md`` / ``results.csv``
(results.py), which may also take in the rows of other runs' folders (``compare_with``), e.g. the
GrabCut baseline's. One output folder holds one prompt kind and method: resuming into a folder
made with others would skip images they finished, so the writer refuses. ``{method}`` and
``{prompt}`` in ``output_dir`` / ``compare_with`` are filled in, so one dataset config serves
every model config layered under it.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from lightning.pytorch.callbacks import BasePredictionWriter

from .io import save_png_atomic, write_json_atomic
from .results import NOC_KEYS, read_records, summarize, write_results
from .visualize import overlay
CLICK_KEYS = ("clicks", "click_ious", *NOC_KEYS, "max_clicks")  # clicks: [x, y, positive]


def step_seconds(timings: list[dict], step: str) -> float | None:
    seconds = [t["seconds"] for t in timings if t["step"] == step]
    return sum(seconds) / len(seconds) if seconds else None


class PredictionWriter(BasePredictionWriter):
    def __init__(self, output_dir: str = "outputs", overlays: bool = True, compare_with: list[str] | None = None,
                 title: str = "Results"):
        super().__init__(write_interval="batch")
        self.output_template, self.compare_templates = output_dir, list(compare_with or [])
        self.output_dir, self.compare_with = Path(output_dir), []
        self.overlays = overlays
        self.title = title

    def setup(self, trainer, pl_module, stage: str) -> None:
        datamodule = getattr(trainer, "datamodule", None)
        prompt, method = getattr(datamodule, "prompt", "prompt"), getattr(pl_module, "method", "amcp")
        self.output_dir = Path(self.output_template.format(prompt=prompt, method=method))
        others = (Path(p.format(prompt=prompt, method=method)) for p in self.compare_templates)
        self.compare_with = [p for p in others if p.resolve() != self.output_dir.resolve()]
        # Resume: the DataModule skips images this writer has finished.
        if datamodule is not None and getattr(datamodule, "skip_done_in", "") is None:
            datamodule.skip_done_in = str(self.output_dir)
        if hasattr(datamodule, "prompt"):
            self._refuse_other_runs(prompt, method)

    def _refuse_other_runs(self, prompt: str, method: str) -> None:
        """Resuming into a folder of another prompt kind or method would skip images this run never did."""
        first = next(self.output_dir.glob("*/records/*.json"), None)
        if first is None:
            return
        record = json.loads(first.read_text())
        found = (record["prompt"], record.get("method", "amcp"))
        if found != (prompt, method):
            raise ValueError(f"{self.output_dir} holds {found[0]} / {found[1]} records ({first}); this run is "
                             f"{prompt} / {method}: give it its own output_dir")

    def write_on_batch_end(self, trainer, pl_module, prediction, batch_indices, batch, batch_idx, dataloader_idx):
        for record, item in zip(prediction, batch):
            folder = self.output_dir / record["dataset"]
            stem = record["name"]
            save_png_atomic(folder / "masks" / f"{stem}.png", record["mask"].numpy().astype(np.uint8) * 255)
            if self.overlays:
                save_png_atomic(folder / "overlays" / f"{stem}.png", overlay(item["image"], record["mask"], record["prompt"]))
            write_json_atomic(folder / "records" / f"{stem}.json", {
                "name": stem,
                "dataset": record["dataset"],
                "prompt": record["prompt_kind"],
                "method": record["method"],
                "iou": record["iou"],
                "prompt_iou": record["prompt_iou"],
                "fbeta": record["fbeta"],
                **{key: record[key] for key in CLICK_KEYS if key in record},
                "seconds": record["seconds"],
                "inpaint_seconds": step_seconds(record["timings"], "inpaint"),
                "outpaint_seconds": step_seconds(record["timings"], "outpaint"),
                "timings": record["timings"],
            })

    def on_predict_end(self, trainer, pl_module) -> None:
        rows = summarize(read_records(self.output_dir))
        for row in rows:
            write_json_atomic(self.output_dir / row["dataset"] / "metrics.json", row)
        rows += summarize([r for folder in self.compare_with for r in read_records(folder)])
        print("\n" + write_results(rows, self.output_dir, self.title))
