"""The batch stays where it belongs: Lightning's transfer to an accelerator, replayed here on the
"meta" device, moves none of the batch, so ground truth and metrics stay with the CPU masks."""
import lightning as L
import pytest
import torch

from paintseg_engine.amcp import AMCPConfig, Segmenter
from paintseg_engine.data import generate_dataset
from paintseg_engine.run.datamodule import PaintSegDataModule
from paintseg_engine.run.module import PaintSegModule
from paintseg_engine.run.records import Item

TINY = AMCPConfig(frame_size=64, iterations=2, num_samples=2, log_contrast=True, outpaint_region="background")
ACCELERATOR = torch.device("meta")  # a device that is not the CPU: a tensor moved there has no values


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    root = generate_dataset(tmp_path_factory.mktemp("data") / "gen", num_images=1, height=40, width=56, seed=5)
    return next(iter(PaintSegDataModule([{"name": "gen", "root": str(root)}]).predict_dataloader()[0]))


def lightning_transfer(module: PaintSegModule, batch: list[Item], precision: str) -> list[Item]:
    """What Lightning's predict loop does to a batch before ``predict_step``: the precision's input
    cast, then the module's batch-transfer hooks to the accelerator (``Strategy.batch_to_device``)."""
    batch = L.Trainer(accelerator="cpu", precision=precision, logger=False).precision_plugin.convert_input(batch)
    return module._apply_batch_transfer_handler(batch, device=ACCELERATOR, dataloader_idx=0)


def test_lightning_default_would_move_the_ground_truth(batch):
    moved = L.LightningModule.transfer_batch_to_device(PaintSegModule(), batch, ACCELERATOR, 0)
    assert moved[0].gt.device == ACCELERATOR  # the replay moves tensors: the override below is what keeps them


@pytest.mark.parametrize("precision", ["32-true", "bf16-true"])
def test_batch_stays_on_the_cpu_and_predict_step_runs_on_it(batch, precision):
    module = PaintSegModule(Segmenter(config=TINY))
    moved = lightning_transfer(module, batch, precision)
    item = moved[0]
    assert item.gt is batch[0].gt and item.gt.device.type == "cpu"
    assert item.prompt == batch[0].prompt and item.image.device.type == "cpu"

    prediction = module.predict_step(moved, 0)[0]
    assert prediction.failure is None
    assert prediction.mask.device.type == "cpu" and prediction.mask.shape == item.gt.shape
    assert 0 <= prediction.record.prompt_iou <= 1 and prediction.record.iou > 0.5
