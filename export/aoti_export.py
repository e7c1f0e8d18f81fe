"""Compile one component ahead of time: ``torch.export`` to a graph with dynamic batch and
spatial dims, then AOTInductor to a ``.pt2`` package of native code for the export's device.

The dims come from the same named ranges as the ONNX export's. A side that must be a multiple
of the downsampling (the UNet's latents, the VAE's images) is exported as ``multiple x k`` with
``k`` in a range, so torch.export proves the divisibility instead of guarding on it; a range
with MIN == MAX is exported static, which lets Inductor specialise its kernels to that size.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import Tensor, nn
from torch.export import Dim

from paintseg_engine.runtime.aoti_backend import AOTIModel

from .components import Component

EXPORTER = "torch.export (non-strict) + torch._inductor.aoti_compile_and_package"


def export_dim(name: str, span: dict[str, int]) -> Dim | None:
    """The torch.export dim of one named range, or None where the range is one size."""
    low, high, multiple = span["min"], span["max"], span["multiple_of"]
    if low == high:
        return None
    if multiple == 1:
        return Dim(name, min=low, max=high)
    return multiple * Dim(f"{name}_over_{multiple}", min=low // multiple, max=high // multiple)


def trace_dims(dims: dict[str, dict[str, int]]) -> dict[str, int]:
    """The sizes to trace at: OPT, except that a dynamic dim is not traced at 1 (torch.export
    would specialise it to that constant); only a batch can be 1, and 2 is then on its grid."""
    return {name: 2 if span["opt"] == 1 < span["max"] else span["opt"] for name, span in dims.items()}


def export_aoti(component: Component, module: nn.Module, example: list[Tensor],
                dims: dict[str, dict[str, int]], path: Path) -> list[Path]:
    """Write ``module`` (``component``'s network, in the wanted precision and on the wanted device)
    to the package ``path``; returns the files written (the package alone)."""
    named = {name: export_dim(name, span) for name, span in dims.items()}
    dynamic_shapes = {name: {axis: named[dim] for axis, dim in enumerate(spec.shape) if isinstance(dim, str)}
                      for name, spec in component.inputs.items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings(), torch.no_grad():
        # pytree's own deprecation notice, raised while torch pickles the graph's input spec.
        warnings.filterwarnings("ignore", message=".*isinstance\\(treespec, LeafSpec\\)")
        program = torch.export.export(module, tuple(example), dynamic_shapes=dynamic_shapes, strict=False)
        torch._inductor.aoti_compile_and_package(program, package_path=str(path))
    return [path]


def package_outputs(path: Path, names: list[str], inputs: list[Tensor]) -> tuple[Tensor, str]:
    """The package's output on ``inputs``, run as the runtime runs it, and where it ran."""
    device = inputs[0].device.type
    with torch.no_grad():
        return AOTIModel(path, device).run(inputs), f"aoti:{device}"
