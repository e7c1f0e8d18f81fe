"""Prompt protocols, the GrabCut baseline, clicks through predict_step, results table, configs."""
from dataclasses import replace
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from paintseg_engine.baselines import grabcut_mask
from paintseg_engine.commands.predict import main as cli_main
from paintseg_engine.clicks import ClickProtocol
from paintseg_engine.amcp import AMCPConfig
from paintseg_engine.data import PromptSettings, prompt_from_gt
from paintseg_engine.run.datamodule import DatasetSpec, PaintSegDataModule
from paintseg_engine.metrics import mask_fbeta, mask_iou
from paintseg_engine.run.module import PaintSegModule
from paintseg_engine.prompts import BoxPrompt, MaskPrompt, PointsPrompt, ScribblePrompt
from paintseg_engine.run.records import Failure, PredictionRecord
from paintseg_engine.run.results import COLUMNS, summarize, write_results
from paintseg_engine.run.writer import PredictionWriter, RunFailed
from tests.scenes import disc_scene

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
FAST = AMCPConfig(frame_size=96, iterations=3, num_samples=2, log_contrast=True, outpaint_region="background")


@pytest.fixture(scope="module")
def disc():
    return disc_scene()


def test_tight_box_and_seeded_jitter(disc):
    _, gt = disc
    tight = prompt_from_gt(gt, "box", "a")
    assert isinstance(tight, BoxPrompt) and mask_iou(tight.initial_mask(*gt.shape) & gt, gt) == 1.0
    jittered = [prompt_from_gt(gt, "box", name, PromptSettings(seed=seed, box_jitter=0.2)).box
                for name, seed in (("a", 0), ("a", 0), ("b", 0), ("a", 1))]
    assert jittered[0] == jittered[1] and jittered[0] != jittered[2] and jittered[0] != jittered[3]
    assert jittered[0] != tight.box
    for box in jittered:
        BoxPrompt(box).initial_mask(*gt.shape)  # inside the image, not empty


def test_coarse_mask_from_gt_is_seeded_and_coarse(disc):
    _, gt = disc
    settings = PromptSettings(seed=3, coarse_morph=0.15)
    masks = [prompt_from_gt(gt, "coarse_mask", name, settings) for name in ("a", "a", "b")]
    assert all(isinstance(m, MaskPrompt) for m in masks)
    assert torch.equal(masks[0].mask, masks[1].mask) and not torch.equal(masks[0].mask, masks[2].mask)
    for m in masks:
        assert 0.5 < mask_iou(m.initial_mask(*gt.shape), gt) < 1.0


def test_coarse_mask_from_a_folder(tmp_path, disc):
    _, gt = disc
    coarse = np.zeros(gt.shape, np.uint8)
    coarse[20:60, 20:80] = 255
    Image.fromarray(coarse).save(tmp_path / "img1.png")
    prompt = prompt_from_gt(gt, "coarse_mask", "img1", coarse_mask_dir=tmp_path)
    assert prompt.initial_mask(*gt.shape).sum() == 40 * 60
    with pytest.raises(FileNotFoundError, match="img2.png"):
        prompt_from_gt(gt, "coarse_mask", "img2", coarse_mask_dir=tmp_path)


def test_points_scribble_and_clicks(disc):
    _, gt = disc
    points = prompt_from_gt(gt, "points", "a")
    (x, y), = points.positive
    assert isinstance(points, PointsPrompt) and gt[int(y), int(x)]
    scribble = prompt_from_gt(gt, "scribble", "a")
    assert isinstance(scribble, ScribblePrompt) and scribble.scribble.any() and not (scribble.scribble & ~gt).any()
    clicks = prompt_from_gt(gt, "clicks", "a", PromptSettings(max_clicks=7, stop_early=False))
    assert clicks == ClickProtocol(max_clicks=7, stop_iou=None) and clicks.kind == "clicks"
    with pytest.raises(ValueError, match="unknown prompt kind 'lasso'"):
        prompt_from_gt(gt, "lasso", "a")


