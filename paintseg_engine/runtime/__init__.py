from __future__ import annotations

from typing import Any, Callable

from torch import nn

from .aoti_backend import aoti_runners
from .base import UNetRunner, VAERunner
from .onnxruntime_backend import onnxruntime_runners
from .tensorrt_backend import tensorrt_runners
from .torch_compile import compiled_torch_runners


def _torch_runners(unet: nn.Module, vae: nn.Module, channels_last: bool = False) -> tuple[UNetRunner, VAERunner]:
    from .torch_backend import TorchUNetRunner, TorchVAERunner

    return TorchUNetRunner(unet, channels_last), TorchVAERunner(vae, channels_last)


# Backend name -> factory(unet, vae, **options) returning (UNet runner, VAE runner).
BACKENDS: dict[str, Callable[..., tuple[UNetRunner, VAERunner]]] = {
    "torch": _torch_runners,
    "torch-compile": compiled_torch_runners,
    "onnxruntime": onnxruntime_runners,
    "tensorrt": tensorrt_runners,
    "aoti": aoti_runners,
}


def build_runners(backend: str, unet: nn.Module, vae: nn.Module, **options: Any) -> tuple[UNetRunner, VAERunner]:
    """The UNet and VAE runners of ``backend``; ``options`` are that backend's settings."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {sorted(BACKENDS)}, got {backend!r}")
    return BACKENDS[backend](unet, vae, **options)


__all__ = ["BACKENDS", "UNetRunner", "VAERunner", "build_runners"]
