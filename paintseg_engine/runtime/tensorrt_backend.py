"""TensorRT runners: serialized engines built by ``python -m export``, run on torch CUDA tensors.

An engine is valid only for the TensorRT version and the GPU it was built with, and only for
shapes inside its optimization profile: the manifest records all three and every mismatch is
refused before anything runs.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

from .errors import BackendUnavailable, EngineMismatch
from .exported import ExportedUNetRunner, ExportedVAERunner, exported_runners
from .manifest import EngineManifest


def import_tensorrt():
    """The ``tensorrt`` module, or ``BackendUnavailable`` saying why it cannot be used here."""
    try:
        import tensorrt
    except ImportError:
        raise BackendUnavailable("TensorRT is not installed (pip install tensorrt, on a machine with an "
                                 "NVIDIA GPU)") from None
    if not torch.cuda.is_available():
        raise BackendUnavailable(f"TensorRT {tensorrt.__version__} is installed but torch sees no CUDA device")
    return tensorrt


def gpu_name() -> str:
    return torch.cuda.get_device_name(torch.cuda.current_device())


def check_build_target(manifest: EngineManifest, here: dict[str, str]) -> None:
    """Refuse engines built for another TensorRT ``version`` or another ``gpu`` model than ``here``."""
    built = manifest.data.get("tensorrt")
    if not built:
        reason = manifest.data.get("tensorrt_skipped", "not recorded")
        raise EngineMismatch(f"{manifest.path}: no TensorRT engines were built ({reason})")
    for key in ("version", "gpu"):
        if built[key] != here[key]:
            raise EngineMismatch(f"{manifest.path}: engines were built for TensorRT {built['version']} on "
                                 f"{built['gpu']}, this is TensorRT {here['version']} on {here['gpu']}; "
                                 f"rebuild them here with python -m export")


class TensorRTModel:
    """One deserialized engine with its execution context; runs on torch's current CUDA stream."""

    def __init__(self, path: Path):
        trt = import_tensorrt()
        self.path = path
        runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        self.engine = runtime.deserialize_cuda_engine(path.read_bytes())
        if self.engine is None:
            raise EngineMismatch(f"{path}: TensorRT cannot deserialize this engine")
        self.context = self.engine.create_execution_context()

    def __call__(self, inputs: dict[str, Tensor], outputs: dict[str, Tensor]) -> None:
        device = next(iter(inputs.values())).device
        if device.type != "cuda":
            raise ValueError(f"{self.path}: TensorRT engines run on CUDA tensors, got {device}")
        for name, tensor in inputs.items():
            self.context.set_input_shape(name, tuple(tensor.shape))
            self.context.set_tensor_address(name, tensor.data_ptr())
        for name, tensor in outputs.items():
            engine_shape = tuple(self.context.get_tensor_shape(name))
            if engine_shape != tuple(tensor.shape):
                raise EngineMismatch(f"{self.path}: output {name!r} would be {engine_shape}, "
                                     f"expected {tuple(tensor.shape)}")
            self.context.set_tensor_address(name, tensor.data_ptr())
        if not self.context.execute_async_v3(torch.cuda.current_stream(device).cuda_stream):
            raise RuntimeError(f"{self.path}: TensorRT execution failed")


def tensorrt_runners(unet: nn.Module, vae: nn.Module, engine_dir: str | Path,
                     channels_last: bool = False) -> tuple[ExportedUNetRunner, ExportedVAERunner]:
    """Runners over the TensorRT engines in ``engine_dir``, for the painter's ``unet`` and ``vae``
    (same weights and precision as exported). ``channels_last`` is a torch-backend setting the
    painter passes to every backend; it is not used here."""
    trt = import_tensorrt()
    manifest = EngineManifest(engine_dir)
    check_build_target(manifest, {"version": trt.__version__, "gpu": gpu_name()})
    return exported_runners(manifest, unet, vae, "tensorrt", TensorRTModel)
