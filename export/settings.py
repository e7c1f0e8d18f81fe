"""What to export and how: command-line options, optionally defaulted from a YAML file."""
from __future__ import annotations

import argparse
from dataclasses import dataclass, fields
from pathlib import Path

import yaml

from paintseg_engine.pretrained import CLIP_CONTEXT_LENGTH, DTYPES, SHORT_NAMES

PRECISIONS = {SHORT_NAMES[name]: dtype for name, dtype in DTYPES.items()}  # an export's precision -> dtype
COMPONENTS = ("unet", "vae_encoder", "vae_decoder")
# onnx: ONNX files for ONNX Runtime (and TensorRT engines built from them); aoti: AOTInductor
# packages (torch.export + ahead-of-time Inductor), native code for the export's device.
FORMATS = ("onnx", "aoti")
# ONNX Runtime's CPU build has no bfloat16 kernels for these graphs: ONNX stays fp32/fp16.
ONNX_PRECISIONS = ("fp32", "fp16")
# Batches AMCP runs: 5 painted samples per step (10 with guidance between different prompts);
# the VAE encodes 1 image at a time.
DEFAULT_BATCH = (1, 5, 10)
# Sides of the painted image (the painter's resolution, 512 by default), in pixels.
DEFAULT_IMAGE_SIZE = (256, 512, 768)
CLIP_TEXT_TOKENS = CLIP_CONTEXT_LENGTH
# The opset of TensorRT's and ONNX Runtime's widest support that has LayerNormalization.
DEFAULT_OPSET = 17
# Parity: max |exported - torch| / max |torch| on random inputs. fp32 graphs differ from eager
# torch only in the order of float reductions (~1e-6 measured); fp16 and bf16 ones also in
# rounding weights and activations, against the fp32 torch model. Eager torch itself differs
# from fp32 by up to 4e-3 in fp16 and 4e-2 in bf16 (8 bits of mantissa to fp16's 11), measured
# on the tiny and the full-size UNet and VAE.
DEFAULT_TOLERANCE = {"fp32": 1e-4, "fp16": 2e-2, "bf16": 1e-1}
DEFAULT_TENSORRT_WORKSPACE_GIB = 8.0


class ExportError(RuntimeError):
    """The export cannot give a correct engine directory; the message says why."""


