"""Timing instruments: the UNet/VAE calls inside a diffusion painter, timed at its runners.

Every timing waits for the device: CUDA kernels run asynchronously, so a timer read without a
``torch.cuda.synchronize`` would measure kernel launches, not work.
"""
from __future__ import annotations

import time

import numpy as np
import torch

RUNNER_CALLS = ("encode", "unet", "decode")


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class TimedRunners:
    """Stands in for a diffusion painter's runners and records the seconds of each call, device
    finished, and its input shapes (what ``cost.CostMeter`` counts)."""

    def __init__(self, painter, device: torch.device):
        self.unet, self.vae, self.device = painter.unet_runner, painter.vae_runner, device
        self.seconds: dict[str, list[float]] = {name: [] for name in RUNNER_CALLS}
        self.unet_batches: list[int] = []
        self.calls: list[tuple[str, tuple]] = []
        painter.unet_runner, painter.vae_runner = self.run_unet, self

    def timed(self, name: str, call, *args):
        self.calls.append((name, tuple(tuple(arg.shape) for arg in args)))
        synchronize(self.device)
        start = time.perf_counter()
        result = call(*args)
        synchronize(self.device)
        self.seconds[name].append(time.perf_counter() - start)
        return result

    def run_unet(self, sample, timestep, encoder_hidden_states=None):
        self.unet_batches.append(len(sample))
        context = () if encoder_hidden_states is None else (encoder_hidden_states,)  # LDM's UNet has no text
        return self.timed("unet", self.unet, sample, timestep, *context)

    def encode(self, images):
        return self.timed("encode", self.vae.encode, images)

    def decode(self, latents):
        return self.timed("decode", self.vae.decode, latents)

    def take(self) -> dict:
        """The calls recorded since the last ``take``, summed per kind, and forget them."""
        unet = self.seconds["unet"]
        parts = {
            "encode": sum(self.seconds["encode"]),
            "unet": sum(unet),
            "unet_steps": len(unet),
            "unet_step": float(np.median(unet)) if unet else 0.0,
            "unet_batch": max(self.unet_batches, default=0),
            "decode": sum(self.seconds["decode"]),
        }
        self.seconds = {name: [] for name in RUNNER_CALLS}
        self.unet_batches = []
        return parts

    def take_calls(self) -> list[tuple[str, tuple]]:
        """(call, input shapes) of every call since the last ``take_calls``, and forget them."""
        calls, self.calls = self.calls, []
        return calls


def summary(values: list[float]) -> dict:
    """Median and 90th percentile (linear interpolation between samples) of measured seconds."""
    return {"median": float(np.median(values)), "p90": float(np.percentile(values, 90)), "n": len(values)}
