"""A tiny SD-inpainting checkpoint and its AOTInductor packages, made once per test session (shared
by xdist's workers, tests/shared.py) and shared by the AOTInductor tests and the GPU script's dry run.

Compiling is what costs: the four packages take about 2 minutes on a busy 2-core CPU. The tests
only need the code to be right, so they compile the C++ at -O0 (Inductor's debug_compile), same
graphs, numerics within the parity tolerance: measured one export at a time, load average 3.5,
the tiny UNet took 37 s against 50 s at the default -O3, the VAE decoder 27 s against 29 s.
"""
from pathlib import Path

import torch

from export import ExportSettings, export_engine
from tests.shared import exported_once

# Ranges as the ONNX test export's: 8x8 latents (the tiny UNet's native size) at opt, 12x12 at most.
BATCH = (1, 2, 3)
IMAGE_SIZE = (32, 64, 96)
PRECISIONS = ("fp32", "fp16")  # the fp16 UNet; SD's VAE stays fp32 (force_upcast)


def quick_compile():
    """Inductor settings of the tests' exports: -O0 C++."""
    return torch._inductor.config.patch({"aot_inductor.debug_compile": True})


def tiny_aoti_engine(tmp_path_factory) -> tuple[Path, Path, dict]:
    """(checkpoint folder, engine directory, manifest), on the CPU, in fp32 and fp16."""
    def export(checkpoint: Path, out: Path) -> None:
        settings = ExportSettings(out=out, model=str(checkpoint), formats=("aoti",), precisions=PRECISIONS,
                                  batch=BATCH, image_size=IMAGE_SIZE)
        with quick_compile():
            export_engine(settings)

    return exported_once(tmp_path_factory, "tiny-aoti", export)