@dataclass
class ExportSettings:
    out: Path
    model: str | None = None
    random_full_size: bool = False
    seed: int = 0
    formats: tuple[str, ...] = ("onnx",)
    device: str = "cpu"
    precisions: tuple[str, ...] = ONNX_PRECISIONS
    components: tuple[str, ...] = COMPONENTS
    batch: tuple[int, int, int] = DEFAULT_BATCH
    image_size: tuple[int, int, int] = DEFAULT_IMAGE_SIZE
    text_tokens: int = CLIP_TEXT_TOKENS
    opset: int = DEFAULT_OPSET
    fp32_tolerance: float = DEFAULT_TOLERANCE["fp32"]
    fp16_tolerance: float = DEFAULT_TOLERANCE["fp16"]
    bf16_tolerance: float = DEFAULT_TOLERANCE["bf16"]
    tensorrt: bool = True
    tensorrt_workspace_gib: float = DEFAULT_TENSORRT_WORKSPACE_GIB
    local_files_only: bool = False

    def __post_init__(self) -> None:
        self.out = Path(self.out)
        if (self.model is None) == (not self.random_full_size):
            raise ValueError("give exactly one of --model (a checkpoint folder or hub id) and --random-full-size")
        for name in ("batch", "image_size"):
            low, opt, high = getattr(self, name)
            if not 1 <= low <= opt <= high:
                raise ValueError(f"--{name.replace('_', '-')} must be MIN OPT MAX with 1 <= MIN <= OPT <= MAX, "
                                 f"got {low} {opt} {high}")
        if self.opset < DEFAULT_OPSET:
            raise ValueError(f"--opset must be at least {DEFAULT_OPSET}, got {self.opset}")
        unsupported = sorted(set(self.precisions) - set(ONNX_PRECISIONS))
        if "onnx" in self.formats and unsupported:
            raise ValueError(f"--precisions {' '.join(unsupported)}: ONNX exports {' and '.join(ONNX_PRECISIONS)} "
                             f"only; use --formats aoti for {' '.join(unsupported)}")
        if self.device not in ("cpu", "cuda") and not self.device.startswith("cuda:"):
            raise ValueError(f"--device must be cpu, cuda or cuda:N, got {self.device!r}")

    def tolerance(self, precision: str) -> float:
        return getattr(self, f"{precision}_tolerance")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m export",
        description="Export an SD-inpainting checkpoint's UNet, VAE encoder and VAE decoder to ONNX (and "
                    "TensorRT engines where available) or AOTInductor packages, with a manifest and a parity "
                    "check against PyTorch.")
    p.add_argument("--config", type=Path, help="YAML file of option defaults (keys as the options, with _)")
    p.add_argument("--out", type=Path, help="engine directory to write (required)")
    p.add_argument("--model", help="diffusers-layout SD-inpainting checkpoint: folder or hub id")
    p.add_argument("--random-full-size", action="store_true",
                   help="full-size SD-inpainting architecture with random weights (latency work only)")
    p.add_argument("--seed", type=int, default=0, help="seed of random weights and parity inputs")
    p.add_argument("--formats", nargs="+", choices=FORMATS, default=["onnx"],
                   help="onnx (ONNX Runtime, TensorRT) and/or aoti (AOTInductor .pt2 packages)")
    p.add_argument("--device", default="cpu",
                   help="where the models are traced and checked; AOTInductor compiles for it (cpu, cuda)")
    p.add_argument("--precisions", nargs="+", choices=list(PRECISIONS), default=list(ONNX_PRECISIONS),
                   help="bf16: AOTInductor only")
    p.add_argument("--components", nargs="+", choices=COMPONENTS, default=list(COMPONENTS))
    p.add_argument("--batch", nargs=3, type=int, metavar=("MIN", "OPT", "MAX"), default=list(DEFAULT_BATCH))
    p.add_argument("--image-size", nargs=3, type=int, metavar=("MIN", "OPT", "MAX"), default=list(DEFAULT_IMAGE_SIZE),
                   help="range of image height and width in pixels (latents are 8x smaller)")
    p.add_argument("--text-tokens", type=int, default=CLIP_TEXT_TOKENS, help="length of the text context")
    p.add_argument("--opset", type=int, default=DEFAULT_OPSET)
    p.add_argument("--fp32-tolerance", type=float, default=DEFAULT_TOLERANCE["fp32"],
                   help="parity bound on max|onnx - torch| / max|torch|")
    p.add_argument("--fp16-tolerance", type=float, default=DEFAULT_TOLERANCE["fp16"])
    p.add_argument("--bf16-tolerance", type=float, default=DEFAULT_TOLERANCE["bf16"])
    p.add_argument("--no-tensorrt", dest="tensorrt", action="store_false", help="never build TensorRT engines")
    p.add_argument("--tensorrt-workspace-gib", type=float, default=DEFAULT_TENSORRT_WORKSPACE_GIB)
    p.add_argument("--local-files-only", action="store_true", help="never reach the hub for --model")
    return p


def parse_settings(argv: list[str] | None = None) -> ExportSettings:
    p = parser()
    config_path = p.parse_known_args(argv)[0].config
    if config_path:
        defaults = yaml.safe_load(config_path.read_text()) or {}
        unknown = sorted(set(defaults) - {f.name for f in fields(ExportSettings)})
        if unknown:
            p.error(f"{config_path}: unknown keys {unknown}")
        p.set_defaults(**defaults)
    args = vars(p.parse_args(argv))
    args.pop("config")
    if args["out"] is None:
        p.error("--out is required (on the command line or in --config)")
    for name in ("formats", "precisions", "components", "batch", "image_size"):
        args[name] = tuple(args[name])
    try:
        return ExportSettings(**args)
    except ValueError as err:
        p.error(str(err))
