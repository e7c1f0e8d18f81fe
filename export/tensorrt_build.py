"""Build TensorRT engines from the exported ONNX files, one optimization profile per engine.

The network is strongly typed: each layer runs in the precision its ONNX tensors have, so the
fp16 export gives an fp16 engine and the fp32 export an fp32 one, with no builder flags to keep
in step with the ONNX files.
"""
from __future__ import annotations

from pathlib import Path

import torch

from paintseg_engine.runtime.errors import BackendUnavailable
from paintseg_engine.runtime.tensorrt_backend import gpu_name, import_tensorrt

from .components import Component


def unavailable_reason() -> str | None:
    """Why engines cannot be built here, or None when they can."""
    try:
        import_tensorrt()
    except BackendUnavailable as err:
        return str(err)
    return None


def build_target() -> dict[str, str]:
    """What an engine is bound to: recorded in the manifest, checked by the runtime."""
    trt = import_tensorrt()
    major, minor = torch.cuda.get_device_capability()
    return {"version": trt.__version__, "gpu": gpu_name(), "compute_capability": f"{major}.{minor}"}


def build_engine(component: Component, onnx_path: Path, engine_path: Path, dims: dict[str, dict[str, int]],
                 workspace_bytes: int) -> None:
    """Serialize an engine for ``onnx_path`` whose profile spans ``dims``' min/opt/max."""
    trt = import_tensorrt()
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):  # reads external data next to the file
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise RuntimeError(f"{onnx_path}: TensorRT cannot parse it: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_bytes)
    profile = builder.create_optimization_profile()
    corners = [component.shapes({name: span[key] for name, span in dims.items()}) for key in ("min", "opt", "max")]
    for name in component.inputs:
        profile.set_shape(name, *(shapes[name] for shapes in corners))
    config.add_optimization_profile(profile)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise RuntimeError(f"{onnx_path}: TensorRT failed to build an engine (see its log above)")
    engine_path.parent.mkdir(parents=True, exist_ok=True)
    engine_path.write_bytes(bytes(serialized))
