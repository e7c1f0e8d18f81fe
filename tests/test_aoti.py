"""AOTInductor packages of the tiny checkpoint (python -m export --formats aoti): the manifest, the
aoti runtime backend against torch over the exported ranges, its refusals, and paintseg predict."""
import copy
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from export import ExportSettings, export_engine
from export.settings import DEFAULT_TOLERANCE, parse_settings
from export.random_weights import random_unet
from paintseg_engine.data import generate_dataset
from paintseg_engine.painters.diffusion import load_components
from paintseg_engine.runtime import build_runners
from paintseg_engine.runtime.aoti_backend import AOTIModel, build_target
from paintseg_engine.runtime.errors import EngineMismatch
from paintseg_engine.runtime.exported import ExportedModel
from paintseg_engine.runtime.manifest import MANIFEST_NAME, EngineManifest, file_sha256, weights_fingerprint
from tests.aoti_engine import BATCH, IMAGE_SIZE, quick_compile, tiny_aoti_engine
from tests.backend_checks import (OUT_OF_RANGE, assert_float16_unet_runs_the_fp16_export, assert_runners_match_torch,
                                  predict_masks, unet_inputs)

# One worker compiles the tiny AOTInductor packages (minutes) and runs every test that needs
# them: on two workers the second would wait on the compile's lock with its core idle.
pytestmark = pytest.mark.xdist_group("aoti")


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    return tiny_aoti_engine(tmp_path_factory)


@pytest.fixture(scope="module")
def models(engine):
    loaded = load_components(str(engine[0]))
    return loaded.unet, loaded.vae


def test_manifest_records_packages_parity_and_build_target(engine, models):
    _, out, manifest = engine
    assert json.loads((out / MANIFEST_NAME).read_text()) == manifest
    assert manifest["source"]["fingerprints"] == {"unet": weights_fingerprint(models[0]),
                                                  "vae": weights_fingerprint(models[1])}
    assert sorted((r["component"], r["precision"], r["format"], r["files"][0]) for r in manifest["models"]) == [
        ("unet", "fp16", "aoti", "aoti/fp16/unet.pt2"), ("unet", "fp32", "aoti", "aoti/fp32/unet.pt2"),
        ("vae_decoder", "fp32", "aoti", "aoti/fp32/vae_decoder.pt2"),
        ("vae_encoder", "fp32", "aoti", "aoti/fp32/vae_encoder.pt2")]
    for record in manifest["models"]:
        assert record["parity"]["runtime"] == "aoti:cpu"
        assert record["parity"]["relative_error"] <= DEFAULT_TOLERANCE[record["precision"]]
    for name, recorded in manifest["files"].items():
        assert file_sha256(out / name) == recorded["sha256"]
    assert manifest["aoti"] == build_target(torch.device("cpu"))
    assert manifest["aoti"]["torch"] == torch.__version__ and list(manifest["exporters"]) == ["aoti"]
    assert manifest["dims"]["latent_height"] == {"min": 4, "opt": 8, "max": 12, "multiple_of": 2}
    assert "no onnx" in manifest["tensorrt_skipped"]


def test_runners_match_torch_over_the_exported_ranges(engine, models):
    """Batch at both ends of its range, latents off the traced size."""
    assert_runners_match_torch("aoti", models, engine[1], unet_shapes=[(1, 8), (BATCH[2], 12), (2, 4)])


def test_float16_unet_runs_the_fp16_package(engine, models):
    record = assert_float16_unet_runs_the_fp16_export("aoti", models, engine[1])
    assert record["files"] == ["aoti/fp16/unet.pt2"]


@pytest.mark.parametrize("batch, size, message", OUT_OF_RANGE)
def test_shapes_outside_the_exported_range_are_refused(engine, models, batch, size, message):
    aoti_unet, _ = build_runners("aoti", *models, engine_dir=engine[1])
    with pytest.raises(EngineMismatch, match=message) as err:
        aoti_unet(*unet_inputs(batch, size))
    assert "aoti/fp32/unet.pt2" in str(err.value)


def test_other_weights_and_missing_precisions_are_refused(engine, models):
    unet, vae = models
    with pytest.raises(EngineMismatch, match="the loaded unet has other weights"):
        build_runners("aoti", random_unet(full_size=False, seed=1), vae, engine_dir=engine[1])
    with pytest.raises(EngineMismatch, match=r"no vae_encoder in fp16 as aoti; present: .*vae_encoder/fp32/aoti"):
        build_runners("aoti", unet, copy.deepcopy(vae).half(), engine_dir=engine[1])


