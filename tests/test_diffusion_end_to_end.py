"""PaintSeg with the real components (tiny random weights): the configs run, and caches are exact."""
import json
import sys
from pathlib import Path

import pytest
import torch
import yaml

from paintseg_engine.amcp import segment
from paintseg_engine.commands.predict import main
from paintseg_engine.amcp import AMCPConfig, Segmenter
from paintseg_engine.data import generate_dataset
from paintseg_engine.features.dino import DinoFeatures
from paintseg_engine.painters.diffusion import DiffusionPainter
from paintseg_engine.prompts import BoxPrompt
from tests.scenes import disc_scene

CONFIGS = Path(__file__).parent.parent / "configs"
TINY_PAINTER = dict(steps=2, resolution=64)
TINY_FEATURES = dict(input_size=32)
TINY_AMCP = dict(frame_size=96, iterations=3, num_samples=2)


@pytest.mark.parametrize("config", ["reference.yaml", "fast.yaml"])
def test_predict_with_a_shipped_config_on_tiny_weights(tmp_path, monkeypatch, tiny_weights, config):
    settings = yaml.safe_load((CONFIGS / config).read_text())
    model = settings["model"]["segmenter"]["init_args"]
    # The shipped settings, on tiny weights and small sizes; float16 is for CUDA.
    model["painter"]["init_args"].update(model=tiny_weights[0], dtype="float32", **TINY_PAINTER)
    model["features"]["init_args"].update(model=tiny_weights[1], dtype="float32", **TINY_FEATURES)
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


def test_caches_give_identical_masks(tiny_weights):
    image, gt = disc_scene(48, 64)
    prompt = BoxPrompt((10, 6, 50, 42))
    features = DinoFeatures(tiny_weights[1], **TINY_FEATURES)
    results = {}
    for cache in (True, False):
        # strength < 1 and blending make the painter use the image latents it caches.
        painter = DiffusionPainter(tiny_weights[0], prompt="red disc", strength=0.75, blend_unmasked=True,
                                   cache_text_embeddings=cache, cache_image_latents=cache, **TINY_PAINTER)
        results[cache] = segment(image, prompt, painter, features, AMCPConfig(**TINY_AMCP))
    assert results[True].mask.shape == gt.shape
    assert (results[True].mask != results[True].prompt_mask).any(), "AMCP must have moved the mask"
    assert torch.equal(results[True].mask, results[False].mask)


def test_prompts_in_lockstep_share_each_unet_call_and_get_the_masks_they_get_alone(tiny_weights):
    from tests.test_segmenter import three_prompts

    image, prompts = three_prompts()
    painter = DiffusionPainter(tiny_weights[0], **TINY_PAINTER)
    segmenter = Segmenter(painter, config=AMCPConfig(**{**TINY_AMCP, "frame_size": 64}))
    segmenter.set_image(image)
    alone = [segmenter.predict(p) for p in prompts]
    batches = []
    unet = painter.unet_runner
    painter.unet_runner = lambda sample, *args: batches.append(len(sample)) or unet(sample, *args)
    together = segmenter.predict_many(prompts)
    # Each denoising step of each iteration: one UNet call for the 3 prompts' 2 samples.
    assert batches == [3 * 2] * (TINY_AMCP["iterations"] * TINY_PAINTER["steps"])
    # The stacked paintings differ from the lone ones by float rounding only (test_diffusion_painter):
    # here that moves no pixel, but a contrast on a k-means boundary could, so allow a few.
    for one, many in zip(alone, together):
        assert (one.mask != many.mask).float().mean() <= 0.005
