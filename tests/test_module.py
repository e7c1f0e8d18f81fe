"""The LightningModule: typed items in, predictions out, whichever segmenter; what fails an item
and what fails the run."""
from dataclasses import replace

import lightning as L
import pytest
from torch import nn

from paintseg_engine.amcp import AMCPConfig, Segmenter
from paintseg_engine.baselines import GrabCutSegmenter
from paintseg_engine.clicks import ClickProtocol
from paintseg_engine.errors import EngineMismatch, PromptError
from paintseg_engine.painters import OpenCVPainter
from paintseg_engine.prompts import BoxPrompt, PointsPrompt
from paintseg_engine.run.datamodule import DatasetSpec, PaintSegDataModule
from paintseg_engine.run.module import PaintSegModule
from paintseg_engine.run.records import Item
from paintseg_engine.run.writer import PredictionWriter, RunFailed

class DummyNetworkPainter(OpenCVPainter, nn.Module):
    """A painter that is also a torch module, as the diffusion painter is."""

    def __init__(self):
        nn.Module.__init__(self)
        OpenCVPainter.__init__(self)


FAST = AMCPConfig(frame_size=96, iterations=3, num_samples=2, log_contrast=True, outpaint_region="background")


def test_clicks_run_through_predict_step(disc):
    image, gt = disc
    item = Item("disc", "d", image, ClickProtocol(max_clicks=2, stop_iou=None), gt)
    # Without refinement the first click leaves an error for the second (with it, the disc is exact).
    prediction = PaintSegModule(Segmenter(config=replace(FAST, refine_iterations=0))).predict_step([item], 0)[0]
    record = prediction.record
    assert len(record.click_ious) == 2 and record.iou == record.click_ious[-1]
    assert len(record.clicks) == 2 and record.clicks[0][2] is True  # the first click is positive
    assert record.click_ious[0] >= 0.9 and record.noc85 == record.noc90 == 1  # one click finds the disc
    assert record.prompt_iou is None
    assert isinstance(prediction.prompt, PointsPrompt) and len(prediction.prompt.positive) >= 1
    assert [t["step"] for t in record.timings] == ["inpaint", "outpaint", "inpaint"] * 2
    failed = PaintSegModule(GrabCutSegmenter()).predict_step([item], 0)[0]
    assert failed.record is None and "GrabCut baseline starts from a box" in failed.failure.error


def test_grabcut_segmenter_writes_the_same_records(tmp_path):
    def run(prompt, output_dir, compare_with=()):
        dm = PaintSegDataModule([DatasetSpec("gen", str(tmp_path / "gen"), kind="synthetic", num_images=2)], prompt,
                                run_dir=str(output_dir))
        writer = PredictionWriter(str(output_dir), compare_with=list(compare_with), settings={"prompt": prompt})
        trainer = L.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, callbacks=[writer])
        trainer.predict(PaintSegModule(GrabCutSegmenter()), datamodule=dm, return_predictions=False)

    out = tmp_path / "out"
    run("box", out / "grabcut", [str(out / "amcp"), str(out / "grabcut")])
    assert "| gen | box | grabcut | 2 | 0 |" in (out / "grabcut/results.md").read_text()
    with pytest.raises(RunFailed, match="other settings .*prompt: 'box' -> 'scribble'"):  # no mixing runs
        run("scribble", out / "grabcut")


class FailingSegmenter(Segmenter):
    """AMCP whose predict raises ``error``: what an engine or a prompt might raise mid-run."""

    def __init__(self, error: Exception):
        super().__init__(config=FAST)
        self.error = error

    def predict(self, prompt, on_step=None):
        raise self.error


def test_an_item_error_is_a_failed_item_but_an_engine_mismatch_fails_the_run(disc):
    image, gt = disc
    item = Item("disc", "d", image, BoxPrompt((20, 20, 100, 90)), gt)
    failed = PaintSegModule(FailingSegmenter(PromptError("box outside"))).predict_step([item], 0)[0]
    assert failed.record is None and failed.failure.error == "disc: box outside"
    unread = PaintSegModule().predict_step([Item("bad", "d", error="bad.png: cannot be read")], 0)[0]
    assert unread.failure.error == "bad.png: cannot be read"
    module = PaintSegModule(FailingSegmenter(EngineMismatch("engine built for 512 px, given 640")))
    with pytest.raises(EngineMismatch, match="512"):  # a ValueError, yet not an item's fault
        module.predict_step([item], 0)
    assert not module.segmenter.is_image_set  # the session forgot the image even so


def test_the_modules_networks_are_its_submodules():
    module = PaintSegModule(Segmenter(DummyNetworkPainter(), config=FAST))
    assert list(dict(module.named_children())["components"].keys()) == ["painter"]
    assert list(PaintSegModule(GrabCutSegmenter()).components.keys()) == []
