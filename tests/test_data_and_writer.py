"""DataModule, prediction writer, resume and bad inputs, on the generated dataset."""
import json

import lightning as L
import numpy as np
import pytest
import torch
from PIL import Image

from paintseg_engine.amcp import AMCPConfig, Segmenter
from paintseg_engine.data import generate_dataset
from paintseg_engine.run.datamodule import DatasetSpec, PaintSegDataModule, SegmentationFolder
from paintseg_engine.imageio import ImageLoadError, _atomic_write, load_image, load_mask, save_png_atomic
from paintseg_engine.metrics import mask_iou
from paintseg_engine.run.module import PaintSegModule
from paintseg_engine.prompts import BoxPrompt, PointsPrompt, ScribblePrompt
from paintseg_engine.run.writer import PredictionWriter, RunFailed

FAST = AMCPConfig(frame_size=96, iterations=3, num_samples=2, log_contrast=True, outpaint_region="background")


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    return generate_dataset(tmp_path_factory.mktemp("gen") / "g", num_images=4, height=60, width=80, seed=1)


def test_generator_is_deterministic_and_idempotent(tmp_path):
    a = generate_dataset(tmp_path / "a", num_images=2, height=40, width=50, seed=3)
    b = generate_dataset(tmp_path / "b", num_images=2, height=40, width=50, seed=3)
    for name in ("images/scene_000.png", "masks/scene_001.png"):
        assert (a / name).read_bytes() == (b / name).read_bytes()
    stamp = (a / "images/scene_000.png").stat().st_mtime_ns
    generate_dataset(a, num_images=2, height=40, width=50, seed=3)
    assert (a / "images/scene_000.png").stat().st_mtime_ns == stamp
    assert load_mask(a / "masks/scene_000.png").unique().tolist() == [0, 255]


def test_generator_regenerates_other_parameters_without_stale_scenes(tmp_path):
    root = generate_dataset(tmp_path / "g", num_images=3, height=40, width=50, seed=3)
    generate_dataset(root, num_images=2, height=40, width=50, seed=4)
    assert sorted(p.name for p in (root / "images").iterdir()) == ["scene_000.png", "scene_001.png"]
    assert sorted(p.name for p in (root / "masks").iterdir()) == ["scene_000.png", "scene_001.png"]


def test_generator_refuses_a_folder_of_other_images(tmp_path):
    (tmp_path / "mine/images").mkdir(parents=True)
    (tmp_path / "mine/images/photo.jpg").write_bytes(b"not ours")
    with pytest.raises(FileExistsError, match="kind: folder"):
        generate_dataset(tmp_path / "mine", num_images=2, height=40, width=50)
    assert [p.name for p in (tmp_path / "mine/images").iterdir()] == ["photo.jpg"]


@pytest.mark.parametrize("prompt, cls", [("box", BoxPrompt), ("points", PointsPrompt), ("scribble", ScribblePrompt)])
def test_items_carry_image_gt_and_a_prompt_inside_the_object(generated, prompt, cls):
    item = SegmentationFolder(generated, "g", prompt)[0]
    assert item.image.shape == (3, 60, 80) and item.gt.shape == (60, 80)
    assert isinstance(item.prompt, cls) and item.name == "scene_000" and item.dataset == "g"
    initial = item.prompt.initial_mask(60, 80)
    if prompt == "points":
        x, y = item.prompt.positive[0]
        assert item.gt[int(y), int(x)]
    else:
        assert mask_iou(initial & item.gt, initial) > 0.6 if prompt == "scribble" else initial.any()


def test_one_predict_dataloader_per_dataset(generated):
    dm = PaintSegDataModule([DatasetSpec("a", str(generated)), DatasetSpec("b", str(generated))])
    loaders = dm.predict_dataloader()
    assert len(loaders) == 2 and dm.dataset_names == ["a", "b"]
    batch = next(iter(loaders[1]))
    assert isinstance(batch, list) and batch[0].dataset == "b"


