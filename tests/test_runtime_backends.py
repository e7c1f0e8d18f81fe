"""Runtime backends over an exported tiny engine: same results as torch, and every mismatch refused."""
import copy
import json
import shutil
import sys

import numpy as np
import pytest
import torch

from paintseg_engine.data import generate_dataset
from paintseg_engine.painters.diffusion import DiffusionPainter, load_components
from paintseg_engine.runtime import build_runners
from paintseg_engine.runtime.errors import BackendUnavailable, EngineMismatch
from paintseg_engine.runtime.manifest import EngineManifest, MANIFEST_NAME
from paintseg_engine.runtime.onnxruntime_backend import require_cuda_provider
from paintseg_engine.runtime.tensorrt_backend import check_build_target, import_tensorrt
from export.random_weights import random_unet
from tests.scenes import disc_scene
from tests.backend_checks import (OUT_OF_RANGE, assert_close, assert_float16_unet_runs_the_fp16_export,
                                  assert_runners_match_torch, box_prompt_mask, predict_masks, read_mask,
                                  unet_inputs)
from tests.tiny_engine import tiny_engine

TINY_PAINTER = dict(steps=2, resolution=64)


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    return tiny_engine(tmp_path_factory)


@pytest.fixture(scope="module")
def models(engine):
    loaded = load_components(str(engine[0]))
    return loaded.unet, loaded.vae


def test_onnxruntime_runners_match_torch_runners(engine, models):
    assert_runners_match_torch("onnxruntime", models, engine[1])


def test_float16_unet_runs_the_fp16_export(engine, models):
    assert_float16_unet_runs_the_fp16_export("onnxruntime", models, engine[1])


@pytest.mark.parametrize("batch, size, message", OUT_OF_RANGE)
def test_shapes_outside_the_exported_range_are_refused(engine, models, batch, size, message):
    ort_unet, _ = build_runners("onnxruntime", *models, engine_dir=engine[1])
    with pytest.raises(EngineMismatch, match=message) as err:
        ort_unet(*unet_inputs(batch, size))
    assert "fp32/unet.onnx" in str(err.value)


def test_other_weights_are_refused(engine, models):
    other = random_unet(full_size=False, seed=1)
    with pytest.raises(EngineMismatch, match="the loaded unet has other weights"):
        build_runners("onnxruntime", other, models[1], engine_dir=engine[1])


@pytest.fixture
def engine_copy(engine, tmp_path):
    return shutil.copytree(engine[1], tmp_path / "engine")


@pytest.mark.parametrize("damage, message", [
    (lambda d: (d / "fp32/vae_decoder.onnx").write_bytes(b"not a model"), "vae_decoder.onnx: changed or corrupt"),
    (lambda d: (d / "fp32/vae_encoder.onnx").unlink(), "vae_encoder.onnx: missing"),
    (lambda d: (d / MANIFEST_NAME).unlink(), "no manifest"),
    (lambda d: (d / MANIFEST_NAME).write_text("{"), "not a valid manifest"),
])
def test_damaged_engine_directories_are_refused(engine_copy, models, damage, message):
    damage(engine_copy)
    with pytest.raises(EngineMismatch, match=message):
        build_runners("onnxruntime", *models, engine_dir=engine_copy)


def test_precision_without_an_export_is_refused(engine, models):
    unet, vae = models
    with pytest.raises(EngineMismatch, match=r"no vae_encoder in fp16 as onnx; present: .*vae_encoder/fp32/onnx"):
        build_runners("onnxruntime", unet, copy.deepcopy(vae).half(), engine_dir=engine[1])


def test_painter_on_onnxruntime_paints_as_on_torch(engine):
    image, _ = disc_scene(40, 56)
    mask = torch.zeros(40, 56, dtype=torch.bool)
    mask[10:30, 12:36] = True
    painted = {}
    for backend, options in [("torch", {}), ("onnxruntime", {"engine_dir": engine[1]})]:
        painter = DiffusionPainter(str(engine[0]), backend=backend, backend_options=options, **TINY_PAINTER)
        painter.set_image(image)
        painted[backend] = painter.paint(mask, 2, torch.Generator().manual_seed(0))
    assert (painted["onnxruntime"] - painted["torch"]).abs().max() < 1e-4


