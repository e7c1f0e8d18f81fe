"""AOTInductor runners: ``.pt2`` packages compiled ahead of time by ``python -m export --formats aoti``.

A package is native code (C++ and, on CUDA, Triton kernels) for one device kind, built by one
PyTorch version: the manifest records both, and the runners refuse a package from another
PyTorch, for another GPU architecture or CPU instruction set, or fed tensors of another device.
Nothing is compiled at start-up: loading a package is loading a shared library.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

from .errors import EngineMismatch
from .exported import ExportedUNetRunner, ExportedVAERunner, exported_runners
from .manifest import EngineManifest

# What a package's code depends on, per device kind: checked against this machine before loading.
BINDING_KEYS = {"cuda": ("torch", "compute_capability"), "cpu": ("torch", "cpu_isa")}


def build_target(device: torch.device) -> dict[str, str]:
    """What a package compiled here for ``device`` is bound to (recorded in the manifest)."""
    target = {"torch": torch.__version__, "device": device.type}
    if device.type == "cuda":
        major, minor = torch.cuda.get_device_capability(device)
        target.update(gpu=torch.cuda.get_device_name(device), compute_capability=f"{major}.{minor}")
    elif device.type == "cpu":
        from torch._inductor.cpu_vec_isa import pick_vec_isa

        # The kernels are compiled with -march=native and the vector instructions of this set.
        target["cpu_isa"] = str(pick_vec_isa()) or "none"
    else:
        raise ValueError(f"AOTInductor packages are exported for cpu or cuda, got {device}")
    return target


def describe(target: dict[str, str]) -> str:
    if target["device"] == "cuda":
        return f"torch {target['torch']} on {target['gpu']} (compute capability {target['compute_capability']})"
    return f"torch {target['torch']} on CPU ({target['cpu_isa']})"


def check_build_target(manifest: EngineManifest) -> str:
    """Refuse packages this machine cannot run; returns the device kind they were compiled for."""
    built = manifest.data.get("aoti")
    if not built:
        raise EngineMismatch(f"{manifest.path}: no AOTInductor packages were exported "
                             f"(python -m export --formats aoti ...)")
    device = built["device"]
    if device == "cuda" and not torch.cuda.is_available():
        raise EngineMismatch(f"{manifest.path}: packages were compiled for CUDA ({describe(built)}); "
                             f"torch sees no CUDA device here")
    here = build_target(torch.device(device))
    if any(built[key] != here[key] for key in BINDING_KEYS[device]):
        raise EngineMismatch(f"{manifest.path}: packages were compiled by {describe(built)}, this is "
                             f"{describe(here)}; re-export them here with python -m export --formats aoti "
                             f"--device {device}")
    return device


class AOTIModel:
    """One package, loaded on first use on the device of its inputs: Lightning moves the painter
    to its device after the runners are built."""

    def __init__(self, path: Path, device_type: str):
        self.path, self.device_type = path, device_type
        self.loaded: dict[torch.device, object] = {}

    def model(self, device: torch.device):
        if device.type != self.device_type:
            raise EngineMismatch(f"{self.path}: compiled for {self.device_type} tensors, got {device} ones; "
                                 f"export with --device {device.type} to run there")
        if device not in self.loaded:
            index = -1 if device.type == "cpu" else (
                device.index if device.index is not None else torch.cuda.current_device())
            try:
                self.loaded[device] = torch._inductor.aoti_load_package(str(self.path), device_index=index)
            except Exception as err:  # the loader raises RuntimeError or its own types for unusable files
                raise EngineMismatch(f"{self.path}: AOTInductor cannot load it ({err})") from None
        return self.loaded[device]

    def run(self, inputs: list[Tensor]) -> Tensor:
        return self.model(inputs[0].device)(*inputs)

    def __call__(self, inputs: dict[str, Tensor], outputs: dict[str, Tensor]) -> None:
        (output,) = outputs.values()
        output.copy_(self.run(list(inputs.values())))


def aoti_runners(unet: nn.Module, vae: nn.Module, engine_dir: str | Path,
                 channels_last: bool = False) -> tuple[ExportedUNetRunner, ExportedVAERunner]:
    """Runners over the AOTInductor packages in ``engine_dir``, for the painter's ``unet`` and
    ``vae`` (same weights and precision as exported). ``channels_last`` is a torch-backend
    setting the painter passes to every backend; a compiled package has its own layout."""
    manifest = EngineManifest(engine_dir)
    device = check_build_target(manifest)
    return exported_runners(manifest, unet, vae, "aoti", lambda path: AOTIModel(path, device))
