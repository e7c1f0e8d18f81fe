"""Export an SD-inpainting checkpoint's UNet and VAE to ONNX, TensorRT and AOTInductor for the
engine's exported-model backends (``paintseg_engine.runtime``). Run as ``python -m export``."""
from .engine import export_engine
from .settings import ExportError, ExportSettings

__all__ = ["ExportError", "ExportSettings", "export_engine"]
