"""The results table: one row per dataset x prompt x method, from the per-image records.

``paintseg results`` (commands/results.py) merges the records of several runs (e.g. AMCP's and
the GrabCut baseline's) into one table, each run's records of its own settings only; the
prediction writer writes the same table for its own run at the end of predict. ``failed``
counts the items that could not be segmented: their metrics are missing from the row, and a row
with failures says so.
"""
from __future__ import annotations

import csv
import io
from collections import defaultdict
from pathlib import Path

import numpy as np

from ..clicks import NOC_THRESHOLDS, mean_iou_at, noc_key
from ..imageio import write_texts_together
from .coco_results import AP_COLUMNS, mask_ap_columns
from .records import Failure, PredictionRecord
from .folder import RunFolder

MIOU_AT_CLICKS = (1, 5, 20)
NOC_KEYS = tuple(noc_key(t) for t in NOC_THRESHOLDS)
# "iou" / "prompt_iou": means over images (the names metrics.json has always used).
COLUMNS = ("dataset", "prompt", "method", "images", "failed", "iou", "prompt_iou", *AP_COLUMNS, *NOC_KEYS,
           *(f"miou_at_{k}" for k in MIOU_AT_CLICKS), "max_fbeta", "seconds_per_image", "seconds_per_click")
HEADERS = {"iou": "mIoU", "prompt_iou": "mIoU (prompt)", "mask_ap": "mask AP", "mask_ap50": "AP50",
           "mask_ap75": "AP75", "prompt_mask_ap": "mask AP (prompt)", "prompt_mask_ap50": "AP50 (prompt)",
           "prompt_mask_ap75": "AP75 (prompt)", "prompt_box_ap": "box AP (prompt)",
           **{noc_key(t): f"NoC@{round(t * 100)}" for t in NOC_THRESHOLDS},
           **{f"miou_at_{k}": f"mIoU@{k}" for k in MIOU_AT_CLICKS}, "max_fbeta": "max F-beta",
           "seconds_per_image": "s/image", "seconds_per_click": "s/click"}
# Shown in results.md even when empty: what a row is, how many items it has, and its mIoU.
ALWAYS_SHOWN = ("dataset", "prompt", "method", "images", "failed", "iou")
DECIMALS = 4


def _mean(values) -> float | None:
    values = [v for v in values if v is not None]
    return round(float(np.mean(values)), DECIMALS) if values else None


def summarize(records: list[PredictionRecord], failures: list[Failure] = ()) -> list[dict]:
    """Means per (dataset, prompt, method), in the order the groups first appear; ``failed``
    counts each dataset's failures (a failed item has no prompt kind or method of its own)."""
    groups: dict[tuple, list[PredictionRecord]] = defaultdict(list)
    for record in records:
        groups[record.dataset, record.prompt, record.method].append(record)
    failed = defaultdict(int)
    for failure in failures:
        failed[failure.dataset] += 1
    rows = []
    for (dataset, prompt, method), group in groups.items():
        clicks = [r.click_ious for r in group if r.click_ious]
        rows.append({**dict.fromkeys(AP_COLUMNS), "dataset": dataset, "prompt": prompt, "method": method,
                     "images": len(group),
                     "failed": failed.pop(dataset, 0),
                     "iou": _mean(r.iou for r in group), "prompt_iou": _mean(r.prompt_iou for r in group),
                     **{key: _mean(getattr(r, key) for r in group) for key in NOC_KEYS},
                     **{f"miou_at_{k}": round(mean_iou_at(clicks, k), DECIMALS) if clicks else None
                        for k in MIOU_AT_CLICKS},
                     "max_fbeta": _mean(r.fbeta for r in group),
                     "seconds_per_image": _mean(r.seconds for r in group),
                     # The image's whole protocol over its clicks: set_image shared out among them.
                     "seconds_per_click": _mean(r.seconds / len(r.click_ious) for r in group if r.click_ious)})
    # A dataset whose every item failed still gets its row: the table must not hide it.
    rows += [{**dict.fromkeys(COLUMNS), "dataset": dataset, "images": 0, "failed": count}
             for dataset, count in failed.items()]
    return rows


def run_rows(run: RunFolder, records: list[PredictionRecord], failures: list[Failure],
             write_coco_results: bool = False) -> list[dict]:
    """``summarize`` of one run's records, with the mask AP columns of its COCO datasets (and, when
    asked, their ``coco_results.json``)."""
    rows = summarize(records, failures)
    # A COCO dataset with no instance to segment (no detection above the threshold) still has its AP: 0.
    rows += [{**dict.fromkeys(COLUMNS), "dataset": dataset, "images": 0, "failed": 0}
             for dataset in run.datasets() if run.coco_scope_path(dataset).is_file()
             and dataset not in {row["dataset"] for row in rows}]
    for row in rows:
        row.update(mask_ap_columns(run, row["dataset"], records, write_coco_results))
    return rows


def markdown_table(rows: list[dict]) -> str:
    """The rows as Markdown, without the columns no row has a value in (AP columns without a COCO
    dataset, click columns without clicks): ``results.csv`` keeps every column."""
    columns = [c for c in COLUMNS if c in ALWAYS_SHOWN or any(row[c] is not None for row in rows)]
    cell = lambda v: "-" if v is None else str(v)  # noqa: E731
    lines = ["| " + " | ".join(HEADERS.get(c, c) for c in columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(row[c]) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def write_results(rows: list[dict], folder: str | Path, title: str = "Results", notes: str = "") -> str:
    """Writes ``results.csv`` and ``results.md`` (title, notes, table) in ``folder``, together (an
    interrupted write leaves both old or both new); returns the table."""
    folder = Path(folder)
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
    table = markdown_table(rows)
    write_texts_together({folder / "results.csv": text.getvalue(),
                          folder / "results.md": f"# {title}\n\n" + (f"{notes}\n\n" if notes else "") + table + "\n"})
    return table
