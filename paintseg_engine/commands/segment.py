"""``paintseg segment``: one image, one prompt, from the command line.

    paintseg segment photo.jpg --box 40,30,200,180 --click 120,90 --click-neg 10,10 \\
        --config configs/default.yaml -o mask.png --overlay overlay.png --steps steps.png

A line per AMCP iteration as it ends (its time, split into painting, features and the mask
update), then the mask, the overlay and the strip of per-iteration masks. Bad input ends the run
with one line naming it and a non-zero exit, no traceback.
"""
from __future__ import annotations

import argparse
import importlib
import inspect
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

# torch and what needs it are imported where they are used: ``--help`` and a bad option answer
# in a fraction of a second, without the seconds torch takes to import.
if TYPE_CHECKING:
    from ..amcp import Segmenter, StepRecord
    from ..prompts import Prompt

# configs/ of the repository this package runs from (an editable install or a checkout).
CONFIGS = Path(__file__).resolve().parents[2] / "configs"
DEFAULT_CONFIG = CONFIGS / "default.yaml"
PRETRAINED_PARTS = ("painter", "features")  # the model sections that may name weights
# --help is read in a terminal: plain text, not the docstring's reStructuredText.
DESCRIPTION = """Segment one image from one prompt (a box, clicks, or both) with AMCP, e.g.

  paintseg segment photo.jpg --box 40,30,200,180 --click 120,90 --click-neg 10,10 \\
      --config configs/default.yaml -o mask.png --overlay overlay.png --steps steps.png

A line per AMCP iteration as it ends, then the mask, the overlay and the per-iteration strip."""


def default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def __getattr__(name: str):
    if name == "DEFAULT_DEVICE":  # asks torch: only when someone wants it
        return default_device()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class ConfigError(ValueError):
    """A config that cannot give a segmenter here: absent, invalid, or its weights missing."""


def weights_of(spec: dict) -> str | None:
    """The ``model`` (hub id or folder) a component spec loads weights from, its class's default
    when the spec leaves it out; None for a weight-free component."""
    module, _, name = spec["class_path"].rpartition(".")
    init_args = spec.get("init_args") or {}
    if "model" in init_args:
        return init_args["model"]
    parameter = inspect.signature(getattr(importlib.import_module(module), name)).parameters.get("model")
    return parameter.default if parameter is not None and isinstance(parameter.default, str) else None


def config_unavailable(config: str | Path) -> str | None:
    """Why ``config`` cannot run on this machine (no such file, weights not here), or None.
    Checks files only: nothing is loaded."""
    from ..pretrained import missing_local_weights

    config = Path(config)
    if not config.is_file():
        return "no such file"
    model = (yaml.safe_load(config.read_text()) or {}).get("model") or {}
    reasons = []
    for part in PRETRAINED_PARTS:
        spec = model.get(part)
        weights = weights_of(spec) if isinstance(spec, dict) and "class_path" in spec else None
        reason = missing_local_weights(weights) if weights else None
        if reason:
            reasons.append(f"{part}: {reason}")
    return "; ".join(reasons) or None


def load_segmenter(config: str | Path, device: str = "cpu") -> Segmenter:
    """The segmenter of a config's ``model`` section, on ``device``; a ConfigError says why not."""
    import torch

    from ..amcp import Segmenter

    reason = config_unavailable(config)
    if reason:
        raise ConfigError(f"config {config}: {reason}")
    try:
        segmenter = Segmenter.from_config(config)
    except ValueError as error:
        raise ConfigError(f"config {config}: {error}") from None
    for part in (segmenter.painter, segmenter.features):
        if isinstance(part, torch.nn.Module):
            part.to(device)
    return segmenter


def prompt_from(box=None, positive=(), negative=()) -> Prompt:
    """The prompt a box and clicks make: a box alone, clicks alone (at least one positive), or both."""
    from ..prompts import BoxClicksPrompt, BoxPrompt, PointsPrompt, PromptError

    positive, negative = [tuple(p) for p in positive], [tuple(p) for p in negative]
    if box is None:
        if not positive:
            raise PromptError("give a box or at least one positive click")
        return PointsPrompt(positive, negative)
    return BoxClicksPrompt(tuple(box), positive, negative) if positive or negative else BoxPrompt(tuple(box))


