"""torch.compile'd runners: the torch backend's runners over compiled UNet and VAE networks.

Compilation happens on the first call at each new shape (minutes for the full UNet), so this
pays off over many denoising steps at few distinct shapes, as in AMCP.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from .torch_backend import TorchUNetRunner, TorchVAERunner

# torch.compile's mode that replays CUDA graphs (kernel launches recorded once per shape).
CUDA_GRAPHS_MODE = "reduce-overhead"


class CUDAGraphUNetRunner(TorchUNetRunner):
    """A UNet runner whose compiled graph replays CUDA graphs: each call is a new replay, and its
    output is copied out because the next replay reuses the same memory."""

    def __call__(self, sample: Tensor, timestep: Tensor, encoder_hidden_states: Tensor | None = None) -> Tensor:
        torch.compiler.cudagraph_mark_step_begin()
        return super().__call__(sample, timestep, encoder_hidden_states).clone()


def compiled_torch_runners(unet: nn.Module, vae: nn.Module, channels_last: bool = False,
                           cuda_graphs: bool = False, mode: str | None = None,
                           compile_backend: str = "inductor",
                           compile_vae: bool = True) -> tuple[TorchUNetRunner, TorchVAERunner]:
    """Compile the painter's UNet and the VAE's encoder and decoder in place, and run them eagerly
    otherwise as the torch backend does.

    cuda_graphs: replay the UNet's CUDA graphs (torch.compile mode "reduce-overhead"); CUDA only.
    mode: another torch.compile mode, e.g. "max-autotune"; not together with cuda_graphs.
    compile_backend: torch.compile backend; "eager" captures graphs without generating code
        (no speed-up: it checks that the networks compile without graph breaks, quickly).
    compile_vae: False leaves the VAE eager: it runs a few times per paint call against the
        UNet's once per denoising step, so its compile time may not pay back in a short run.
    """
    if cuda_graphs and mode not in (None, CUDA_GRAPHS_MODE):
        raise ValueError(f"cuda_graphs uses torch.compile mode {CUDA_GRAPHS_MODE!r}; got mode={mode!r} too")
    unet.compile(mode=CUDA_GRAPHS_MODE if cuda_graphs else mode, backend=compile_backend)
    # The VAE runs a few times per paint call, not per step: launch overhead does not matter there.
    for network in (vae.encoder, vae.decoder) if compile_vae else ():
        network.compile(mode=mode, backend=compile_backend)
    unet_runner = (CUDAGraphUNetRunner if cuda_graphs else TorchUNetRunner)(unet, channels_last)
    return unet_runner, TorchVAERunner(vae, channels_last)
