"""``paintseg segment``: one image, one prompt, from the command line.

    paintseg segment photo.jpg --box 40,30,200,180 --click 120,90 --click-neg 10,10 \\
        --config configs/default.yaml -o mask.png --overlay overlay.png --steps steps.png

A line per AMCP iteration as it ends (its time, split into painting, features and the mask
update), then the mask, the overlay and the strip of per-iteration masks. Bad input ends the run
with one line naming it and a non-zero exit, no traceback.
"""
from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

from typing import TYPE_CHECKING

from ..errors import ConfigError, ImageLoadError, PromptError
from ..limits import DEFAULT_MAX_PIXELS
from .arguments import DEFAULT_CONFIG, default_device, pixel_limit, threads_option

# torch and what needs it are imported where they are used: ``--help`` and a bad option answer
# in a fraction of a second, without the seconds torch takes to import.
if TYPE_CHECKING:
    from ..amcp import StepRecord

# --help is read in a terminal: plain text, not the docstring's reStructuredText.
DESCRIPTION = """Segment one image from one prompt (a box, clicks, or both) with AMCP, e.g.

  paintseg segment photo.jpg --box 40,30,200,180 --click 120,90 --click-neg 10,10 \\
      --config configs/default.yaml -o mask.png --overlay overlay.png --steps steps.png

A line per AMCP iteration as it ends, then the mask, the overlay and the per-iteration strip."""
NUMBER_OPTIONS = ("--box", "--click", "--click-neg")
NEGATIVE_NUMBER = re.compile(r"-[\d.]")  # argparse takes "-5,-5,50,50" for an option, not a value


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
                        help="a config's model.segmenter section: AMCP or the GrabCut baseline (default: %(default)s)")
    parser.add_argument("--device", help="where the painter and features run (default: cuda when available, else cpu)")
    parser.add_argument("--threads", default="auto", type=threads_option,
                        help="torch's intra-op threads: a count, or auto (default): one for the weight-free "
                             "components, the cores for networks")
    parser.add_argument("-o", "--output", type=Path, help="write the mask here (PNG, 0/255)")
    parser.add_argument("--overlay", type=Path, help="write the mask over the image here (PNG)")
    parser.add_argument("--steps", type=Path, help="write the mask after each I-/O-step here, as a strip (PNG)")
    parser.add_argument("--max-pixels", type=pixel_limit, default=DEFAULT_MAX_PIXELS,
                        help="refuse an image of more pixels than this (default: %(default)s)")
    return parser


def values_attached(args: list[str]) -> list[str]:
    """``--box -5,-5,50,50`` as ``--box=-5,-5,50,50``, so a negative coordinate reaches the prompt's
    own bounds check instead of reading as an unknown option."""
    attached = []
    for arg in args:
        if attached and attached[-1] in NUMBER_OPTIONS and NEGATIVE_NUMBER.match(arg):
            attached[-1] = f"{attached[-1]}={arg}"
        else:
            attached.append(arg)
    return attached


def clashing_outputs(options: argparse.Namespace) -> str | None:
    """Why the output files cannot be written as asked: one is the input image, or two are one file."""
    outputs = {name: path for name, path in (("-o", options.output), ("--overlay", options.overlay),
                                             ("--steps", options.steps)) if path}
    seen = {options.image.resolve(): "the input image"}
    for name, path in outputs.items():
        target = path.resolve()
        if target in seen:
            return f"{name} {path} is {seen[target]}; give each output a file of its own"
        seen[target] = f"the file {name} writes"
    return None


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
    import numpy as np

    from ..build import build_segmenter, check_device
    from ..imageio import load_image, save_png_atomic
    from ..prompts import prompt_from
    from ..threads import use_threads
    from ..visualize import overlay, step_strip

    # 1. Check what is cheap to check before loading any model: the image, the prompt, the device.
    image = load_image(options.image, max_pixels=options.max_pixels)
    height, width = image.shape[-2:]
    prompt = prompt_from(options.box, options.click, options.click_neg)
    prompt.initial_mask(height, width)  # a prompt outside the image fails here, naming it
    device = check_device(options.device or default_device())

    # 2. The session: the image once, then the prompt, a line per iteration.
    segmenter = build_segmenter(options.config, device=device)
    use_threads(options.threads, *segmenter.components().values())
    start = time.perf_counter()
    segmenter.set_image(image.to(device), options.image.stem)
    print(f"{options.image} ({width}x{height}), {options.config}: set_image {time.perf_counter() - start:.3f} s",
          flush=True)
    start = time.perf_counter()
    result = segmenter.predict(prompt, on_step=print_step(segmenter.steps_for(prompt), height, width))
    mask = result.mask.cpu()
    print(f"{len(result.steps)} iterations in {time.perf_counter() - start:.3f} s; "
          f"mask {mask.float().mean().item() * 100:.1f}% of the image")

    # 3. The pictures.
    if options.output:
        save_png_atomic(options.output, mask.numpy().astype(np.uint8) * 255)
    if options.overlay:
        save_png_atomic(options.overlay, overlay(image, mask, prompt))
    if options.steps:
        save_png_atomic(options.steps, step_strip(image, result, prompt))
    for path in (options.output, options.overlay, options.steps):
        if path:
            print(f"wrote {path}")


def main(args: list[str] | None = None) -> None:
    parser = build_parser()
    options = parser.parse_args(values_attached(sys.argv[1:] if args is None else args))
    clash = clashing_outputs(options)
    if clash:
        parser.error(clash)
    try:
        run(options)
    except (ImageLoadError, PromptError, ConfigError, OSError) as error:
        sys.exit(f"paintseg segment: error: {error}")


if __name__ == "__main__":
    main()
