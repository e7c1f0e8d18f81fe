"""UNet and VAE runners over exported models (ONNX Runtime, TensorRT, AOTInductor), checked against the manifest.

A backend supplies only how to run one model file on torch tensors (``Execute``); the checks,
casts and output allocation are here, shared, so every exported backend refuses the same
mismatches with the same errors.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import torch
from torch import Tensor, nn

from ..pretrained import DTYPES, SHORT_NAMES
from .errors import EngineMismatch
from .manifest import EngineManifest

# Runs one model: reads the named inputs, writes into the preallocated named outputs.
Execute = Callable[[dict[str, Tensor], dict[str, Tensor]], None]
# Opens one model file for running (external data files lie next to it).
OpenModel = Callable[[Path], Execute]

PRECISIONS = {dtype: SHORT_NAMES[name] for name, dtype in DTYPES.items()}  # dtype -> an export's precision


class ExportedModel:
    """One exported network: checks input shapes, casts inputs to the exported dtypes, runs."""

    def __init__(self, manifest: EngineManifest, record: dict[str, Any], execute: Execute):
        self.manifest, self.record, self.execute = manifest, record, execute
        self.input_names = list(record["inputs"])
        (self.output_name, output_spec), = record["outputs"].items()
        self.output_dtype = DTYPES[output_spec["dtype"]]
        # Channels are fixed at export; batch and spatial dims come from the inputs.
        self.output_channels = output_spec["shape"][1]
        # The largest batch it takes: its inputs' leading dim, fixed or at the top of its range.
        batch = record["inputs"][self.input_names[0]]["shape"][0]
        self.max_batch = batch if isinstance(batch, int) else manifest.data["dims"][batch]["max"]

    def __call__(self, inputs: list[Tensor], output_shape: tuple[int, ...]) -> Tensor:
        if len(inputs) != len(self.input_names):
            raise EngineMismatch(f"{self.manifest.path}: {self.record['component']} was exported with inputs "
                                 f"{self.input_names}, called with {len(inputs)} tensors")
        named = dict(zip(self.input_names, inputs))
        self.manifest.check_inputs(self.record, {name: tuple(t.shape) for name, t in named.items()})
        feeds = {name: t.to(DTYPES[self.record["inputs"][name]["dtype"]]).contiguous() for name, t in named.items()}
        output = torch.empty(output_shape, dtype=self.output_dtype, device=inputs[0].device)
        self.execute(feeds, {self.output_name: output})
        return output


class ExportedUNetRunner:
    def __init__(self, model: ExportedModel):
        self.model, self.max_batch = model, model.max_batch

    def __call__(self, sample: Tensor, timestep: Tensor, encoder_hidden_states: Tensor | None = None) -> Tensor:
        batch, _, height, width = sample.shape
        shape = (batch, self.model.output_channels, height, width)
        inputs = [sample, timestep] + ([] if encoder_hidden_states is None else [encoder_hidden_states])
        return self.model(inputs, shape).to(sample.dtype)


class ExportedVAERunner:
    def __init__(self, encoder: ExportedModel, decoder: ExportedModel, scale_factor: int):
        self.encoder, self.decoder, self.scale_factor = encoder, decoder, scale_factor
        self.max_batch = min(encoder.max_batch, decoder.max_batch)

    def encode(self, images: Tensor) -> Tensor:
        batch, _, height, width = images.shape
        shape = (batch, self.encoder.output_channels, height // self.scale_factor, width // self.scale_factor)
        return self.encoder([images], shape).to(images.dtype)

    def decode(self, latents: Tensor) -> Tensor:
        batch, _, height, width = latents.shape
        shape = (batch, self.decoder.output_channels, height * self.scale_factor, width * self.scale_factor)
        return self.decoder([latents], shape).to(latents.dtype)


def exported_runners(manifest: EngineManifest, unet: nn.Module, vae: nn.Module, format: str,
                     open_model: OpenModel) -> tuple[ExportedUNetRunner, ExportedVAERunner]:
    """Runners for the painter's ``unet`` and ``vae`` from ``manifest``'s models in ``format``.

    The modules are the weights the painter loaded: the engine must have been exported from
    them, in their precision (a float16 UNet runs the fp16 export)."""
    manifest.check_source("unet", unet)
    manifest.check_source("vae", vae)

    def model(component: str, module: nn.Module) -> ExportedModel:
        if module.dtype not in PRECISIONS:
            raise EngineMismatch(f"{manifest.path}: no {component} export in {module.dtype}; "
                                 f"exported precisions are {sorted(PRECISIONS.values())}")
        record = manifest.model(component, PRECISIONS[module.dtype], format)
        return ExportedModel(manifest, record, open_model(manifest.check_files(record)[0]))

    encoder, decoder = model("vae_encoder", vae), model("vae_decoder", vae)
    return ExportedUNetRunner(model("unet", unet)), ExportedVAERunner(encoder, decoder, manifest.data["vae_scale_factor"])
