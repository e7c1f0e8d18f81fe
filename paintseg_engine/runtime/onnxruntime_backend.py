"""ONNX Runtime runners: the exported UNet and VAE run in ORT sessions, fed torch tensors in place.

Inputs and outputs are bound by pointer (IO binding) on CPU and on CUDA alike, so no tensor
is copied through numpy. CUDA tensors need the CUDA execution provider (``onnxruntime-gpu``);
without it the backend refuses them with one clear error instead of copying to the CPU.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from .errors import BackendUnavailable, EngineMismatch
from .exported import ExportedUNetRunner, ExportedVAERunner, exported_runners
from .manifest import EngineManifest

NUMPY_TYPES = {torch.float32: np.float32, torch.float16: np.float16}
CUDA_PROVIDER = "CUDAExecutionProvider"


def import_onnxruntime():
    try:
        import onnxruntime
    except ImportError:
        raise BackendUnavailable("the onnxruntime backend needs onnxruntime (CPU) or onnxruntime-gpu "
                                 "(CUDA): pip install 'paintseg-engine[onnx]'") from None
    return onnxruntime


def require_cuda_provider() -> None:
    """Raise ``BackendUnavailable`` unless ONNX Runtime here can run on CUDA."""
    ort = import_onnxruntime()
    if CUDA_PROVIDER not in ort.get_available_providers():
        raise BackendUnavailable(
            f"onnxruntime {ort.__version__} has no {CUDA_PROVIDER} (providers: {ort.get_available_providers()}): "
            f"onnxruntime-gpu is not installed, so the onnxruntime backend cannot run on CUDA tensors; "
            f"pip install onnxruntime-gpu, or run the painter on the CPU")
    if not torch.cuda.is_available():
        raise BackendUnavailable("onnxruntime-gpu is installed but torch sees no CUDA device")


class OnnxRuntimeModel:
    """One ONNX file, with one ORT session per device type, made on first use: Lightning moves
    the painter to its device after the runners are built."""

    def __init__(self, path: Path):
        self.path = path
        self.sessions: dict[str, Any] = {}

    def session(self, device: torch.device):
        if device.type not in self.sessions:
            self.sessions[device.type] = self.open(device)
        return self.sessions[device.type]

    def open(self, device: torch.device):
        ort = import_onnxruntime()
        if device.type == "cuda":
            require_cuda_provider()
            providers = [(CUDA_PROVIDER, {"device_id": device.index or torch.cuda.current_device()})]
        elif device.type == "cpu":
            providers = ["CPUExecutionProvider"]
        else:
            raise BackendUnavailable(f"the onnxruntime backend runs on cpu or cuda tensors, got {device}")
        options = ort.SessionOptions()
        # The denoising loop runs torch ops between UNet calls; ORT threads spinning after a
        # call would take the cores those ops need.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            return ort.InferenceSession(str(self.path), options, providers=providers)
        except Exception as err:  # ORT raises its own exception types for unreadable models
            raise EngineMismatch(f"{self.path}: ONNX Runtime cannot load it ({err})") from None

    def __call__(self, inputs: dict[str, Tensor], outputs: dict[str, Tensor]) -> None:
        device = next(iter(inputs.values())).device
        session = self.session(device)
        binding = session.io_binding()
        device_id = (device.index or torch.cuda.current_device()) if device.type == "cuda" else 0
        for name, tensor in inputs.items():
            binding.bind_input(name, device.type, device_id, NUMPY_TYPES[tensor.dtype], tuple(tensor.shape),
                               tensor.data_ptr())
        for name, tensor in outputs.items():
            binding.bind_output(name, device.type, device_id, NUMPY_TYPES[tensor.dtype], tuple(tensor.shape),
                                tensor.data_ptr())
        if device.type == "cuda":
            # ORT runs on its own CUDA stream: the inputs torch queued must be written first.
            torch.cuda.current_stream(device).synchronize()
        session.run_with_iobinding(binding)


def onnxruntime_runners(unet: nn.Module, vae: nn.Module, engine_dir: str | Path,
                        channels_last: bool = False) -> tuple[ExportedUNetRunner, ExportedVAERunner]:
    """Runners over the ONNX models in ``engine_dir`` (written by ``python -m export``).

    ``unet`` and ``vae`` are the painter's modules: the export must come from their weights and
    match their precision. ``channels_last`` is a torch-backend setting the painter passes to
    every backend; an exported graph has its own layout, so it is not used here."""
    import_onnxruntime()
    return exported_runners(EngineManifest(engine_dir), unet, vae, "onnx", OnnxRuntimeModel)
