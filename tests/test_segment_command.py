"""``paintseg segment``: one image and a prompt in; mask, overlay, step strip and a line per
iteration out; bad input ends with one line naming it."""
import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from paintseg_engine import AMCPConfig, BoxPrompt, PointsPrompt, Segmenter, load_image
from paintseg_engine.__main__ import main as paintseg
from paintseg_engine.prompts import BoxClicksPrompt, PromptError
from paintseg_engine.build import build_segmenter, missing_weights
from paintseg_engine.commands.segment import main, prompt_from
from paintseg_engine.visualize import LABEL_HEIGHT, STRIP_TILE_HEIGHT

from tests.scenes import disc_scene
from tests.tiny_config import TINY_AMCP, write_config_without_weights, write_tiny_config

BOX = (10, 10, 110, 90)  # around the disc of disc_scene()
WIDE_CLICK_RADIUS = 0.08  # of the frame side: 7.7 px at 96


@pytest.fixture
def photo(tmp_path):
    image, gt = disc_scene()
    path = tmp_path / "photo.png"
    Image.fromarray((image.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)).save(path)
    return path


@pytest.fixture
def tiny_config(tmp_path):
    return write_tiny_config(tmp_path)


def box_arg(box) -> str:
    return ",".join(str(v) for v in box)


def test_writes_the_engines_mask_overlay_and_strip_and_a_line_per_step(photo, tiny_config, tmp_path, capsys):
    out = tmp_path / "out"
    main([str(photo), "--box", box_arg(BOX), "--config", str(tiny_config), "-o", str(out / "mask.png"),
          "--overlay", str(out / "overlay.png"), "--steps", str(out / "steps.png")])
    printed = capsys.readouterr().out
    assert [line.split()[:3] for line in printed.splitlines() if line.startswith("step ")] == [
        ["step", "1/3", "I-step"], ["step", "2/3", "O-step"], ["step", "3/3", "I-step"]]
    assert "paint" in printed and "features" in printed and "set_image" in printed

    segmenter = build_segmenter(tiny_config)
    segmenter.set_image(load_image(photo))
    expected = segmenter.predict(BoxPrompt(BOX)).mask
    written = torch.from_numpy(np.asarray(Image.open(out / "mask.png")) > 0)
    assert torch.equal(written, expected)
    assert np.asarray(Image.open(out / "overlay.png")).shape == (96, 128, 3)
    strip = np.asarray(Image.open(out / "steps.png"))
    assert strip.shape[0] == LABEL_HEIGHT + STRIP_TILE_HEIGHT
    assert strip.shape[1] > 4 * STRIP_TILE_HEIGHT  # the prompt and three steps, side by side


def test_the_paintseg_command_dispatches_segment(photo, tiny_config, capsys):
    paintseg(["segment", str(photo), "--box", box_arg(BOX), "--config", str(tiny_config)])
    assert "step 3/3 I-step" in capsys.readouterr().out


@pytest.mark.parametrize("arguments, message", [
    (["missing.png", "--box", "1,1,5,5"], "missing.png: no such file"),
    (["{notes}", "--box", "1,1,5,5"], "cannot be read as an image"),
    (["{photo}", "--box", "10,10,500,50"], "lies outside the 128x96"),
    (["{photo}", "--click", "200,20"], "positive point (200.0, 20.0) lies outside"),
    (["{photo}", "--click-neg", "20,20"], "give a box or at least one positive click"),
    (["{photo}", "--box", "1,1,5,5", "--config", "{no_weights}"], "no folder"),
    (["{photo}", "--box", "1,1,5,5", "--config", "absent.yaml"], "config absent.yaml: no such file"),
    (["{photo}", "--box", "-5,-5,50,50"], "box (-5.0, -5.0, 50.0, 50.0) lies outside"),
    (["{photo}", "--box", "1,1,5,5", "--config", "{photo}"], "photo.png: not a YAML file"),
    (["{photo}", "--box", "1,1,5,5", "--config", "{bad_types}"], "bad_types.yaml: "),
    (["{photo}", "--box", "1,1,5,5", "--device", "cuda:7"], "device 'cuda:7' is not usable here"),
    (["{photo}", "--box", "1,1,5,5", "--max-pixels", "1000"], "photo.png: 128x96 is 12,288 pixels, more than "
                                                                "the limit of 1,000"),
])
def test_bad_input_ends_with_one_line_naming_it(arguments, message, photo, tmp_path):
    notes = tmp_path / "notes.png"
    notes.write_text("not an image")
    bad_types = tmp_path / "bad_types.yaml"
    bad_types.write_text(yaml.safe_dump({"model": {"amcp": {"iterations": "many"}}}))
    paths = {"photo": photo, "notes": notes, "no_weights": write_config_without_weights(tmp_path),
             "bad_types": bad_types}
    with pytest.raises(SystemExit) as ended:
        paintseg(["segment", *(a.format(**paths) for a in arguments)])
    assert ended.value.code.startswith("paintseg segment: error: ")
    assert message in ended.value.code and "\n" not in ended.value.code


