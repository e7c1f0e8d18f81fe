"""Configs: every shipped one parses, one builder makes their segmenters, and configs written
before the ``segmenter:`` section are refused in one line naming the new key."""
import re
from pathlib import Path

import pytest
import yaml

from paintseg_engine import Segmenter, build_segmenter, missing_weights
from paintseg_engine.baselines import GrabCutSegmenter
from paintseg_engine.commands.predict import main as cli_main
from paintseg_engine.errors import ConfigError
from paintseg_engine.painters import OpenCVPainter

CONFIGS = Path(__file__).resolve().parents[1] / "configs"

DATASET_CONFIGS = sorted((CONFIGS / "datasets").glob("*.yaml"))


@pytest.mark.parametrize("model", ["default.yaml", "grabcut_baseline.yaml"])
@pytest.mark.parametrize("config", DATASET_CONFIGS, ids=lambda p: p.stem)
def test_every_dataset_config_parses_over_each_model_config(config, model, capsys):
    with pytest.raises(SystemExit) as exit:
        cli_main(["predict", "--config", str(CONFIGS / model), "--config", str(config), "--print_config"])
    assert exit.value.code == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    datasets = printed["data"]["datasets"]
    # The dataset list replaces the model config's whole: nothing inherited from its generated set.
    assert datasets and all(d.get("kind", "folder") == "folder" and "layout" in d for d in datasets)
    assert printed["data"]["prompt"] == "box" and "{prompt}" in printed["output_dir"]


def test_one_builder_makes_each_configs_segmenter():
    amcp = build_segmenter(CONFIGS / "default.yaml")
    assert isinstance(amcp, Segmenter) and isinstance(amcp.painter, OpenCVPainter)
    assert amcp.config.frame_size == 320 and amcp.config.log_contrast and amcp.method == "amcp"
    grabcut = build_segmenter(CONFIGS / "grabcut_baseline.yaml")
    assert isinstance(grabcut, GrabCutSegmenter) and (grabcut.iterations, grabcut.seed) == (5, 0)
    section = {"class_path": "paintseg_engine.Segmenter", "init_args": {"config": {"iterations": 2}}}
    assert build_segmenter({"model": {"segmenter": section}}).config.iterations == 2  # a whole config
    assert build_segmenter(section).config.iterations == 2  # the section alone
    assert missing_weights(CONFIGS / "default.yaml") == [] and missing_weights(section) == []


@pytest.mark.parametrize("config, message", [
    ("nope.yaml", "nope.yaml: no such file"),
    ({"class_path": "paintseg_engine.Segmenter", "init_args": {"config": {"frame_size": 3}}},
     "frame_size=3 (allowed: >= 32)"),
    ({"class_path": "paintseg_engine.NoSuchSegmenter"}, "NoSuchSegmenter"),
])
def test_the_builder_says_in_one_line_why_not(config, message):
    with pytest.raises(ConfigError, match=re.escape(message)) as refused:
        build_segmenter(CONFIGS / config if isinstance(config, str) else config)
    assert "\n" not in str(refused.value)


OLD_MODEL_SECTIONS = [
    ({"painter": {"class_path": "paintseg_engine.painters.OpenCVPainter"}}, "model.segmenter.init_args.painter"),
    ({"amcp": {"iterations": 2}}, "model.amcp is now model.segmenter.init_args.config"),
    ({"method": "grabcut", "grabcut_iterations": 5}, "GrabCutSegmenter"),
]


@pytest.mark.parametrize("model, new_key", OLD_MODEL_SECTIONS)
def test_an_old_config_is_refused_naming_the_new_key(tmp_path, capsys, model, new_key):
    old = tmp_path / "old.yaml"
    old.write_text(yaml.safe_dump({"model": model}))
    with pytest.raises(ConfigError, match=re.escape(new_key)):
        build_segmenter(old)
    with pytest.raises(SystemExit) as ended:
        cli_main(["predict", "--config", str(old)])
    assert new_key in ended.value.code and "\n" not in ended.value.code
    with pytest.raises(SystemExit) as ended:
        cli_main(["predict", "--config", str(CONFIGS / "default.yaml"), "--model.amcp.iterations", "2"])
    assert "model.segmenter.init_args.config.iterations" in ended.value.code


def test_method_fills_the_run_folder_from_the_segmenters_class():
    from jsonargparse import Namespace

    from paintseg_engine.commands.predict import fill

    parsed = Namespace(class_path="paintseg_engine.baselines.GrabCutSegmenter", init_args=Namespace(iterations=5))
    assert fill("out/{method}/{prompt}", "box", parsed) == "out/grabcut/box"
    assert fill("out/{method}", "box", {"class_path": "paintseg_engine.Segmenter"}) == "out/amcp"
    assert fill("out/{method}", "box", None) == "out/amcp"  # no section: the default AMCP
