"""A tiny SD-inpainting checkpoint and its exported engine directory, made once per test session
and shared by the export and runtime-backend tests (the export takes most of their time)."""
from pathlib import Path

from export import ExportSettings, export_engine
from export.random_weights import save_tiny_sd_inpainting

# Ranges of the tiny export: 8x8 latents (the tiny UNet's native size) at opt, 12x12 at most.
BATCH = (1, 2, 3)
IMAGE_SIZE = (32, 64, 96)

_made: dict[str, tuple[Path, Path, dict]] = {}


def tiny_engine(tmp_path_factory) -> tuple[Path, Path, dict]:
    """(checkpoint folder, engine directory, manifest), exported in fp32 and fp16."""
    if "engine" not in _made:
        root = tmp_path_factory.mktemp("tiny-engine")
        checkpoint = save_tiny_sd_inpainting(root / "checkpoint")
        settings = ExportSettings(out=root / "engine", model=str(checkpoint), batch=BATCH, image_size=IMAGE_SIZE)
        _made["engine"] = checkpoint, settings.out, export_engine(settings)
    return _made["engine"]
