"""The web app's logic without a browser: prompts placed by clicks, one segmenter per config
that keeps its image, configs without weights listed apart. (tests/test_app_browser.py drives it.)"""
import pytest
import torch

pytest.importorskip("gradio", reason="the app extra is not installed: pip install -e '.[app]'")
from paintseg_engine.commands.app import BOX, NEGATIVE, POSITIVE, LoadedImage, PromptDraft, Sessions, build_app  # noqa: E402
from paintseg_engine.prompts import BoxClicksPrompt, BoxPrompt  # noqa: E402
from paintseg_engine.errors import ConfigError  # noqa: E402

from tests.scenes import disc_scene  # noqa: E402
from tests.tiny_config import write_config_without_weights, write_tiny_config  # noqa: E402



def test_two_corner_clicks_make_a_box_holding_both_corners():
    draft = PromptDraft()
    draft.add(BOX, 40, 30)
    assert draft.prompt() is None and "first corner (40, 30)" in draft.describe()
    draft.add(BOX, 10, 50)
    assert draft.prompt() == BoxPrompt((10, 30, 41, 51))
    draft.add(POSITIVE, 20, 40)
    draft.add(NEGATIVE, 5, 5)
    assert draft.prompt() == BoxClicksPrompt((10, 30, 41, 51), [(20, 40)], [(5, 5)])


def test_only_negative_clicks_are_no_prompt_yet():
    draft = PromptDraft()
    draft.add(NEGATIVE, 5, 5)
    assert draft.prompt() is None and "place a box or a positive click" in draft.describe()


def test_a_segmenter_per_config_sets_each_image_once(tmp_path):
    config = write_tiny_config(tmp_path, iterations=1)
    sessions = Sessions("cpu")
    image = LoadedImage("disc.png", disc_scene()[0], key="disc")
    first, set_seconds = sessions.segmenter(str(config), image)
    again, set_again = sessions.segmenter(str(config), image)
    assert again is first and set_seconds is not None and set_again is None
    other = LoadedImage("other.png", torch.flip(disc_scene()[0], dims=[-1]), key="other")
    assert sessions.segmenter(str(config), other)[1] is not None


def test_configs_without_weights_are_listed_apart_and_none_usable_is_refused(tmp_path):
    no_weights = write_config_without_weights(tmp_path)
    usable = write_tiny_config(tmp_path)
    app = build_app([usable, no_weights], tmp_path / "examples")
    radios = {block.elem_id: block for block in app.blocks.values() if getattr(block, "elem_id", None)}
    assert [value for _, value in radios["config"].choices] == [str(usable)]
    assert radios["unavailable"].interactive is False and "no folder" in radios["unavailable"].info
    with pytest.raises(ConfigError, match="no config can run here"):
        build_app([no_weights], tmp_path / "examples")
