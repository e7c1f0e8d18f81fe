"""Helpers for the tests of dataset runs: the smallest config, ``paintseg`` in a fresh process,
and a predict run in this process."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from unittest import mock

from paintseg_engine.amcp import AMCPConfig, Segmenter
from paintseg_engine.run.datamodule import PaintSegDataModule

REPO = Path(__file__).resolve().parents[1]
TINY_CONFIG = """
seed_everything: 0
trainer: {{accelerator: cpu, devices: 1, logger: false, enable_progress_bar: false}}
output_dir: {out}
model:
  segmenter:
    class_path: paintseg_engine.Segmenter
    init_args:
      config: {{frame_size: 64, iterations: 2, num_samples: 2, log_contrast: true, outpaint_region: background}}
data:
  datasets:
    - {{name: gen, root: {root}}}
"""


def write_config(tmp_path, root, out, name="run.yaml"):
    path = tmp_path / name
    path.write_text(TINY_CONFIG.format(out=out, root=root))
    return path


def paintseg(*args, cwd=REPO):
    """``paintseg`` in a fresh process: its exit code and everything it printed."""
    run = subprocess.run([sys.executable, "-m", "paintseg_engine", *map(str, args)], cwd=cwd,
                         capture_output=True, text=True, timeout=300)
    return run.returncode, run.stdout + run.stderr


def paintseg_in_process(*args) -> None:
    """``paintseg predict ...`` in this process: for the runs a test only prepares or compares with,
    where what the command prints in a fresh process is not what it checks (no start-up cost)."""
    from paintseg_engine.commands.predict import main

    with mock.patch.object(sys, "argv", ["paintseg"]):  # LightningCLI reads args=, not pytest's argv
        main(list(map(str, args)))


def run_in_process(dataset: Path, out: Path, on_error: str = "skip", settings: dict | None = None,
                   overwrite: bool = False, **data) -> None:
    """A predict run of the smallest AMCP in this process (no start-up cost): ``data`` goes to the DataModule."""
    import lightning as L

    from paintseg_engine.run.module import PaintSegModule
    from paintseg_engine.run.writer import PredictionWriter

    writer = PredictionWriter(str(out), on_error=on_error, settings=settings or {"a": 1}, overwrite=overwrite)
    trainer = L.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, callbacks=[writer])
    trainer.predict(PaintSegModule(Segmenter(config=AMCPConfig(frame_size=64, iterations=1, num_samples=2))),
                    datamodule=PaintSegDataModule([{"name": "gen", "root": str(dataset)}], run_dir=str(out), **data),
                    return_predictions=False)
