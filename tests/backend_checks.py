"""Checks shared by the backend tests (ONNX Runtime, TensorRT, AOTInductor, CUDA): inputs, tolerances,
runner-against-torch comparisons, and a predict run on a backend."""
import copy
from pathlib import Path

import cv2
import numpy as np
import torch

from paintseg_engine.commands.predict import main
from paintseg_engine.prompts import BoxPrompt, box_of
from paintseg_engine.runtime import build_runners

CONFIGS = Path(__file__).parent.parent / "configs"
FP32_TOLERANCE = 1e-4


def unet_inputs(batch=2, size=8, device="cpu"):
    generator = torch.Generator().manual_seed(0)
    inputs = (torch.randn(batch, 9, size, size, generator=generator), torch.randint(0, 1000, (batch,), generator=generator),
              torch.randn(batch, 77, 32, generator=generator))
    return [t.to(device) for t in inputs]


# UNet inputs outside the tiny exports' ranges (batch 1-3, latents 4-12 in steps of 2), and the refusal.
OUT_OF_RANGE = [
    (4, 8, r"batch=4, outside the exported range \[1, 3\]"),
    (1, 14, r"latent_height=14, outside the exported range \[4, 12\]"),
    (1, 7, r"latent_height=7, outside the exported range \[4, 12\] in steps of 2"),
]


def assert_close(actual, expected, tolerance=FP32_TOLERANCE):
    assert actual.shape == expected.shape and actual.dtype == expected.dtype
    assert (actual - expected).abs().max() <= tolerance * expected.abs().max()


def assert_runners_match_torch(backend, models, engine_dir, unet_shapes=((3, 12),)):
    """An exported backend's runners against torch's: the UNet at each (batch, latent side), the VAE
    off the traced sizes and not square."""
    torch_unet, torch_vae = build_runners("torch", *models)
    unet, vae = build_runners(backend, *models, engine_dir=engine_dir)
    with torch.no_grad():
        for batch, size in unet_shapes:
            assert_close(unet(*unet_inputs(batch, size)), torch_unet(*unet_inputs(batch, size)))
        images = torch.rand(2, 3, 64, 96) * 2 - 1
        assert_close(vae.encode(images), torch_vae.encode(images))
        latents = torch.randn(1, 4, 10, 6)
        assert_close(vae.decode(latents), torch_vae.decode(latents))


def assert_float16_unet_runs_the_fp16_export(backend, models, engine_dir) -> dict:
    """A float16 UNet picks the fp16 export; returns its manifest record."""
    unet, vae = models
    exported, _ = build_runners(backend, copy.deepcopy(unet).half(), vae, engine_dir=engine_dir)
    with torch.no_grad():
        expected = build_runners("torch", unet, vae)[0](*unet_inputs())
    assert exported.model.record["precision"] == "fp16"
    assert_close(exported(*unet_inputs()), expected, tolerance=2e-2)
    return exported.model.record


def predict_masks(checkpoint, dataset, out, backend: str, options: str) -> list[np.ndarray]:
    """paintseg predict over the fast config on the tiny checkpoint, at tiny sizes, in float32 on
    the CPU, with weight-free features and ``backend``: the masks it writes, in name order."""
    main(["predict", "--config", str(CONFIGS / "fast.yaml"), "--trainer.accelerator", "cpu",
          "--trainer.enable_progress_bar", "false", "--output_dir", str(out),
          *(f"--model.segmenter.init_args.{key}={value}" for key, value in {
              "painter.init_args.model": checkpoint, "painter.init_args.dtype": "float32",
              "painter.init_args.steps": 2, "painter.init_args.resolution": 64, "painter.init_args.backend": backend,
              "painter.init_args.backend_options": options,
              "features": "paintseg_engine.features.ColorTextureFeatures",
              "config.frame_size": 64, "config.iterations": 3, "config.num_samples": 2}.items()),
          "--data.datasets", f"[{{name: generated, root: {dataset}, kind: folder}}]"])
    return [read_mask(p) for p in sorted((out / "generated/masks").glob("*.png"))]


def read_mask(path) -> np.ndarray:
    return cv2.imread(str(path), cv2.IMREAD_GRAYSCALE) > 0


def box_prompt_mask(gt: np.ndarray) -> np.ndarray:
    """The mask AMCP starts from under the tight box prompt of a ground-truth mask."""
    return BoxPrompt(box_of(torch.from_numpy(gt))).initial_mask(*gt.shape).numpy()