@pytest.mark.parametrize("outputs, message", [
    (["-o", "{photo}"], "-o {photo} is the input image"),
    (["-o", "{out}", "--overlay", "{out}"], "--overlay {out} is the file -o writes"),
])
def test_an_output_on_the_input_or_on_another_output_is_refused(outputs, message, photo, tmp_path, capsys):
    paths = {"photo": photo, "out": tmp_path / "mask.png"}
    before = photo.read_bytes()
    with pytest.raises(SystemExit) as ended:
        main([str(photo), "--box", box_arg(BOX), *(o.format(**paths) for o in outputs)])
    assert ended.value.code == 2 and message.format(**paths) in capsys.readouterr().err
    assert photo.read_bytes() == before and not paths["out"].exists()


def test_a_config_is_available_when_its_weights_folder_is_here(tmp_path):
    config = tmp_path / "local.yaml"
    folder = tmp_path / "checkpoints" / "dino"
    config.write_text(yaml.safe_dump({"model": {"segmenter": {"class_path": "paintseg_engine.Segmenter", "init_args": {
        "features": {"class_path": "paintseg_engine.features.dino.DinoFeatures", "init_args": {"model": str(folder)}}}}}}))
    assert missing_weights(config) == [f"features: no folder {folder}"]
    folder.mkdir(parents=True)
    assert missing_weights(config) == []


def test_prompt_from_a_box_clicks_or_both():
    assert prompt_from((1, 2, 30, 40)) == BoxPrompt((1, 2, 30, 40))
    assert prompt_from(None, [(5, 6)], [(7, 8)]) == PointsPrompt([(5, 6)], [(7, 8)])
    both = prompt_from((1, 2, 30, 40), [(5, 6)], [(7, 8)])
    assert isinstance(both, BoxClicksPrompt) and both.points() == ([(5.0, 6.0)], [(7.0, 8.0)])
    with pytest.raises(PromptError, match="positive click"):
        prompt_from(None, [], [(7, 8)])


def test_clicks_correct_a_box(scene):
    """The box gives the start and the limits, the clicks stay hard constraints."""
    image, gt = scene
    # Discs wider than the morphology kernel: a closing would fill a narrower one back in.
    session = Segmenter(config=AMCPConfig(**TINY_AMCP, click_radius=WIDE_CLICK_RADIUS))
    session.set_image(image)
    inside, outside = (57, 48), (15, 15)  # a pixel of the disc, one of the background in BOX
    negative = session.predict(BoxClicksPrompt(BOX, [], [inside])).mask
    positive = session.predict(BoxClicksPrompt(BOX, [outside], [])).mask
    assert gt[inside[1], inside[0]] and not negative[inside[1], inside[0]]
    assert not gt[outside[1], outside[0]] and positive[outside[1], outside[0]]
    with pytest.raises(PromptError, match="negative point"):
        session.predict(BoxClicksPrompt(BOX, [], [(500, 5)]))
