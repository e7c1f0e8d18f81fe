"""The export command's work: load the checkpoint, export each component in each precision and
format, check parity, build TensorRT engines where possible, and write the manifest last.

The manifest is removed first and written only when everything passed, so a failed or
interrupted export never leaves a directory that the runtime would accept.
"""
from __future__ import annotations

import copy
import json
import platform
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import diffusers
import onnx
import onnxruntime
import torch
from torch import Tensor, nn

from paintseg_engine.runtime import aoti_backend
from paintseg_engine.runtime.manifest import FORMAT_VERSION, MANIFEST_NAME, file_record, weights_fingerprint
from paintseg_engine.runtime.tensorrt_backend import TensorRTModel

from . import aoti_export, onnx_export, tensorrt_build
from .components import Component, inpainting_components, unet_size_multiple, vae_scale_factor
from .parity import compare, full_float32, onnxruntime_outputs
from .settings import PRECISIONS, ExportError, ExportSettings

CORNERS = ("min", "opt", "max")
DTYPE_NAMES = {torch.float32: "float32", torch.float16: "float16", torch.bfloat16: "bfloat16"}
# Where each format's models go in the engine directory, and what wrote them.
LAYOUT = {"onnx": "{precision}/{name}.onnx", "aoti": "aoti/{precision}/{name}.pt2"}
EXPORTERS = {"onnx": onnx_export.EXPORTER, "aoti": aoti_export.EXPORTER}
FINGERPRINT_METHOD = "SHA-256 of the model config and its weights rounded to float16"


def load_models(settings: ExportSettings) -> tuple[nn.Module, nn.Module, dict[str, Any]]:
    """The UNet and autoencoder, loaded as the painter loads them, and a description of the source:
    SD inpainting, or LDM inpainting (a converted folder has a ``vqvae/``)."""
    ldm = settings.architecture == "ldm-inpainting" if settings.random_full_size else is_ldm_folder(settings.model)
    if settings.random_full_size:
        from .random_weights import random_ldm_components, random_unet, random_vae

        source = {"model": f"random full-size {settings.architecture}", "random_weights": True, "seed": settings.seed}
        if ldm:
            components = random_ldm_components(full_size=True, seed=settings.seed)
            return components.unet, components.vqvae, source
        return random_unet(full_size=True, seed=settings.seed), random_vae(full_size=True, seed=settings.seed), source
    if ldm:
        from paintseg_engine.painters.ldm import load_ldm_components

        components = load_ldm_components(settings.model)
        unet, vae = components.unet, components.vqvae
    else:
        from paintseg_engine.painters.diffusion import load_components

        components = load_components(settings.model, settings.local_files_only)
        unet, vae = components.unet, components.vae
    return unet.float().eval(), vae.float().eval(), {"model": settings.model, "random_weights": False}


def is_ldm_folder(model: str) -> bool:
    from paintseg_engine.painters.ldm_checkpoint import VQVAE

    return (Path(model) / VQVAE).is_dir()


