"""A user without the diffusion weights runs a shipped config: paintseg predict stops with one short
paragraph saying what to download where, no traceback and none of the config parser's output."""
import os
import subprocess
import sys
from pathlib import Path

import yaml

from paintseg_engine.painters.diffusion import DEFAULT_MODEL

CONFIGS = Path(__file__).parent.parent / "configs"
DOWNLOAD = f"hf download {DEFAULT_MODEL} --local-dir checkpoints/stable-diffusion-inpainting"


def test_shipped_diffusion_configs_name_the_live_mirror():
    assert DEFAULT_MODEL == "stable-diffusion-v1-5/stable-diffusion-inpainting"
    for config in ("reference.yaml", "fast.yaml"):
        assert yaml.safe_load((CONFIGS / config).read_text())["model"]["segmenter"]["init_args"]["painter"]["init_args"]["model"] == DEFAULT_MODEL


def test_predict_without_the_weights_says_what_to_download_and_exits(tmp_path):
    # Offline, with an empty Hugging Face cache: the weights are nowhere.
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    run = subprocess.run([sys.executable, "-m", "paintseg_engine", "predict", "--config", str(CONFIGS / "fast.yaml"),
                          "--trainer.accelerator", "cpu", "--output_dir", str(tmp_path / "out")],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 1
    message = run.stderr[run.stderr.index("paintseg: error:"):].strip()
    assert DOWNLOAD in message and f"model={DEFAULT_MODEL!r}" in message
    assert len(message.splitlines()) <= 4, message
    assert "Traceback" not in run.stderr and "Union" not in run.stderr and "usage:" not in run.stderr
