"""Metrics and the results table: one row per dataset, prompt and method, failures counted."""
import pytest
import torch

from paintseg_engine.metrics import mask_fbeta
from paintseg_engine.run.records import Failure, PredictionRecord
from paintseg_engine.run.results import COLUMNS, HEADERS, summarize, write_results


def test_fbeta_weighs_precision(disc):
    _, gt = disc
    assert mask_fbeta(gt, gt) == pytest.approx(1.0)
    grown = torch.ones_like(gt)  # full recall, low precision
    assert mask_fbeta(grown, gt) < 0.5


def test_results_table_is_well_formed(tmp_path):
    records = [PredictionRecord(name=str(i), **fields) for i, fields in enumerate([
        dict(dataset="G", prompt="box", method="amcp", iou=0.8, prompt_iou=0.5, fbeta=0.9, seconds=2.0),
        dict(dataset="G", prompt="box", method="amcp", iou=0.6, prompt_iou=0.7, fbeta=0.7, seconds=4.0),
        dict(dataset="G", prompt="box", method="grabcut", iou=0.5, prompt_iou=0.6, fbeta=0.6, seconds=1.0),
        dict(dataset="G", prompt="clicks", method="amcp", iou=0.9, prompt_iou=None, fbeta=0.9, seconds=9.0,
             click_ious=[0.5, 0.9], noc85=2, noc90=2),
        dict(dataset="G", prompt="clicks", method="amcp", iou=0.3, prompt_iou=None, fbeta=0.3, seconds=7.0,
             click_ious=[0.1, 0.2, 0.3], noc85=3, noc90=3),
    ])]
    rows = summarize(records, [Failure("bad", "G", "corrupt"), Failure("x", "H", "no mask")])
    assert [(r["dataset"], r["prompt"], r["method"], r["images"], r["failed"]) for r in rows] == [
        ("G", "box", "amcp", 2, 1), ("G", "box", "grabcut", 1, 0), ("G", "clicks", "amcp", 2, 0), ("H", None, None, 0, 1)]
    assert rows[0]["iou"] == pytest.approx(0.7) and rows[0]["noc85"] is None and rows[0]["miou_at_1"] is None
    assert rows[2]["noc85"] == 2.5 and rows[2]["miou_at_1"] == pytest.approx(0.3)
    assert rows[2]["miou_at_5"] == pytest.approx(0.6) and rows[2]["seconds_per_image"] == 8.0
    assert rows[2]["miou_at_20"] == pytest.approx(0.6) and rows[2]["seconds_per_click"] == pytest.approx(3.4167)
    assert rows[0]["seconds_per_click"] is None  # box prompts have no clicks
    write_results(rows, tmp_path, "T", "notes")
    lines = (tmp_path / "results.md").read_text().splitlines()
    table = [line for line in lines if line.startswith("|")]
    assert lines[0] == "# T" and "notes" in lines and len(table) == 2 + len(rows)
    shown = [c for c in COLUMNS if any(row[c] is not None for row in rows)]
    assert "mask_ap" not in shown and "noc85" in shown  # no COCO dataset here; clicks there are
    assert table[0] == "| " + " | ".join(HEADERS.get(c, c) for c in shown) + " |"
    assert all(line.count("|") == len(shown) + 1 for line in table)
    csv_lines = (tmp_path / "results.csv").read_text().splitlines()
    assert csv_lines[0] == ",".join(COLUMNS) and len(csv_lines) == 1 + len(rows)