def numbers(count: int, what: str):
    """argparse type: ``count`` comma-separated numbers, e.g. ``40,30,200,180``."""
    def parse(text: str) -> tuple[float, ...]:
        try:
            values = tuple(float(v) for v in text.split(","))
        except ValueError:
            values = ()
        if len(values) != count:
            raise argparse.ArgumentTypeError(f"{what} must be {count} comma-separated numbers, got {text!r}")
        return values
    return parse


def threads_option(text: str):
    """argparse type: ``auto`` or a thread count >= 1."""
    if text == "auto":
        return text
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"--threads must be auto or an integer >= 1, got {text!r}")
    return int(text)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="paintseg segment", description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("image", type=Path, help="the photo to segment")
    parser.add_argument("--box", type=numbers(4, "--box"), metavar="X0,Y0,X1,Y1",
                        help="box around the object, pixels (x1, y1 exclusive)")
    parser.add_argument("--click", type=numbers(2, "--click"), action="append", default=[], metavar="X,Y",
                        help="a point on the object (repeatable)")
    parser.add_argument("--click-neg", type=numbers(2, "--click-neg"), action="append", default=[],
                        metavar="X,Y", help="a point off the object (repeatable)")
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG,
                        help="a config's model section: painter, features, amcp (default: %(default)s)")
    parser.add_argument("--device", help="where the painter and features run (default: cuda when available, else cpu)")
    parser.add_argument("--threads", default="auto", type=threads_option,
                        help="torch's intra-op threads: a count, or auto (default): one for the weight-free "
                             "components, the cores for networks")
    parser.add_argument("-o", "--output", type=Path, help="write the mask here (PNG, 0/255)")
    parser.add_argument("--overlay", type=Path, help="write the mask over the image here (PNG)")
    parser.add_argument("--steps", type=Path, help="write the mask after each I-/O-step here, as a strip (PNG)")
    return parser


def print_step(total: int, height: int, width: int):
    """on_step callback: a line per iteration as it ends."""
    from ..visualize import STEP_NAMES

    def report(step: StepRecord) -> None:
        coverage = step.mask.float().mean().item() * 100
        print(f"step {step.iteration + 1}/{total} {STEP_NAMES[step.kind]}  {step.seconds:7.3f} s  "
              f"(paint {step.paint_seconds:.3f} s, features {step.features_seconds:.3f} s, "
              f"update {step.update_seconds:.3f} s)  mask {coverage:.1f}% of {width}x{height}", flush=True)
    return report


def run(options: argparse.Namespace) -> None:
    from ..imageio import load_image, save_png_atomic
    from ..threads import use_threads
    from ..visualize import overlay, step_strip

    # 1. Check what is cheap to check before loading any model: the image and the prompt.
    image = load_image(options.image)
    height, width = image.shape[-2:]
    prompt = prompt_from(options.box, options.click, options.click_neg)
    prompt.initial_mask(height, width)  # a prompt outside the image fails here, naming it

    # 2. The session: the image once, then the prompt, a line per iteration.
    device = options.device or default_device()
    segmenter = load_segmenter(options.config, device)
    use_threads(options.threads, segmenter.painter, segmenter.features)
    start = time.perf_counter()
    segmenter.set_image(image.to(device))
    print(f"{options.image} ({width}x{height}), {options.config}: set_image {time.perf_counter() - start:.3f} s",
          flush=True)
    start = time.perf_counter()
    result = segmenter.predict(prompt, on_step=print_step(segmenter.config.iterations, height, width))
    mask = result.mask.cpu()
    print(f"{len(result.steps)} iterations in {time.perf_counter() - start:.3f} s; "
          f"mask {mask.float().mean().item() * 100:.1f}% of the image")

    # 3. The pictures.
    if options.output:
        save_png_atomic(options.output, mask.numpy().astype("uint8") * 255)
    if options.overlay:
        save_png_atomic(options.overlay, overlay(image, mask, prompt))
    if options.steps:
        save_png_atomic(options.steps, step_strip(image, result, prompt))
    for path in (options.output, options.overlay, options.steps):
        if path:
            print(f"wrote {path}")


def main(args: list[str] | None = None) -> None:
    options = build_parser().parse_args(args)
    from ..imageio import ImageLoadError
    from ..prompts import PromptError

    try:
        run(options)
    except (ImageLoadError, PromptError, ConfigError, OSError) as error:
        sys.exit(f"paintseg segment: error: {error}")


if __name__ == "__main__":
    main()