def test_masks_painted_together_on_onnxruntime_come_in_stacks_the_engine_takes(engine):
    """The tiny engine takes batches of 1 to 3: three masks of 1 sample go in one stack, of 2
    samples one by one; 4 samples of one mask cannot fit, and the engine's file is named."""
    image, _ = disc_scene(40, 56)
    masks = [torch.zeros(40, 56, dtype=torch.bool) for _ in range(3)]
    for mask, (y, x) in zip(masks, [(10, 12), (0, 0), (20, 30)]):
        mask[y:y + 16, x:x + 20] = True
    painter = DiffusionPainter(str(engine[0]), backend="onnxruntime", backend_options={"engine_dir": engine[1]},
                               **TINY_PAINTER)
    painter.set_image(image)
    assert painter.unet_runner.max_batch == painter.vae_runner.max_batch == 3
    unet, batches = painter.unet_runner, []
    painter.unet_runner = lambda sample, *args: batches.append(len(sample)) or unet(sample, *args)
    for samples, stacks in [(1, [3]), (2, [2, 2, 2])]:
        batches.clear()
        together = painter.paint_many(masks, samples, [torch.Generator().manual_seed(i) for i in range(3)])
        assert batches == [b for b in stacks for _ in range(TINY_PAINTER["steps"])]
        alone = [painter.paint(m, samples, torch.Generator().manual_seed(i)) for i, m in enumerate(masks)]
        assert all((a - b).abs().max() < 1e-4 for a, b in zip(alone, together))
    painter.unet_runner = unet
    with pytest.raises(EngineMismatch, match=r"batch=4, outside the exported range \[1, 3\]") as err:
        painter.paint_many(masks[:1], 4, [None])
    assert "fp32/unet.onnx" in str(err.value)


def test_predict_on_onnxruntime_writes_the_masks_of_torch(engine, tmp_path, monkeypatch):
    """trainer.predict through the CLI, the backend chosen on the command line: same mask files."""
    checkpoint, engine_dir, _ = engine
    dataset = generate_dataset(tmp_path / "data", num_images=3, height=48, width=64, seed=3)
    monkeypatch.setattr(sys, "argv", ["paintseg"])  # LightningCLI reads args=, not pytest's argv
    masks = {backend: predict_masks(checkpoint, dataset, tmp_path / backend, backend, options)
             for backend, options in [("torch", "{}"), ("onnxruntime", f"{{engine_dir: {engine_dir}}}")]}
    assert len(masks["torch"]) == 3
    assert all(np.array_equal(a, b) for a, b in zip(masks["torch"], masks["onnxruntime"]))
    boxes = [box_prompt_mask(read_mask(p)) for p in sorted((dataset / "masks").glob("*.png"))]
    assert any(not np.array_equal(mask, box) for mask, box in zip(masks["torch"], boxes)), "AMCP must move a mask"


def test_torch_compile_backend_matches_eager(models):
    unet, vae = (copy.deepcopy(m) for m in models)
    compiled_unet, compiled_vae = build_runners("torch-compile", unet, vae, compile_backend="eager")
    eager_unet, eager_vae = build_runners("torch", *models)
    with torch.no_grad():
        assert_close(compiled_unet(*unet_inputs()), eager_unet(*unet_inputs()), tolerance=1e-6)
        latents = torch.randn(1, 4, 8, 8)
        assert_close(compiled_vae.decode(latents), eager_vae.decode(latents), tolerance=1e-6)


def test_torch_compile_can_leave_the_vae_eager(models):
    unet, vae = (copy.deepcopy(m) for m in models)
    build_runners("torch-compile", unet, vae, compile_backend="eager", compile_vae=False)
    assert unet._compiled_call_impl is not None
    assert vae.encoder._compiled_call_impl is None and vae.decoder._compiled_call_impl is None


@pytest.mark.parametrize("backend, require", [("onnxruntime", require_cuda_provider), ("tensorrt", import_tensorrt)])
def test_cuda_backends_match_torch(engine, models, backend, require):
    try:
        require()
    except BackendUnavailable as err:
        pytest.skip(str(err))
    unet, vae = (copy.deepcopy(m).cuda() for m in models)
    exported_unet, _ = build_runners(backend, unet, vae, engine_dir=engine[1])
    with torch.no_grad():
        assert_close(exported_unet(*unet_inputs(device="cuda")),
                     build_runners("torch", unet, vae)[0](*unet_inputs(device="cuda")))


def test_tensorrt_engines_for_another_build_target_are_refused(engine_copy):
    manifest = json.loads((engine_copy / MANIFEST_NAME).read_text())
    with pytest.raises(EngineMismatch, match="no TensorRT engines were built"):
        check_build_target(EngineManifest(engine_copy), {"version": "10.3.0", "gpu": "NVIDIA H100"})
    manifest["tensorrt"] = {"version": "10.3.0", "gpu": "NVIDIA H100 80GB HBM3", "compute_capability": "9.0"}
    (engine_copy / MANIFEST_NAME).write_text(json.dumps(manifest))
    built = EngineManifest(engine_copy)
    check_build_target(built, {"version": "10.3.0", "gpu": "NVIDIA H100 80GB HBM3"})
    with pytest.raises(EngineMismatch, match="built for TensorRT 10.3.0 on NVIDIA H100 80GB HBM3, this is TensorRT 10.7.0"):
        check_build_target(built, {"version": "10.7.0", "gpu": "NVIDIA H100 80GB HBM3"})
    with pytest.raises(EngineMismatch, match="this is TensorRT 10.3.0 on NVIDIA A100"):
        check_build_target(built, {"version": "10.3.0", "gpu": "NVIDIA A100"})
