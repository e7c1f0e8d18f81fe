"""Every Lightning precision gives masks, on the weight-free default and on the diffusion painter
with DINO (tiny random weights), is recorded in settings.json, and a resume with another one is
refused; and a bfloat16 ``paintseg predict`` runs end to end on the CPU (CUDA's half path)."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from paintseg_engine.commands.predict import main
from paintseg_engine.data import generate_dataset

REPO = Path(__file__).resolve().parents[1]
PRECISIONS = ["16-true", "bf16-true", "bf16-mixed", "16-mixed", "32-true", "64-true"]
# Lightning runs 16-mixed as bf16-mixed on a CPU (AMP has no float16 there), and says so.
ON_CPU = {"16-mixed": "bf16-mixed"}
TINY_AMCP = {"frame_size": 64, "iterations": 2, "num_samples": 2, "log_contrast": True, "outpaint_region": "background"}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return generate_dataset(tmp_path_factory.mktemp("data") / "gen", num_images=1, height=40, width=56, seed=5)


def write_config(folder: Path, dataset: Path, weights: tuple[str, str] | None = None, dtype: str = "float32") -> Path:
    """A run of the weight-free default, or with ``weights`` the diffusion painter and DINO in ``dtype``."""
    init_args = {"config": TINY_AMCP}
    if weights:
        init_args["painter"] = {"class_path": "paintseg_engine.painters.diffusion.DiffusionPainter",
                            "init_args": {"model": weights[0], "steps": 2, "resolution": 64, "dtype": dtype}}
        init_args["features"] = {"class_path": "paintseg_engine.features.dino.DinoFeatures",
                             "init_args": {"model": weights[1], "input_size": 32, "dtype": dtype}}
    model = {"segmenter": {"class_path": "paintseg_engine.Segmenter", "init_args": init_args}}
    config = {"seed_everything": 0, "output_dir": str(folder / "out"), "model": model,
              "trainer": {"accelerator": "cpu", "devices": 1, "logger": False, "enable_progress_bar": False},
              "data": {"datasets": [{"name": "gen", "root": str(dataset)}]}}
    path = folder / "run.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def check_run(out: Path, precision: str, accelerator: str = "cpu") -> None:
    record = json.loads((out / "gen/records/scene_000.json").read_text())
    assert 0 <= record["iou"] <= 1 and (out / "gen/masks/scene_000.png").is_file()
    trainer = json.loads((out / "settings.json").read_text())["settings"]["trainer"]
    expected = ON_CPU.get(precision, precision) if accelerator == "cpu" else precision
    assert trainer == {"precision": expected, "accelerator": accelerator}


@pytest.mark.parametrize("precision", PRECISIONS)
def test_weight_free_default_runs_in_every_precision(tmp_path, monkeypatch, dataset, precision):
    monkeypatch.setattr(sys, "argv", ["paintseg"])  # LightningCLI reads args=, not pytest's argv
    main(["predict", "--config", str(write_config(tmp_path, dataset)), "--trainer.precision", precision])
    check_run(tmp_path / "out", precision)


@pytest.mark.parametrize("precision", PRECISIONS)
def test_diffusion_and_dino_run_in_every_precision(tmp_path, monkeypatch, dataset, tiny_weights, precision):
    monkeypatch.setattr(sys, "argv", ["paintseg"])
    main(["predict", "--config", str(write_config(tmp_path, dataset, tiny_weights)), "--trainer.precision", precision])
    check_run(tmp_path / "out", precision)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("precision", ["16-true", "bf16-mixed", "16-mixed"])
def test_the_main_command_on_cuda(tmp_path, monkeypatch, dataset, tiny_weights, precision):
    """The batch's ground truth on the CPU meets the masks there (benchmarks/gpu/run.sh runs this)."""
    monkeypatch.setattr(sys, "argv", ["paintseg"])
    main(["predict", "--config", str(write_config(tmp_path, dataset, tiny_weights)), "--trainer.accelerator", "gpu",
          "--trainer.precision", precision])
    check_run(tmp_path / "out", precision, accelerator="cuda")


def test_resume_with_another_precision_is_refused(tmp_path, monkeypatch, dataset):
    monkeypatch.setattr(sys, "argv", ["paintseg"])
    config = str(write_config(tmp_path, dataset))
    main(["predict", "--config", config, "--trainer.precision", "32-true"])
    with pytest.raises(SystemExit, match=r"other settings \(trainer.precision: '32-true' -> 'bf16-true'\)"):
        main(["predict", "--config", config, "--trainer.precision", "bf16-true"])
    main(["predict", "--config", config, "--trainer.precision", "32-true"])  # the same precision resumes


def test_bfloat16_predict_end_to_end_through_the_cli(tmp_path, dataset, tiny_weights):
    """The painter and DINO in bfloat16 (the GPU run's float16 path, as far as a CPU goes): any
    float32 tensor meeting a bfloat16 module in the loop stops the run."""
    config = write_config(tmp_path, dataset, tiny_weights, dtype="bfloat16")
    run = subprocess.run([sys.executable, "-m", "paintseg_engine", "predict", "--config", str(config)],
                         cwd=REPO, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    check_run(tmp_path / "out", "32-true")
    assert "| gen | box | amcp | 1 | 0 |" in run.stdout
