"""Test inputs that take seconds to make (tiny checkpoints, exported engines), made once per test
session and shared by pytest-xdist's workers.

Each worker has its own temporary folder under the session's; the first worker to ask makes the
input in that shared parent under a file lock, the others wait for the lock and reuse it. A marker
file is written last, so an input whose making failed half-way is made again, never half-used.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Callable

from filelock import FileLock

DONE = ".made"


def made_once(tmp_path_factory, name: str, make: Callable[[Path], object]) -> Path:
    """``<session temp>/<name>``, filled by ``make(folder)`` once per session whatever the workers."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # the session's folder, shared by every worker
    folder = root / name
    with FileLock(f"{folder}.lock"):
        if not (folder / DONE).is_file():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
            make(folder)
            (folder / DONE).touch()
    return folder


def tiny_sd_checkpoint(tmp_path_factory) -> Path:
    """A tiny random SD-inpainting checkpoint in the diffusers layout."""
    from export.random_weights import save_tiny_sd_inpainting

    return made_once(tmp_path_factory, "tiny-sd", lambda folder: save_tiny_sd_inpainting(folder / "sd")) / "sd"


def tiny_vit_checkpoint(tmp_path_factory, kind: str = "dino") -> Path:
    """A tiny random ViT of ``kind`` saved with save_pretrained."""
    from export.random_weights import save_tiny_vit

    return made_once(tmp_path_factory, f"tiny-vit-{kind}", lambda folder: save_tiny_vit(folder / kind, kind)) / kind


def exported_once(tmp_path_factory, name: str, export: Callable[[Path, Path], None]) -> tuple[Path, Path, dict]:
    """(checkpoint folder, engine directory, manifest) of ``export(checkpoint, engine_dir)`` on a
    tiny checkpoint of its own, made once per session."""
    from export.random_weights import save_tiny_sd_inpainting

    def make(folder: Path) -> None:
        export(save_tiny_sd_inpainting(folder / "checkpoint"), folder / "engine")

    folder = made_once(tmp_path_factory, name, make)
    from paintseg_engine.runtime.manifest import MANIFEST_NAME

    return folder / "checkpoint", folder / "engine", json.loads((folder / "engine" / MANIFEST_NAME).read_text())