def test_grabcut_baseline_beats_the_box(disc, box_around):
    image, gt = disc
    box = box_around(gt, 6)
    mask = grabcut_mask(image, box)
    assert mask_iou(mask, gt) > mask_iou(BoxPrompt(box).initial_mask(*gt.shape), gt) + 0.15
    assert mask_iou(mask, gt) > 0.9


def test_fbeta_weighs_precision(disc):
    _, gt = disc
    assert mask_fbeta(gt, gt) == pytest.approx(1.0)
    grown = torch.ones_like(gt)  # full recall, low precision
    assert mask_fbeta(grown, gt) < 0.5


def test_clicks_run_through_predict_step(disc):
    image, gt = disc
    item = {"image": image, "gt": gt, "ignore": None, "prompt": ClickProtocol(max_clicks=2, stop_iou=None),
            "name": "disc", "dataset": "d"}
    # Without refinement the first click leaves an error for the second (with it, the disc is exact).
    prediction = PaintSegModule(amcp=replace(FAST, refine_iterations=0)).predict_step([item], 0)[0]
    record = prediction.record
    assert len(record.click_ious) == 2 and record.iou == record.click_ious[-1]
    assert len(record.clicks) == 2 and record.clicks[0][2] is True  # the first click is positive
    assert record.click_ious[0] >= 0.9 and record.noc85 == record.noc90 == 1  # one click finds the disc
    assert record.prompt_iou is None
    assert isinstance(prediction.prompt, PointsPrompt) and len(prediction.prompt.positive) >= 1
    assert [t["step"] for t in record.timings] == ["inpaint", "outpaint", "inpaint"] * 2
    # The baseline answers the same clicks with the cut they seed: one click finds the disc too.
    baseline = PaintSegModule(method="grabcut").predict_step([item], 0)[0].record
    assert baseline.method == "grabcut" and baseline.click_ious[0] >= 0.9 and baseline.timings == []


def test_grabcut_method_writes_the_same_records(tmp_path):
    def run(prompt, output_dir, compare_with=()):
        dm = PaintSegDataModule([DatasetSpec("gen", str(tmp_path / "gen"), kind="synthetic", num_images=2)], prompt,
                                run_dir=str(output_dir))
        writer = PredictionWriter(str(output_dir), compare_with=list(compare_with), settings={"prompt": prompt})
        trainer = L.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, callbacks=[writer])
        trainer.predict(PaintSegModule(method="grabcut"), datamodule=dm, return_predictions=False)

    out = tmp_path / "out"
    run("box", out / "grabcut", [str(out / "amcp"), str(out / "grabcut")])
    assert "| gen | box | grabcut | 2 | 0 |" in (out / "grabcut/results.md").read_text()
    with pytest.raises(RunFailed, match="other settings .*prompt: 'box' -> 'scribble'"):  # no mixing runs
        run("scribble", out / "grabcut")


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
    assert all(line.count("|") == len(COLUMNS) + 1 for line in table)
    csv_lines = (tmp_path / "results.csv").read_text().splitlines()
    assert csv_lines[0] == ",".join(COLUMNS) and len(csv_lines) == 1 + len(rows)


DATASET_CONFIGS = sorted((CONFIGS / "datasets").glob("*.yaml"))


@pytest.mark.parametrize("model", ["default.yaml", "grabcut_baseline.yaml"])
@pytest.mark.parametrize("config", DATASET_CONFIGS, ids=lambda p: p.stem)
def test_every_dataset_config_parses_over_each_model_config(config, model, capsys):
    with pytest.raises(SystemExit) as exit:
        cli_main(["predict", "--config", str(CONFIGS / model), "--config", str(config), "--print_config"])
    assert exit.value.code == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    datasets = printed["data"]["datasets"]
    # The dataset list replaces the model config's whole: nothing inherited from its generated set.
    assert datasets and all(d.get("kind", "folder") == "folder" and "layout" in d for d in datasets)
    assert printed["data"]["prompt"] == "box" and "{prompt}" in printed["output_dir"]


@pytest.mark.parametrize("kind", ["box", "points", "scribble", "coarse_mask", "clicks"])
def test_one_prompt_vocabulary_from_data_to_records(disc, kind):
    _, gt = disc
    assert prompt_from_gt(gt, kind, "disc").kind == kind  # records and resume compare these names
