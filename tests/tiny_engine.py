"""A tiny SD-inpainting checkpoint and its exported engine directory, made once per test session
(shared by xdist's workers, tests/shared.py) and shared by the export and runtime-backend tests
(the export takes most of their time)."""
from pathlib import Path

from export import ExportSettings, export_engine
from tests.shared import exported_once

# Ranges of the tiny export: 8x8 latents (the tiny UNet's native size) at opt, 12x12 at most.
BATCH = (1, 2, 3)
IMAGE_SIZE = (32, 64, 96)


def tiny_engine(tmp_path_factory) -> tuple[Path, Path, dict]:
    """(checkpoint folder, engine directory, manifest), exported in fp32 and fp16."""
    def export(checkpoint: Path, out: Path) -> None:
        export_engine(ExportSettings(out=out, model=str(checkpoint), batch=BATCH, image_size=IMAGE_SIZE))

    return exported_once(tmp_path_factory, "tiny-engine", export)