@pytest.fixture
def engine_copy(engine, tmp_path):
    return shutil.copytree(engine[1], tmp_path / "engine")


def edit_manifest(directory: Path, edit) -> None:
    manifest = json.loads((directory / MANIFEST_NAME).read_text())
    edit(manifest)
    (directory / MANIFEST_NAME).write_text(json.dumps(manifest))


@pytest.mark.parametrize("damage, message", [
    (lambda d: (d / "aoti/fp32/vae_decoder.pt2").write_bytes(b"not a package"), "vae_decoder.pt2: changed or corrupt"),
    (lambda d: (d / "aoti/fp32/unet.pt2").unlink(), "unet.pt2: missing"),
    (lambda d: edit_manifest(d, lambda m: m["aoti"].update(torch="2.4.0")),
     "compiled by torch 2.4.0 on CPU .*, this is torch " + torch.__version__.replace("+", r"\+")),
    (lambda d: edit_manifest(d, lambda m: m["aoti"].update(cpu_isa="neon")), r"on CPU \(neon\), this is"),
    (lambda d: edit_manifest(d, lambda m: m.pop("aoti")), "no AOTInductor packages were exported"),
])
def test_damaged_or_foreign_packages_are_refused(engine_copy, models, damage, message):
    damage(engine_copy)
    with pytest.raises(EngineMismatch, match=message):
        build_runners("aoti", *models, engine_dir=engine_copy)


def test_tensors_of_another_device_are_refused(engine):
    """Checked before the package is loaded: a package runs on the device kind it was compiled for."""
    package = AOTIModel(engine[1] / "aoti/fp32/vae_decoder.pt2", "cuda")
    with pytest.raises(EngineMismatch, match="vae_decoder.pt2: compiled for cuda tensors, got cpu ones"):
        package.run([torch.randn(1, 4, 8, 8)])


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_packages_need_a_cuda_device(engine_copy, models):
    edit_manifest(engine_copy, lambda m: m["aoti"].update(device="cuda", gpu="NVIDIA H100 80GB HBM3",
                                                          compute_capability="9.0"))
    with pytest.raises(EngineMismatch, match=r"compiled for CUDA .*NVIDIA H100.*torch sees no CUDA device"):
        build_runners("aoti", *models, engine_dir=engine_copy)


def test_bfloat16_package_and_onnx_refusing_bfloat16(engine, models, tmp_path):
    settings = ExportSettings(out=tmp_path / "bf16", model=str(engine[0]), formats=("aoti",),
                              components=("vae_encoder",), precisions=("bf16",), batch=BATCH, image_size=IMAGE_SIZE)
    with quick_compile():
        (record,) = export_engine(settings)["models"]
    assert record["inputs"]["images"]["dtype"] == "bfloat16" and record["files"] == ["aoti/bf16/vae_encoder.pt2"]
    manifest = EngineManifest(settings.out)
    encoder = ExportedModel(manifest, record, AOTIModel(manifest.check_files(record)[0], "cpu"))
    images = torch.rand(1, 3, 32, 64) * 2 - 1
    with torch.no_grad():
        expected = build_runners("torch", *models)[1].encode(images)
        actual = encoder([images], (1, 4, 4, 8))
    assert actual.dtype == torch.bfloat16
    assert (actual.float() - expected).abs().max() <= DEFAULT_TOLERANCE["bf16"] * expected.abs().max()
    with pytest.raises(SystemExit):
        parse_settings(["--out", "x", "--model", "m", "--precisions", "bf16"])  # ONNX has no bf16 here


def test_predict_on_aoti_writes_the_masks_of_torch(engine, tmp_path, monkeypatch):
    """trainer.predict through the CLI on the tiny diffusion painter, the backend chosen on the
    command line: the same mask files as torch eager."""
    checkpoint, engine_dir, _ = engine
    dataset = generate_dataset(tmp_path / "data", num_images=3, height=48, width=64, seed=3)
    monkeypatch.setattr(sys, "argv", ["paintseg"])  # LightningCLI reads args=, not pytest's argv
    masks = {backend: predict_masks(checkpoint, dataset, tmp_path / backend, backend, options)
             for backend, options in [("torch", "{}"), ("aoti", f"{{engine_dir: {engine_dir}}}")]}
    assert len(masks["torch"]) == 3
    assert all(np.array_equal(a, b) for a, b in zip(masks["torch"], masks["aoti"]))
