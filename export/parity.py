"""Parity of an exported model against the PyTorch model it came from, on random inputs."""
from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
from torch import Tensor

from .settings import ExportError

CUDA_PROVIDER = "CUDAExecutionProvider"


class ParityError(ExportError):
    """An exported model's output differs from PyTorch's by more than the stated tolerance."""


def onnxruntime_outputs(path: Path, names: list[str], inputs: list[Tensor]) -> tuple[Tensor, str]:
    """The model's first output in ONNX Runtime (CUDA when onnxruntime-gpu is here, else CPU)."""
    import onnxruntime as ort

    providers = [p for p in (CUDA_PROVIDER, "CPUExecutionProvider") if p in ort.get_available_providers()]
    session = ort.InferenceSession(str(path), providers=providers)
    output = session.run(None, {name: t.cpu().numpy() for name, t in zip(names, inputs)})[0]
    return torch.from_numpy(np.asarray(output)), session.get_providers()[0]


@contextmanager
def full_float32() -> Iterator[None]:
    """float32 on CUDA without TF32 (which PyTorch allows in convolutions by default): a TF32
    reference or fp32 export would differ by ~1e-3 from rounding alone."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def compare(where: str, candidate: Tensor, reference: Tensor, tolerance: float, runtime: str) -> dict[str, Any]:
    """Check max|candidate - reference| / max|reference| <= tolerance; print and return the numbers."""
    if candidate.shape != reference.shape:
        raise ParityError(f"{where}: output shape {tuple(candidate.shape)}, PyTorch gives {tuple(reference.shape)}")
    candidate, reference = candidate.float().cpu(), reference.float().cpu()
    error = (candidate - reference).abs().max().item()
    scale = reference.abs().max().item()
    relative = error / scale if scale > 0 else error
    result = dict(runtime=runtime, output_shape=list(reference.shape), max_abs_error=error,
                  reference_max_abs=scale, relative_error=relative, tolerance=tolerance)
    verdict = "ok" if relative <= tolerance else "FAILED"
    print(f"    parity {verdict}: max|{runtime} - torch| / max|torch| = {error:.3g} / {scale:.3g} = {relative:.3g} "
          f"(tolerance {tolerance:g}), shape {tuple(reference.shape)}", flush=True)
    if not relative <= tolerance:  # also catches NaN
        raise ParityError(f"{where}: {runtime} output differs from PyTorch by {relative:.3g} "
                          f"(max abs {error:.3g} over reference max {scale:.3g}), tolerance {tolerance:g}")
    return result
