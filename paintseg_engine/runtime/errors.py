"""Errors of the exported-model backends: what is missing, or what does not match."""
from __future__ import annotations


class BackendUnavailable(RuntimeError):
    """A backend's library or device is not present here (e.g. onnxruntime-gpu, tensorrt)."""


class EngineMismatch(ValueError):
    """An engine directory does not fit what it is asked to run: another model, shapes outside
    the exported ranges, another TensorRT version or GPU, a missing or altered file."""
