"""PaintSeg with the real components (tiny random weights): the configs run, and caches are exact."""
import json
import sys
from pathlib import Path

import pytest
import torch
import yaml

from paintseg_engine.amcp import segment
from paintseg_engine.commands.predict import main
from paintseg_engine.amcp import AMCPConfig
from paintseg_engine.data import generate_dataset
from paintseg_engine.features.dino import DinoFeatures
from paintseg_engine.painters.diffusion import DiffusionPainter
from paintseg_engine.prompts import BoxPrompt
from export.random_weights import save_tiny_sd_inpainting, save_tiny_vit
from tests.scenes import disc_scene

CONFIGS = Path(__file__).parent.parent / "configs"
TINY_PAINTER = dict(steps=2, resolution=64)
TINY_FEATURES = dict(input_size=32)
TINY_AMCP = dict(frame_size=96, iterations=3, num_samples=2)


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    root = tmp_path_factory.mktemp("weights")
    return str(save_tiny_sd_inpainting(root / "sd")), str(save_tiny_vit(root / "dino", "dino"))


@pytest.mark.parametrize("config", ["reference.yaml", "fast.yaml"])
def test_predict_with_a_shipped_config_on_tiny_weights(tmp_path, monkeypatch, weights, config):
    settings = yaml.safe_load((CONFIGS / config).read_text())
    model = settings["model"]["segmenter"]["init_args"]
    # The shipped settings, on tiny weights and small sizes; float16 is for CUDA.
    model["painter"]["init_args"].update(model=weights[0], dtype="float32", **TINY_PAINTER)
    model["features"]["init_args"].update(model=weights[1], dtype="float32", **TINY_FEATURES)
    model["config"].update(TINY_AMCP)
    out = tmp_path / "out"
    settings["trainer"].update(accelerator="cpu", enable_progress_bar=False)
    settings["output_dir"] = str(out)
    dataset = generate_dataset(tmp_path / "data", num_images=2, height=48, width=64, seed=2)
    settings["data"]["datasets"] = [{"name": "generated", "root": str(dataset), "kind": "folder"}]
    config_file = tmp_path / config
    config_file.write_text(yaml.safe_dump(settings))

    monkeypatch.setattr(sys, "argv", ["paintseg"])  # LightningCLI reads args=, not pytest's argv
    main(["predict", "--config", str(config_file)])

    records = sorted((out / "generated/records").glob("*.json"))
    assert len(records) == 2
    record = json.loads(records[0].read_text())
    assert [t["step"] for t in record["timings"]] == ["inpaint", "outpaint", "inpaint"]
    assert 0 <= json.loads((out / "generated/metrics.json").read_text())["iou"] <= 1


def test_caches_give_identical_masks(weights):
    image, gt = disc_scene(48, 64)
    prompt = BoxPrompt((10, 6, 50, 42))
    features = DinoFeatures(weights[1], **TINY_FEATURES)
    results = {}
    for cache in (True, False):
        # strength < 1 and blending make the painter use the image latents it caches.
        painter = DiffusionPainter(weights[0], prompt="red disc", strength=0.75, blend_unmasked=True,
                                   cache_text_embeddings=cache, cache_image_latents=cache, **TINY_PAINTER)
        results[cache] = segment(image, prompt, painter, features, AMCPConfig(**TINY_AMCP))
    assert results[True].mask.shape == gt.shape
    assert (results[True].mask != results[True].prompt_mask).any(), "AMCP must have moved the mask"
    assert torch.equal(results[True].mask, results[False].mask)
