"""python -m export on a tiny SD-inpainting checkpoint: ONNX files, manifest, parity, refusals."""
import json

import onnxruntime as ort
import pytest
import torch

from export import ExportError, ExportSettings, export_engine
from export import onnx_export
from export.__main__ import main
from export.components import inpainting_components
from export.settings import DEFAULT_TOLERANCE, parse_settings
from paintseg_engine.painters.diffusion import load_components
from paintseg_engine.runtime.manifest import FORMAT_VERSION, MANIFEST_NAME, file_sha256, weights_fingerprint
from tests.tiny_engine import BATCH, IMAGE_SIZE, tiny_engine


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    return tiny_engine(tmp_path_factory)


@pytest.fixture(scope="module")
def loaded(engine):
    return load_components(str(engine[0]))


def ort_output(path, inputs, names):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return torch.from_numpy(session.run(None, {n: t.numpy() for n, t in zip(names, inputs)})[0])


def test_manifest_describes_source_shapes_files_and_versions(engine, loaded):
    _, out, manifest = engine
    assert json.loads((out / MANIFEST_NAME).read_text()) == manifest
    assert manifest["format_version"] == FORMAT_VERSION and manifest["opset"] >= 17
    assert manifest["source"]["fingerprints"] == {"unet": weights_fingerprint(loaded.unet),
                                                  "vae": weights_fingerprint(loaded.vae)}
    assert {"torch", "onnx", "onnxruntime", "diffusers"} <= set(manifest["versions"])
    assert manifest["dims"]["batch"] == dict(zip(("min", "opt", "max"), BATCH), multiple_of=1)
    assert manifest["dims"]["latent_height"]["max"] == IMAGE_SIZE[2] // 8
    # fp16 and fp32 UNets; the VAE only in fp32, as the painter runs SD's force_upcast VAE.
    assert sorted((r["component"], r["precision"]) for r in manifest["models"]) == [
        ("unet", "fp16"), ("unet", "fp32"), ("vae_decoder", "fp32"), ("vae_encoder", "fp32")]
    unet16 = next(r for r in manifest["models"] if r["component"] == "unet" and r["precision"] == "fp16")
    assert unet16["inputs"]["sample"] == {"dtype": "float16", "shape": ["batch", 9, "latent_height", "latent_width"]}
    assert unet16["inputs"]["timestep"]["dtype"] == "float32"
    for record in manifest["models"]:
        assert record["parity"]["relative_error"] <= DEFAULT_TOLERANCE[record["precision"]]
    for name, recorded in manifest["files"].items():
        assert file_sha256(out / name) == recorded["sha256"]
    assert manifest["tensorrt"] is None and "not installed" in manifest["tensorrt_skipped"]


def test_fp32_models_match_torch_beyond_the_traced_shapes(engine, loaded):
    _, out, _ = engine
    generator = torch.Generator().manual_seed(1)
    # The largest batch and a non-square size inside the range: neither is the traced shape.
    dims = {"batch": BATCH[2], "image_height": 96, "image_width": 48, "latent_height": 12, "latent_width": 6}
    for component in inpainting_components(loaded.unet, loaded.vae, text_tokens=77):
        inputs = component.random_inputs(dims, torch.float32, generator)
        with torch.no_grad():
            expected = component.module(*inputs)
        actual = ort_output(out / "fp32" / f"{component.name}.onnx", inputs, list(component.inputs))
        assert actual.shape == expected.shape
        assert (actual - expected).abs().max() <= DEFAULT_TOLERANCE["fp32"] * expected.abs().max(), component.name


def test_fp16_unet_runs_in_onnxruntime_cpu(engine, loaded):
    _, out, _ = engine
    unet = inpainting_components(loaded.unet, loaded.vae, text_tokens=77)[0]
    dims = {"batch": 2, "latent_height": 8, "latent_width": 8}
    inputs = unet.random_inputs(dims, torch.float16, torch.Generator().manual_seed(2))
    try:
        actual = ort_output(out / "fp16" / "unet.onnx", inputs, list(unet.inputs))
    except Exception as err:  # ORT's CPU build may lack float16 kernels
        pytest.skip(f"ONNX Runtime {ort.__version__} on CPU cannot run the fp16 UNet: {err}")
    with torch.no_grad():
        expected = unet.module(*(t.float() for t in inputs))
    assert actual.dtype == torch.float16
    assert (actual.float() - expected).abs().max() <= DEFAULT_TOLERANCE["fp16"] * expected.abs().max()


def test_external_data_parity_failure_and_single_tensorrt_message(engine, tmp_path, monkeypatch, capsys):
    checkpoint = str(engine[0])
    # Every model counts as over the protobuf limit: weights go to one external data file.
    monkeypatch.setattr(onnx_export, "PROTOBUF_LIMIT_BYTES", 0)
    settings = dict(model=checkpoint, components=("vae_decoder",), precisions=("fp32",),
                    batch=BATCH, image_size=IMAGE_SIZE)
    manifest = export_engine(ExportSettings(out=tmp_path / "big", **settings))
    (record,) = manifest["models"]
    assert record["files"] == ["fp32/vae_decoder.onnx", "fp32/vae_decoder.onnx.data"]
    latents = torch.randn(1, 4, 8, 8)
    assert ort_output(tmp_path / "big" / record["files"][0], [latents], ["latents"]).shape == (1, 3, 64, 64)
    assert capsys.readouterr().out.count("TensorRT engines skipped") == 1

    # An impossible tolerance fails the export, with no manifest left to accept the files.
    argv = ["--model", checkpoint, "--out", str(tmp_path / "strict"), "--components", "vae_decoder",
            "--precisions", "fp32", "--fp32-tolerance", "0", "--batch", *map(str, BATCH),
            "--image-size", *map(str, IMAGE_SIZE)]
    assert main(argv) == 1
    assert "differs from PyTorch" in capsys.readouterr().err
    assert not (tmp_path / "strict" / MANIFEST_NAME).exists()


def test_settings_from_yaml_and_command_line(tmp_path):
    config = tmp_path / "export.yaml"
    config.write_text("model: some/checkpoint\nbatch: [1, 4, 8]\nopset: 18\n")
    settings = parse_settings(["--config", str(config), "--out", str(tmp_path / "e"), "--opset", "19"])
    assert settings.model == "some/checkpoint" and settings.batch == (1, 4, 8) and settings.opset == 19
    with pytest.raises(SystemExit):
        parse_settings(["--out", "x", "--model", "m", "--random-full-size"])
    with pytest.raises(SystemExit):
        parse_settings(["--out", "x", "--model", "m", "--batch", "4", "2", "8"])
    config.write_text("modle: typo\n")
    with pytest.raises(SystemExit):
        parse_settings(["--config", str(config), "--out", "x"])


def test_image_sizes_off_the_downsampling_grid_are_refused(engine, tmp_path):
    settings = ExportSettings(out=tmp_path / "e", model=str(engine[0]), image_size=(32, 60, 96))
    with pytest.raises(ExportError, match="multiples of 16"):
        export_engine(settings)