def test_void_band_is_ignored(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(tmp_path / "images/x.png")
    mask = np.zeros((20, 30), np.uint8)
    mask[5:15, 5:20] = 255
    mask[4, 5:20] = 128
    Image.fromarray(mask).save(tmp_path / "masks/x.png")
    item = SegmentationFolder(tmp_path, "t")[0]
    assert item.ignore.sum() == 15 and not (item.gt & item.ignore).any()


def predict(tmp_path, dataset_root, limit_batches=None):
    out = tmp_path / "out"
    dm = PaintSegDataModule([DatasetSpec("gen", str(dataset_root))], run_dir=str(out))
    trainer = L.Trainer(accelerator="cpu", logger=False, callbacks=[PredictionWriter(str(out))],
                        limit_predict_batches=limit_batches, enable_progress_bar=False)
    trainer.predict(PaintSegModule(Segmenter(config=FAST)), datamodule=dm, return_predictions=False)
    return out


def test_writer_outputs_and_resume(tmp_path, generated):
    with pytest.raises(RunFailed, match="2 item.*neither a record nor a failure"):
        predict(tmp_path, generated, limit_batches=2)  # a run cut short, 2 of 4 images, does not pass for complete
    out = tmp_path / "out"
    records = sorted(p.stem for p in (out / "gen/records").glob("*.json"))
    assert records == ["scene_000", "scene_001"]
    first = {p: (out / "gen/records" / f"{p}.json").stat().st_mtime_ns for p in records}
    out = predict(tmp_path, generated)  # restarted: does the other two only
    assert sorted(p.stem for p in (out / "gen/records").glob("*.json")) == [f"scene_{i:03d}" for i in range(4)]
    assert all((out / "gen/records" / f"{p}.json").stat().st_mtime_ns == t for p, t in first.items())
    metrics = json.loads((out / "gen/metrics.json").read_text())
    assert metrics["images"] == 4 and 0 <= metrics["iou"] <= 1 and 0 < metrics["prompt_iou"] <= 1
    assert (out / "results.csv").read_text().startswith("dataset,prompt,method,images,failed,iou,prompt_iou")
    assert "| gen | box | amcp | 4 | 0 |" in (out / "results.md").read_text()
    mask = load_mask(out / "gen/masks/scene_002.png")
    assert mask.shape == (60, 80) and set(mask.unique().tolist()) <= {0, 255}
    assert load_image(out / "gen/overlays/scene_002.png").shape == (3, 60, 80)
    assert not list(out.rglob("*.tmp"))  # no half-written file left behind
    record = json.loads((out / "gen/records/scene_003.json").read_text())
    assert [t["step"] for t in record["timings"]] == ["inpaint", "outpaint", "inpaint"]


def test_atomic_write_leaves_no_partial_file(tmp_path):
    def write_then_fail(f):
        f.write(b"half a file")
        raise KeyboardInterrupt  # the run is stopped mid-write

    with pytest.raises(KeyboardInterrupt):
        _atomic_write(tmp_path / "m.png", write_then_fail)
    save_png_atomic(tmp_path / "ok.png", np.zeros((2, 2), np.uint8))
    assert [p.name for p in tmp_path.iterdir()] == ["ok.png"]


def test_bad_inputs_get_clear_errors(tmp_path, generated):
    (tmp_path / "corrupt.png").write_bytes(b"not a png at all")
    with pytest.raises(ImageLoadError, match="corrupt.png"):
        load_image(tmp_path / "corrupt.png")
    with pytest.raises(ImageLoadError, match="no such file"):
        load_image(tmp_path / "missing.jpg")
    with pytest.raises(FileNotFoundError, match="expected .*images"):
        SegmentationFolder(tmp_path / "nowhere", "n")
    root = tmp_path / "ds"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(root / "images/a.png")
    Image.fromarray(np.zeros((21, 30), np.uint8)).save(root / "masks/a.png")
    assert "a.png is (21, 30) but image" in SegmentationFolder(root, "ds")[0].error
    Image.fromarray(np.zeros((20, 30), np.uint8)).save(root / "masks/a.png")
    assert "is empty" in SegmentationFolder(root, "ds")[0].error


def test_image_modes_load_as_rgb_floats(tmp_path):
    Image.fromarray(np.full((6, 7), 200, np.uint8), "L").save(tmp_path / "gray.png")
    Image.fromarray(np.full((6, 7, 4), 100, np.uint8), "RGBA").save(tmp_path / "rgba.png")
    Image.fromarray(np.full((6, 7), 65535, np.uint16)).save(tmp_path / "deep.png")
    for name, value in (("gray", 200 / 255), ("rgba", 100 / 255), ("deep", 1.0)):
        image = load_image(tmp_path / f"{name}.png")
        assert image.shape == (3, 6, 7) and image.dtype == torch.float32
        assert torch.allclose(image, torch.full_like(image, value), atol=1e-3), name
