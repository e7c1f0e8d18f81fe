"""What a case costs per image on any machine: the network calls AMCP made, counted where they
happen (the painter's runners, the feature extractor), and the FLOPs they add up to.

FLOPs per call come from PyTorch's FLOP counter (matrix products, convolutions, attention) run on
a twin of each network on the meta device, at the call's shapes with one sample: no memory, no
compute, the same number on every machine and backend. Meta tensors also take the unfused
attention path, which the counter knows; the fused CPU kernel it would not count.
"""
from __future__ import annotations

import copy
from collections import Counter
from typing import Callable

import torch
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode

from paintseg_engine.features import FeatureExtractor

# A network call as recorded: (network, input shapes). Networks: unet, encode, decode (the
# painter's runners) and features.
Call = tuple[str, tuple[tuple[int, ...], ...]]
TERA = 1e12


class CountedFeatures(FeatureExtractor):
    """Stands in for a feature extractor and records the shape of every batch it is given."""

    def __init__(self, features: FeatureExtractor):
        self.features = features
        self.calls: list[Call] = []

    def __call__(self, images: Tensor) -> Tensor:
        self.calls.append(("features", (tuple(images.shape),)))
        return self.features(images)

    def reset_image(self) -> None:
        self.features.reset_image()

    def take_calls(self) -> list[Call]:
        calls, self.calls = self.calls, []
        return calls


def meta_twin(module: nn.Module) -> nn.Module:
    """The same architecture on the meta device: diffusers models are rebuilt from their config
    (nothing copied); any other module is copied, then moved."""
    if hasattr(module, "from_config") and hasattr(module, "config"):
        with torch.device("meta"):
            return type(module).from_config(module.config).eval()
    return copy.deepcopy(module).to("meta").eval()


def counted_flops(run: Callable, *inputs: Tensor) -> int:
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        run(*inputs)
    return counter.get_total_flops()


def one_sample(shape: tuple[int, ...]) -> Tensor:
    return torch.empty((1, *shape[1:]), device="meta")


class CostMeter:
    """FLOPs of recorded calls, per sample and per input shape, counted once per shape."""

    def __init__(self, painter, features: FeatureExtractor):
        self.networks: dict[str, Callable[[tuple], int]] = {}
        if hasattr(painter, "unet_runner"):
            unet, vae = meta_twin(painter.unet), meta_twin(painter.vae)
            timestep = torch.zeros(1, device="meta")
            self.networks["unet"] = lambda shapes: counted_flops(unet, one_sample(shapes[0]), timestep,
                                                                 one_sample(shapes[2]))
            self.networks["encode"] = lambda shapes: counted_flops(
                lambda x: vae.encode(x).latent_dist.mean, one_sample(shapes[0]))
            self.networks["decode"] = lambda shapes: counted_flops(vae.decode, one_sample(shapes[0]))
        if isinstance(features, nn.Module):  # the weight-free extractor's arithmetic is not counted
            twin = meta_twin(features)
            self.networks["features"] = lambda shapes: counted_flops(twin, one_sample(shapes[0]))
        self.per_sample: dict[Call, int] = {}

    def flops(self, call: Call) -> int | None:
        """FLOPs of one sample of ``call``, or None for a network that is not counted."""
        network, shapes = call
        if network not in self.networks:
            return None
        if call not in self.per_sample:
            self.per_sample[call] = self.networks[network](shapes)
        return self.per_sample[call]

    def cost(self, calls: list[Call]) -> dict:
        """Calls, samples and TFLOPs per network, and their total, for the calls of one image."""
        samples, tflop = Counter(), Counter()
        counted = True
        for call in calls:
            batch = call[1][0][0]
            samples[call[0]] += batch
            flops = self.flops(call)
            counted &= flops is not None
            tflop[call[0]] += (flops or 0) * batch / TERA
        per_network = {network: {"calls": sum(1 for c in calls if c[0] == network), "samples": samples[network],
                                 "tflop": tflop[network] if network in self.networks else None}
                       for network in sorted(samples)}
        return {"networks": per_network, "tflop": sum(tflop.values()), "all_counted": counted}