def dim_ranges(settings: ExportSettings, unet: nn.Module, vae: nn.Module) -> dict[str, dict[str, int]]:
    """min/opt/max of every named dim, and the step sizes must come in."""
    scale, multiple = vae_scale_factor(vae), unet_size_multiple(unet)
    step = scale * multiple
    if any(side % step for side in settings.image_size):
        raise ExportError(f"--image-size {list(settings.image_size)}: sides must be multiples of {step} "
                          f"(the VAE's {scale}x times the UNet's {multiple}x downsampling)")
    image = dict(zip(CORNERS, settings.image_size), multiple_of=step)
    latent = dict(zip(CORNERS, (side // scale for side in settings.image_size)), multiple_of=multiple)
    return {"batch": dict(zip(CORNERS, settings.batch), multiple_of=1),
            "image_height": image, "image_width": dict(image),
            "latent_height": latent, "latent_width": dict(latent)}


def exported_precisions(component: Component, precisions: tuple[str, ...], vae: nn.Module) -> list[str]:
    """The painter keeps a ``force_upcast`` VAE (SD's overflows in float16) in float32 under float16:
    export what it will run."""
    if component.source == "vae" and vae.config.get("force_upcast", False):
        precisions = tuple("fp32" if p == "fp16" else p for p in precisions)
    return list(dict.fromkeys(precisions))


class EngineExport:
    def __init__(self, settings: ExportSettings):
        self.settings, self.out = settings, settings.out
        self.device = torch.device(settings.device)
        self.started = time.monotonic()
        self.records: list[dict[str, Any]] = []
        self.files: dict[str, dict[str, Any]] = {}
        # (component, precision) -> parity inputs and the fp32 torch outputs, reused for TensorRT.
        self.parity_cases: dict[tuple[str, str], tuple[list[Tensor], Tensor]] = {}

    def progress(self, message: str) -> None:
        print(f"[export {time.monotonic() - self.started:7.1f}s] {message}", flush=True)

    def run(self) -> dict[str, Any]:
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / MANIFEST_NAME).unlink(missing_ok=True)
        self.progress(f"loading {'random full-size weights' if self.settings.random_full_size else self.settings.model}")
        unet, vae, source = load_models(self.settings)
        dims = dim_ranges(self.settings, unet, vae)
        self.progress("fingerprinting the UNet and VAE weights")
        source["fingerprints"] = {"unet": weights_fingerprint(unet), "vae": weights_fingerprint(vae)}
        source["fingerprint_method"] = FINGERPRINT_METHOD
        unet.to(self.device), vae.to(self.device)
        components = [c for c in inpainting_components(unet, vae, self.settings.text_tokens)
                      if c.name in self.settings.components]
        for component in components:
            for precision in exported_precisions(component, self.settings.precisions, vae):
                for format in self.settings.formats:
                    self.export_model(component, precision, format, dims)
        tensorrt = self.build_tensorrt(components, dims)
        manifest = {
            "format_version": FORMAT_VERSION,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "source": source,
            "dims": dims,
            "vae_scale_factor": vae_scale_factor(vae),
            "opset": self.settings.opset,
            "exporters": {format: EXPORTERS[format] for format in self.settings.formats},
            "versions": {"python": platform.python_version(), "torch": torch.__version__, "onnx": onnx.__version__,
                         "onnxruntime": onnxruntime.__version__, "diffusers": diffusers.__version__},
            "models": self.records,
            "files": self.files,
            **tensorrt,
        }
        if "aoti" in self.settings.formats:
            # What the packages' native code is bound to: checked by the aoti runtime backend.
            manifest["aoti"] = aoti_backend.build_target(self.device)
        (self.out / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2))
        self.progress(f"wrote {self.out / MANIFEST_NAME}")
        return manifest

    def record(self, component: Component, precision: str, format: str, paths: list[Path],
               parity: dict[str, Any]) -> None:
        names = [path.relative_to(self.out).as_posix() for path in paths]
        self.files.update({name: file_record(path) for name, path in zip(names, paths)})
        dtype = PRECISIONS[precision]

        def specs(tensors: dict) -> dict[str, Any]:
            return {name: {"dtype": DTYPE_NAMES[spec.dtype or dtype], "shape": list(spec.shape)}
                    for name, spec in tensors.items()}

        self.records.append(dict(component=component.name, source=component.source, precision=precision,
                                 format=format, files=names, inputs=specs(component.inputs),
                                 outputs=specs(component.outputs), parity=parity))

    def inputs(self, component: Component, dims: dict[str, int], dtype: torch.dtype,
               generator: torch.Generator) -> list[Tensor]:
        return [t.to(self.device) for t in component.random_inputs(dims, dtype, generator)]

    def export_model(self, component: Component, precision: str, format: str, dims: dict[str, dict[str, int]]) -> None:
        dtype = PRECISIONS[precision]
        path = self.out / LAYOUT[format].format(precision=precision, name=component.name)
        module = component.module if dtype == torch.float32 else copy.deepcopy(component.module).to(dtype)
        generator = torch.Generator().manual_seed(self.settings.seed)
        if format == "onnx":
            # Traced at the smallest shapes (cheapest), checked at the typical ones: a second shape
            # also shows that the dims are really dynamic.
            example = self.inputs(component, {name: span["min"] for name, span in dims.items()}, dtype, generator)
            self.progress(f"{component.name} {precision}: tracing to {path} (opset {self.settings.opset})")
            paths = onnx_export.export_onnx(component, module, example, self.settings.opset, path)
            run = onnxruntime_outputs
        else:
            # Traced at the typical shapes: Inductor tunes its kernels to the traced sizes.
            example = self.inputs(component, aoti_export.trace_dims(dims), dtype, generator)
            self.progress(f"{component.name} {precision}: exporting and compiling {path} for {self.device}")
            paths = aoti_export.export_aoti(component, module, example, dims, path)
            run = aoti_export.package_outputs
        del module
        size = sum(p.stat().st_size for p in paths) / 2**20
        self.progress(f"{component.name} {precision}: wrote {', '.join(p.name for p in paths)} ({size:.0f} MiB); "
                      f"parity at the opt shapes")
        inputs = self.inputs(component, {name: span["opt"] for name, span in dims.items()}, dtype, generator)
        with torch.no_grad(), full_float32():  # the fp32 model is the reference of every precision
            reference = component.module(*(t.float() for t in inputs))
            candidate, runtime = run(path, list(component.inputs), inputs)
        parity = compare(str(path), candidate, reference, self.settings.tolerance(precision), runtime)
        if format == "onnx":  # TensorRT engines are built from the ONNX files and checked on these
            self.parity_cases[component.name, precision] = inputs, reference
        self.record(component, precision, format, paths, parity)

    def build_tensorrt(self, components: list[Component], dims: dict[str, dict[str, int]]) -> dict[str, Any]:
        """Engines for every ONNX model, or the one reason they were skipped."""
        if not self.settings.tensorrt:
            reason = "disabled by --no-tensorrt"
        elif "onnx" not in self.settings.formats:
            reason = "they are built from ONNX files, and --formats has no onnx"
        else:
            reason = tensorrt_build.unavailable_reason()
        if reason:
            self.progress(f"TensorRT engines skipped: {reason}")
            return {"tensorrt": None, "tensorrt_skipped": reason}
        by_name = {c.name: c for c in components}
        for onnx_record in [r for r in self.records if r["format"] == "onnx"]:
            component, precision = by_name[onnx_record["component"]], onnx_record["precision"]
            engine = self.out / "tensorrt" / precision / f"{component.name}.plan"
            self.progress(f"{component.name} {precision}: building TensorRT engine {engine}")
            tensorrt_build.build_engine(component, self.out / onnx_record["files"][0], engine, dims,
                                        int(self.settings.tensorrt_workspace_gib * 2**30))
            inputs, reference = self.parity_cases[component.name, precision]
            (output_name,) = component.outputs
            output = torch.empty(reference.shape, dtype=PRECISIONS[precision], device="cuda")
            TensorRTModel(engine)(dict(zip(component.inputs, (t.cuda() for t in inputs))), {output_name: output})
            torch.cuda.synchronize()
            parity = compare(str(engine), output, reference, self.settings.tolerance(precision), "tensorrt")
            self.record(component, precision, "tensorrt", [engine], parity)
        return {"tensorrt": tensorrt_build.build_target()}


def export_engine(settings: ExportSettings) -> dict[str, Any]:
    """Run the export described by ``settings``; returns the manifest written."""
    return EngineExport(settings).run()
