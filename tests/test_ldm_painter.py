"""latent-diffusion's inpainting model: the original checkpoint converted to diffusers folders, the
painter equal to the released script's sampling on the original weights, refusals in one line,
the paper's config through the CLI, and the exported UNet / VQ autoencoder."""
import json
import sys
from pathlib import Path

import pytest
import torch
import yaml
from diffusers import DDIMScheduler, VQModel

from export import ExportSettings, export_engine
from paintseg_engine.commands.predict import main as predict
from paintseg_engine.data import generate_dataset
from paintseg_engine.painters.ldm import LDMInpaintPainter, load_ldm_components
from paintseg_engine.painters.ldm_checkpoint import CheckpointError, convert, main as convert_main
from paintseg_engine.painters.ldm_unet import LDMUNet2DModel
from paintseg_engine.pretrained import MissingWeightsError
from tests.ldm_original import released_inpaint, write_tiny_checkpoint

CONFIGS = Path(__file__).parent.parent / "configs"
STEPS, SAMPLES, SIZE = 3, 2, 32


@pytest.fixture(scope="module")
def original(tmp_path_factory):
    """(config.yaml, last.ckpt) of a tiny model in the release's format, with an EMA copy."""
    return write_tiny_checkpoint(tmp_path_factory.mktemp("ldm-original"))


@pytest.fixture(scope="module")
def converted(original, tmp_path_factory):
    return convert(*original, tmp_path_factory.mktemp("ldm") / "converted")


def image_and_mask():
    image = torch.rand(3, SIZE, SIZE, generator=torch.Generator().manual_seed(0))
    mask = torch.zeros(SIZE, SIZE, dtype=torch.bool)
    mask[6:22, 9:27] = True
    return image, mask


def test_painter_equals_the_released_sampling_loop_on_the_original_weights(original, converted):
    image, mask = image_and_mask()
    painter = LDMInpaintPainter(str(converted), steps=STEPS)
    painter.set_image(image)
    painted = painter.paint(mask, SAMPLES, torch.Generator().manual_seed(3))

    latent = SIZE // 2  # the tiny first stage downsamples 2x
    noise = torch.randn((SAMPLES, 3, latent, latent), generator=torch.Generator().manual_seed(3))
    state = torch.load(original[1], weights_only=True)["state_dict"]
    expected = released_inpaint(state, image[None], mask[None, None].float(), noise, STEPS)
    assert painted.shape == (SAMPLES, 3, SIZE, SIZE)
    assert (painted - expected).abs().max() < 1e-4
    assert torch.equal(painted[:, :, ~mask], image[:, ~mask].expand(SAMPLES, -1, -1))  # pasted back
    assert (painted[:, :, mask] - image[:, mask]).abs().mean() > 0.05  # and painted inside
    assert not torch.equal(painted[0], painted[1])  # each sample its own noise


def test_a_second_load_is_plain_from_pretrained(converted):
    unet = LDMUNet2DModel.from_pretrained(converted / "unet")
    vqvae = VQModel.from_pretrained(converted / "vqvae")
    scheduler = DDIMScheduler.from_pretrained(converted / "scheduler")
    assert unet.config.attention_heads == 2 and unet.config.in_channels == 7
    assert vqvae.config.num_vq_embeddings == 16 and scheduler.config.steps_offset == 1
    assert all(m.heads == 2 for m in unet.modules() if type(m).__name__ == "Attention")


def damaged(original, folder: Path, state_change=None, config_change=None) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    config = yaml.safe_load(original[0].read_text())
    if config_change:
        config_change(config["model"]["params"])
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    checkpoint = torch.load(original[1], weights_only=True)
    if state_change:
        state_change(checkpoint["state_dict"])
    torch.save(checkpoint, folder / "last.ckpt")
    return folder / "config.yaml", folder / "last.ckpt"


def drop(key):
    return lambda state: state.pop(key)


def set_unet(key, value):
    return lambda params: params["unet_config"]["params"].__setitem__(key, value)


def drop_ema(state):
    for key in [k for k in state if k.startswith("model_ema.")]:
        state.pop(key)


