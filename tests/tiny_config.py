"""The smallest AMCP settings that still run both steps, as a config file for the commands and the app."""
from pathlib import Path

import yaml

TINY_AMCP = {"frame_size": 96, "iterations": 3, "num_samples": 2, "log_contrast": True,
             "outpaint_region": "background"}


def write_tiny_config(folder: Path, **amcp) -> Path:
    """``folder/tiny.yaml``: a model section of the weight-free painter and features, TINY_AMCP
    updated with ``amcp``."""
    path = Path(folder) / "tiny.yaml"
    path.write_text(yaml.safe_dump({"model": {"segmenter": {"class_path": "paintseg_engine.Segmenter",
                                                             "init_args": {"config": {**TINY_AMCP, **amcp}}}}}))
    return path


def write_config_without_weights(folder: Path) -> Path:
    """``folder/no_weights.yaml``: a diffusion painter whose weights folder does not exist."""
    path = Path(folder) / "no_weights.yaml"
    path.write_text(yaml.safe_dump({"model": {"segmenter": {"class_path": "paintseg_engine.Segmenter", "init_args": {
        "painter": {"class_path": "paintseg_engine.painters.diffusion.DiffusionPainter",
                    "init_args": {"model": str(Path(folder) / "checkpoints" / "absent")}}}}}}))
    return path
