"""The manifest of an engine directory, and the checks every exported-model backend runs on it.

``python -m export`` writes ``manifest.json`` next to the models; the ONNX Runtime, TensorRT and
AOTInductor runners read it and refuse, with an error naming the file and the mismatch, anything
that would otherwise run silently wrong: weights of another checkpoint, shapes outside the
exported ranges, files changed since export, engines built for another TensorRT or GPU,
packages compiled by another PyTorch or for another device.

Layout (JSON)::

    format_version   int, FORMAT_VERSION
    source           {"model": str, "random_weights": bool, "fingerprints": {"unet": sha, "vae": sha}}
    dims             {dim name: {"min", "opt", "max", "multiple_of"}}  e.g. batch, latent_height
    models           [{"component", "source", "precision", "format", "files": [main file, data...],
                       "inputs"/"outputs": {name: {"dtype", "shape": [int | dim name]}},
                       "parity": {...}}]
    files            {relative path: {"sha256", "bytes"}}
    opset, exporters, versions, vae_scale_factor, tensorrt (when engines were built),
    aoti (when packages were compiled: torch version, device, GPU or CPU instruction set)
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .errors import EngineMismatch

MANIFEST_NAME = "manifest.json"
FORMAT_VERSION = 1
# Weights are compared rounded to float16, so the same checkpoint loaded in float32 or float16
# (the painter's two usual precisions) has one fingerprint.
FINGERPRINT_DTYPE = torch.float16
HASH_CHUNK_BYTES = 16 << 20


def weights_fingerprint(module: nn.Module) -> str:
    """SHA-256 of a diffusers model's config and weights: what decides its exported graph's output."""
    digest = hashlib.sha256()
    config = {k: v for k, v in dict(getattr(module, "config", {})).items() if not k.startswith("_")}
    digest.update(json.dumps(config, sort_keys=True, default=str).encode())
    for name, tensor in sorted(module.state_dict().items()):
        digest.update(f"{name}:{tuple(tensor.shape)}".encode())
        digest.update(tensor.detach().to("cpu", FINGERPRINT_DTYPE).contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(HASH_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def file_record(path: Path) -> dict[str, Any]:
    return {"sha256": file_sha256(path), "bytes": path.stat().st_size}


class EngineManifest:
    """An engine directory's manifest, read and checked for its format."""

    def __init__(self, directory: str | Path):
        self.directory = Path(directory)
        self.path = self.directory / MANIFEST_NAME
        if not self.path.is_file():
            raise EngineMismatch(f"{self.path}: no manifest; export the engine directory with "
                                 f"`python -m export --out {self.directory} ...`")
        try:
            self.data = json.loads(self.path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise EngineMismatch(f"{self.path}: not a valid manifest ({err})") from None
        version = self.data.get("format_version") if isinstance(self.data, dict) else None
        if version != FORMAT_VERSION:
            raise EngineMismatch(f"{self.path}: manifest format_version {version!r}, this engine reads "
                                 f"{FORMAT_VERSION}; re-export the engine directory")

    def check_source(self, source: str, module: nn.Module) -> None:
        """Refuse an engine exported from other weights than ``module`` (the painter's ``source``)."""
        expected = self.data["source"]["fingerprints"][source]
        actual = weights_fingerprint(module)
        if actual != expected:
            raise EngineMismatch(
                f"{self.path}: the {source} was exported from {self.data['source']['model']!r} "
                f"(fingerprint {expected[:12]}...), but the loaded {source} has other weights or config "
                f"(fingerprint {actual[:12]}...); re-export from the checkpoint the painter loads")

    def model(self, component: str, precision: str, format: str) -> dict[str, Any]:
        for record in self.data["models"]:
            if (record["component"], record["precision"], record["format"]) == (component, precision, format):
                return record
        present = sorted(f"{r['component']}/{r['precision']}/{r['format']}" for r in self.data["models"])
        raise EngineMismatch(f"{self.path}: no {component} in {precision} as {format}; present: {present}")

    def check_files(self, record: dict[str, Any]) -> list[Path]:
        """Paths of ``record``'s files, each checked against its recorded size and SHA-256."""
        paths = []
        for name in record["files"]:
            path, expected = self.directory / name, self.data["files"][name]
            if not path.is_file():
                raise EngineMismatch(f"{path}: missing (listed in {self.path})")
            size = path.stat().st_size
            if size != expected["bytes"] or file_sha256(path) != expected["sha256"]:
                raise EngineMismatch(f"{path}: changed or corrupt since export ({size} bytes, recorded "
                                     f"{expected['bytes']}; SHA-256 differs from {self.path}); re-export")
            paths.append(path)
        return paths

    def check_inputs(self, record: dict[str, Any], shapes: dict[str, tuple[int, ...]]) -> None:
        """Refuse input shapes outside the exported model's fixed dims and dim ranges."""
        where = self.directory / record["files"][0]
        values: dict[str, int] = {}
        for name, spec in record["inputs"].items():
            shape = tuple(shapes[name])
            if len(shape) != len(spec["shape"]):
                raise EngineMismatch(f"{where}: input {name!r} has shape {shape}, exported as {spec['shape']}")
            for size, dim in zip(shape, spec["shape"]):
                if isinstance(dim, int):
                    if size != dim:
                        raise EngineMismatch(f"{where}: input {name!r} has shape {shape}, exported as {spec['shape']}")
                    continue
                if values.setdefault(dim, size) != size:
                    raise EngineMismatch(f"{where}: inputs disagree on {dim}: {values[dim]} and {size} ({name!r})")
                span = self.data["dims"][dim]
                if not span["min"] <= size <= span["max"] or size % span["multiple_of"]:
                    raise EngineMismatch(
                        f"{where}: input {name!r} has {dim}={size}, outside the exported range "
                        f"[{span['min']}, {span['max']}] in steps of {span['multiple_of']}; "
                        f"re-export with a range that covers it (--batch / --image-size)")