@pytest.mark.parametrize("state_change, config_change, message", [
    (drop("model.diffusion_model.out.2.weight"), None, "1 UNet weights are missing, e.g. model.diffusion_model.out.2.weight"),
    (drop("model_ema.diffusion_modelinput_blocks31qkvweight"), None,
     "the EMA weights lack 1 of the UNet's, e.g. model_ema.diffusion_modelinput_blocks31qkvweight"),
    (lambda s: drop_ema(s) or s.pop("model.diffusion_model.input_blocks.3.1.qkv.bias"), None,
     "UNet attention weight model.diffusion_model.input_blocks.3.1.qkv.bias is missing"),
    (drop_ema, lambda p: p.__setitem__("unet_config", {**p["unet_config"], "params": {
        **p["unet_config"]["params"], "attention_resolutions": []}}),
     "UNet weights have no place in the config's model, e.g. model.diffusion_model.input_blocks.3.1.norm"),
    (lambda s: [s.pop(k) for k in [k for k in s if k.startswith("first_stage_model.")]], None,
     "no first_stage_model.* weights"),
    (drop("first_stage_model.decoder.conv_out.bias"), None,
     "VQ autoencoder weights are missing, e.g. first_stage_model.decoder.conv_out.bias"),
    (None, set_unet("model_channels", 64), "UNet weight model.diffusion_model.time_embed.0.weight has shape"),
    (None, set_unet("resblock_updown", False), "resblock_updown=False is not supported"),
    (None, lambda p: p.__setitem__("cond_stage_config", {"target": "x"}), "cond_stage_config"),
])
def test_converter_refuses_in_one_line_naming_what_is_wrong(original, tmp_path, capsys, state_change, config_change,
                                                            message):
    config, checkpoint = damaged(original, tmp_path / "in", state_change, config_change)
    assert convert_main(["--config", str(config), "--checkpoint", str(checkpoint), "--out", str(tmp_path / "out")]) == 1
    error = capsys.readouterr().err
    assert message in error and len(error.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()  # nothing half-written


def test_converter_refuses_absent_files_and_foreign_configs(original, tmp_path):
    with pytest.raises(CheckpointError, match="last.ckpt: no such file"):
        convert(original[0], tmp_path / "last.ckpt", tmp_path / "out")
    (tmp_path / "other.yaml").write_text(yaml.safe_dump({"model": {"target": "ldm.models.autoencoder.VQModel",
                                                                   "params": {}}}))
    with pytest.raises(CheckpointError, match="not a latent-diffusion model config"):
        convert(tmp_path / "other.yaml", original[1], tmp_path / "out")
    (tmp_path / "junk.ckpt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="junk.ckpt: cannot be read as a checkpoint"):
        convert(original[0], tmp_path / "junk.ckpt", tmp_path / "out")


def test_painter_without_converted_weights_says_how_to_get_them(tmp_path):
    with pytest.raises(MissingWeightsError, match="ldm_checkpoint --config config.yaml") as error:
        load_ldm_components(tmp_path / "absent")
    assert str(tmp_path / "absent") in str(error.value)


def paper_config(tmp_path: Path, ldm: str, sd: str | None, dino: str | None) -> Path:
    """configs/paper.yaml on the given weights, at tiny sizes."""
    settings = yaml.safe_load((CONFIGS / "paper.yaml").read_text())
    model = settings["model"]["segmenter"]["init_args"]
    model["painter"]["init_args"].update(model=ldm, steps=2)
    model["outpaint_painter"]["init_args"].update(model=sd, steps=2, resolution=64)
    model["features"]["init_args"].update(model=dino, input_size=32)
    model["config"].update(frame_size=64, iterations=3, num_samples=2)
    settings["trainer"].update(accelerator="cpu", enable_progress_bar=False)
    settings["output_dir"] = str(tmp_path / "out")
    dataset = generate_dataset(tmp_path / "data", num_images=1, height=48, width=64, seed=2)
    settings["data"]["datasets"] = [{"name": "generated", "root": str(dataset), "kind": "folder"}]
    path = tmp_path / "paper_tiny.yaml"
    path.write_text(yaml.safe_dump(settings))
    return path


def test_paper_config_on_the_converted_tiny_checkpoint_writes_masks(converted, tmp_path, monkeypatch):
    from export.random_weights import save_tiny_sd_inpainting, save_tiny_vit

    sd, dino = save_tiny_sd_inpainting(tmp_path / "sd"), save_tiny_vit(tmp_path / "dino", "dino")
    config = paper_config(tmp_path, str(converted), str(sd), str(dino))
    monkeypatch.setattr(sys, "argv", ["paintseg"])  # LightningCLI reads args=, not pytest's argv
    predict(["predict", "--config", str(config)])

    out = tmp_path / "out" / "generated"
    assert len(list((out / "masks").glob("*.png"))) == 1
    record = json.loads(sorted((out / "records").glob("*.json"))[0].read_text())
    assert [(t["step"], t["painter"]) for t in record["timings"]] == [
        ("inpaint", "LDMInpaintPainter"), ("outpaint", "DiffusionPainter"), ("inpaint", "LDMInpaintPainter")]


def test_paper_config_without_the_ldm_weights_is_refused_in_one_line(tmp_path, monkeypatch, capsys):
    config = paper_config(tmp_path, str(tmp_path / "absent"), None, None)
    monkeypatch.setattr(sys, "argv", ["paintseg"])
    with pytest.raises(SystemExit) as stop:
        predict(["predict", "--config", str(config)])
    message = str(stop.value.code)
    assert message.startswith("paintseg: error: LDM inpainting weights not found in") and "\n" not in message


def test_exported_unet_and_vq_run_as_the_painter_does(converted, tmp_path):
    out = tmp_path / "engine"
    manifest = export_engine(ExportSettings(out=out, model=str(converted), precisions=("fp32",), batch=(1, 2, 2),
                                            image_size=(32, 32, 64)))
    records = {r["component"]: r for r in manifest["models"]}
    assert sorted(records) == ["unet", "vae_decoder", "vae_encoder"]
    assert list(records["unet"]["inputs"]) == ["sample", "timestep"]  # no text
    assert records["unet"]["inputs"]["sample"]["shape"] == ["batch", 7, "latent_height", "latent_width"]
    assert manifest["vae_scale_factor"] == 2 and all(r["parity"]["relative_error"] <= 1e-4 for r in records.values())

    image, mask = image_and_mask()
    painted = {}
    for backend, options in (("torch", {}), ("onnxruntime", {"engine_dir": str(out)})):
        painter = LDMInpaintPainter(str(converted), steps=STEPS, backend=backend, backend_options=options)
        painter.set_image(image)
        painted[backend] = painter.paint(mask, SAMPLES, torch.Generator().manual_seed(3))
    assert (painted["onnxruntime"] - painted["torch"]).abs().max() < 1e-4


def test_vq_decoder_compiles_with_aotinductor(converted, tmp_path, capsys):
    """The one AOTInductor compile of these tests: the VQ decoder, whose quantizer (nearest code)
    is what the SD VAE does not have; the UNet compiles the same way (export/README.md)."""
    from export.__main__ import main as export_main
    from export.components import inpainting_components
    from paintseg_engine.runtime.aoti_backend import AOTIModel
    from tests.aoti_engine import quick_compile

    out = tmp_path / "aoti"
    with quick_compile():
        assert export_main(["--model", str(converted), "--out", str(out), "--formats", "aoti", "--precisions", "fp32",
                            "--components", "vae_decoder", "--batch", "1", "2", "2", "--image-size", "32", "32", "64"]) == 0
    (record,) = json.loads((out / "manifest.json").read_text())["models"]
    assert (record["component"], record["format"]) == ("vae_decoder", "aoti")
    assert record["parity"]["relative_error"] <= 1e-4

    components = load_ldm_components(converted)
    decoder = inpainting_components(components.unet, components.vqvae, text_tokens=0)[2]
    latents = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(4))  # not the traced shape
    with torch.no_grad():
        expected = decoder.module(latents)
    actual = AOTIModel(out / record["files"][0], "cpu").run([latents])
    assert (actual - expected).abs().max() <= 1e-4 * expected.abs().max()


def test_benchmark_suite_refuses_two_painter_settings(tmp_path):
    from benchmarks.cases import load_config

    config = tmp_path / "bench.yaml"
    config.write_text(yaml.safe_dump({"settings": {"paper": {"config": "configs/paper.yaml"}},
                                      "cases": [{"name": "paper", "settings": "paper"}]}))
    with pytest.raises(ValueError, match="outpaint_painter.*benchmarks.paper_mix"):
        load_config(config)
