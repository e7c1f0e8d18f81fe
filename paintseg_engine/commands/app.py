"""``paintseg app``: the segmenter in the browser (Gradio, ``pip install "paintseg-engine[app]"``).

Pick an example scene or upload an image, click on it to place a box (two corners) and
positive or negative clicks, choose a config and segment: the overlay, the mask after each I- and
O-step, and the latency of each step. One segmenter per config, each keeping the image it was
last given, so a new prompt on the same image skips ``set_image``. Segmentation runs one request
at a time through Gradio's queue (the segmenters are shared); the others wait their turn.

    paintseg app                                  # http://127.0.0.1:7860
    paintseg app --config configs/default.yaml --config my.yaml --port 8000

Hostile input stays small: an upload above ``--max-upload-mb`` is refused by the server, an image
above ``--max-pixels`` before it is decoded; a user's mistake is one line in the server's log
(no traceback) and a message on the page; uploads and offered masks live in one temporary
folder, removed when the app ends (Ctrl-C or SIGTERM).
"""
from __future__ import annotations

import argparse
import hashlib
import os
import signal
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch

from ..amcp import PromptSegmenter, Segmentation
from ..build import build_segmenter, check_device, missing_weights
from ..data.synthetic import generate_dataset
from ..errors import ConfigError, ImageLoadError, PromptError
from ..imageio import load_image, save_png_atomic
from ..limits import DEFAULT_MAX_PIXELS
from ..prompts import Prompt, prompt_from
from ..threads import use_threads
from ..visualize import PROMPT_COLOUR, STEP_NAMES, overlay, step_strip
from .arguments import CONFIGS, default_device, pixel_limit

# Telemetry off before Gradio is imported (it reads this at import); the page needs no network.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
import gradio as gr  # noqa: E402

DEFAULT_CONFIGS = [CONFIGS / "default.yaml", CONFIGS / "fast.yaml", CONFIGS / "reference.yaml"]
DEFAULT_EXAMPLES = Path.home() / ".cache" / "paintseg" / "app_examples"  # generated scenes, made once
EXAMPLE_COUNT = 6
DEFAULT_PORT = 7860
BOX, POSITIVE, NEGATIVE = "box corners", "positive click", "negative click"
THUMBNAILS_HEIGHT = 150  # px: the examples row
IMAGE_HEIGHT = 320  # px: the image clicked on and the overlay, scaled to fit
CORNER_MARKER_SIZE = 9  # px: the cross marking a box's first corner until the second is placed
IMAGE_BUTTONS = ["download", "fullscreen"]  # not "share": nothing leaves this machine
# An upload's size limit: room for a JPEG photo at the default pixel limit (32 MP at 2-4 bits per
# pixel is 8-16 MB); a lossless PNG of one may be larger, and is better sent scaled down anyway.
DEFAULT_MAX_UPLOAD_MB = 64


def refusal(message: str, title: str = "Cannot do that") -> gr.Error:
    """A user's mistake: shown on the page, one line in the server's log, no traceback."""
    print(f"paintseg app: {title}: {message}", file=sys.stderr, flush=True)
    return gr.Error(message, title=title, print_exception=False)


@dataclass
class LoadedImage:
    name: str
    pixels: torch.Tensor  # [3, H, W] float in [0, 1]
    key: str  # digest of the pixels: which image a segmenter was last given


@dataclass
class PromptDraft:
    """The prompt clicked onto the image so far: box corners two by two, clicks one by one."""

    box: tuple[int, int, int, int] | None = None
    corner: tuple[int, int] | None = None  # a box's first corner, until the second comes
    positive: list[tuple[int, int]] = field(default_factory=list)
    negative: list[tuple[int, int]] = field(default_factory=list)
    answer: torch.Tensor | None = None  # the last Segment's mask: the next clicks correct it

    def add(self, mode: str, x: int, y: int) -> None:
        if mode == POSITIVE:
            self.positive.append((x, y))
        elif mode == NEGATIVE:
            self.negative.append((x, y))
        elif self.corner is None:
            self.corner = (x, y)
        else:  # both corners' pixels inside the box (x1, y1 exclusive)
            (cx, cy), self.corner = self.corner, None
            self.box = (min(cx, x), min(cy, y), max(cx, x) + 1, max(cy, y) + 1)

    def prompt(self) -> Prompt | None:
        return prompt_from(self.box, self.positive, self.negative, self.answer) if self.box or self.positive else None

    def describe(self) -> str:
        parts = [f"box {self.box}" if self.box else None,
                 f"first corner {self.corner}, click the opposite one" if self.corner else None,
                 f"positive {self.positive}" if self.positive else None,
                 f"negative {self.negative}" if self.negative else None]
        text = "; ".join(p for p in parts if p) or "nothing yet"
        hint = "" if self.prompt() else " (place a box or a positive click to segment)"
        return f"**Prompt:** {text}{hint}"


def draw_draft(image: LoadedImage, draft: PromptDraft) -> np.ndarray:
    """The image with the prompt placed so far drawn on it."""
    nothing = torch.zeros(image.pixels.shape[-2:], dtype=torch.bool)
    picture = overlay(image.pixels, nothing, draft.prompt())
    if draft.corner:
        cv2.drawMarker(picture, draft.corner, PROMPT_COLOUR, cv2.MARKER_CROSS, CORNER_MARKER_SIZE)
    return picture


class Sessions:
    """One segmenter per config, built on first use, each remembering the image it holds.

    Only the queue's single segmentation worker calls ``segmenter``, so no two requests use a
    segmenter at once."""

    def __init__(self, device: str):
        self.device = device
        self.segmenters: dict[str, PromptSegmenter] = {}
        self.image_keys: dict[str, str] = {}

    def segmenter(self, config: str, image: LoadedImage) -> tuple[PromptSegmenter, float | None]:
        """The config's segmenter holding ``image``, and the seconds ``set_image`` took (None: already held)."""
        if config not in self.segmenters:
            self.segmenters[config] = build_segmenter(config, device=self.device)
        segmenter = self.segmenters[config]
        use_threads("auto", *segmenter.components().values())  # each config its own (threads.py)
        if self.image_keys.get(config) == image.key:
            return segmenter, None
        start = time.perf_counter()
        segmenter.set_image(image.pixels.to(self.device), Path(image.name).stem)
        self.image_keys[config] = image.key
        return segmenter, time.perf_counter() - start


def latency_table(result: Segmentation, set_image_seconds: float | None) -> str:
    """Markdown: each step's seconds and their parts, and what set_image cost."""
    rows = ["| step | | seconds | paint | features | update | mask |", "|---|---|---|---|---|---|---|"]
    rows += [f"| {s.iteration + 1} | {STEP_NAMES[s.kind]} | {s.seconds:.3f} | {s.paint_seconds:.3f} | "
             f"{s.features_seconds:.3f} | {s.update_seconds:.3f} | {s.mask.float().mean().item():.1%} |"
             for s in result.steps]
    total = sum(s.seconds for s in result.steps)
    image = ("already set for this config: skipped" if set_image_seconds is None
             else f"{set_image_seconds:.3f} s")
    return "\n".join(rows) + f"\n\n**{len(result.steps)} steps: {total:.3f} s**; set_image: {image}"


def open_image(path: str, max_pixels: int = DEFAULT_MAX_PIXELS) -> LoadedImage:
    name = Path(path).name
    try:
        pixels = load_image(path, max_pixels=max_pixels)
    except ImageLoadError as error:  # too large (or a decompression bomb) included
        raise refusal(str(error).replace(str(path), name), title="Not an image") from None
    return LoadedImage(name, pixels, hashlib.sha1(pixels.numpy().tobytes()).hexdigest())


def config_unavailable(config: str | Path) -> str | None:
    """Why ``config`` cannot run here (no such file, weights not on this machine), or None."""
    try:
        return "; ".join(missing_weights(config)) or None
    except ConfigError as error:
        return str(error)


def build_app(configs: list[str | Path], examples: str | Path, device: str = "cpu",
              max_pixels: int = DEFAULT_MAX_PIXELS) -> gr.Blocks:
    """The Gradio app over ``configs`` (those whose weights are not here are listed, disabled),
    with ``EXAMPLE_COUNT`` generated scenes in ``examples`` to pick from; an image of more than
    ``max_pixels`` pixels is refused."""
    example_paths = sorted(str(p) for p in (generate_dataset(examples, EXAMPLE_COUNT) / "images").glob("*.png"))
    unavailable = {str(c): config_unavailable(c) for c in configs}
    usable = [str(c) for c in configs if not unavailable[str(c)]]
    if not usable:
        raise ConfigError("no config can run here: " + "; ".join(f"{c}: {r}" for c, r in unavailable.items()))
    sessions = Sessions(device)
    # The masks offered for download (Gradio serves copies); removed with the app at exit.
    outputs = tempfile.TemporaryDirectory(prefix="paintseg-app-")

    def load(path: str | None):
        if not path:
            raise refusal("No file came with the upload", title="Not an image")
        image, draft = open_image(path, max_pixels), PromptDraft()
        return image, draft, draw_draft(image, draft), draft.describe()

    def pick_example(evt: gr.SelectData):
        return load(example_paths[evt.index])

    def place(image: LoadedImage | None, draft: PromptDraft, mode: str, evt: gr.SelectData):
        if image is None:
            raise refusal("Upload an image or pick an example first")
        draft.add(mode, int(evt.index[0]), int(evt.index[1]))
        return draft, draw_draft(image, draft), draft.describe()

    def clear(image: LoadedImage | None):
        draft = PromptDraft()
        return draft, None if image is None else draw_draft(image, draft), draft.describe()

    def segment(image: LoadedImage | None, draft: PromptDraft, config: str, progress=gr.Progress()):
        if image is None:
            raise refusal("Upload an image or pick an example first")
        prompt = draft.prompt()
        if prompt is None:
            raise refusal("Place a box (click two corners) or a positive click on the image first")
        progress(0, desc=f"loading {Path(config).name}, set_image")
        try:
            segmenter, set_image_seconds = sessions.segmenter(config, image)
            total = segmenter.steps_for(prompt)
            result = segmenter.predict(prompt, on_step=lambda step: progress(
                (step.iteration + 1, total), desc=f"{STEP_NAMES[step.kind]} {step.iteration + 1}/{total}"))
        except (ConfigError, PromptError) as error:
            raise refusal(str(error)) from None
        mask = draft.answer = result.mask.cpu()
        mask_path = Path(outputs.name) / f"{Path(image.name).stem}_mask_{uuid.uuid4().hex[:8]}.png"
        save_png_atomic(mask_path, mask.numpy().astype(np.uint8) * 255)
        return (draft, overlay(image.pixels, mask, prompt), step_strip(image.pixels, result, prompt),
                latency_table(result, set_image_seconds), str(mask_path))

    with gr.Blocks(title="paintseg", analytics_enabled=False) as app:
        gr.Markdown("# paintseg: segment by painting\nPick an example or upload an image, click on it to "
                    "place a box (two corners) or clicks, then **Segment**.")
        image_state, draft_state = gr.State(None), gr.State(PromptDraft())
        with gr.Row():
            gallery = gr.Gallery(example_paths, label="Examples (generated scenes)", columns=EXAMPLE_COUNT,
                                 allow_preview=False, height=THUMBNAILS_HEIGHT, object_fit="contain", buttons=[],
                                 scale=3, elem_id="examples")
            upload = gr.UploadButton("Upload an image", scale=1, elem_id="upload")
        with gr.Row():
            with gr.Column():
                canvas = gr.Image(label="Image: click to place the prompt", interactive=False, format="png",
                                  height=IMAGE_HEIGHT, buttons=IMAGE_BUTTONS, elem_id="canvas")
                mode = gr.Radio([BOX, POSITIVE, NEGATIVE], value=BOX, label="A click places", elem_id="mode")
                prompt_text = gr.Markdown(PromptDraft().describe(), elem_id="prompt")
                with gr.Row():
                    clear_button = gr.Button("Clear prompt", elem_id="clear")
                    run_button = gr.Button("Segment", variant="primary", elem_id="segment")
                config = gr.Radio([(Path(c).name, c) for c in usable], value=usable[0], label="Config",
                                  elem_id="config")
                missing = {Path(c).name: reason for c, reason in unavailable.items() if reason}
                if missing:
                    gr.Radio(list(missing), label="Configs whose weights are not on this machine", interactive=False,
                             info="; ".join(f"{name}: {reason}" for name, reason in missing.items()),
                             elem_id="unavailable")
            with gr.Column():
                result_image = gr.Image(label="Overlay", interactive=False, format="png", height=IMAGE_HEIGHT,
                                        buttons=IMAGE_BUTTONS, elem_id="overlay")
                gr.Markdown("**The mask after each step**: an I-step paints the object away and keeps what "
                            "changes, an O-step paints the background back and adds what stays.")
                strip = gr.Image(show_label=False, interactive=False, format="png", buttons=IMAGE_BUTTONS,
                                 elem_id="steps")
                latency = gr.Markdown(elem_id="latency")
                mask_file = gr.File(label="Mask (PNG)", interactive=False, elem_id="mask")

        # Cheap events skip the queue's limit, so a click is drawn while someone else's run goes on.
        cheap = dict(concurrency_limit=None, show_progress="hidden")
        loaded = [image_state, draft_state, canvas, prompt_text]
        upload.upload(load, upload, loaded, **cheap)
        gallery.select(pick_example, None, loaded, **cheap)
        canvas.select(place, [image_state, draft_state, mode], [draft_state, canvas, prompt_text], **cheap)
        clear_button.click(clear, image_state, [draft_state, canvas, prompt_text], **cheap)
        run_button.click(segment, [image_state, draft_state, config],
                         [draft_state, result_image, strip, latency, mask_file], concurrency_limit=1)
    return app.queue()


def main(args: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="paintseg app", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, action="append",
                        help="a config to offer (repeatable; default: configs/default.yaml, fast.yaml, reference.yaml)")
    parser.add_argument("--examples", type=Path, default=DEFAULT_EXAMPLES,
                        help="folder for the generated example scenes (default: %(default)s)")
    parser.add_argument("--host", default="127.0.0.1", help="address to serve on (default: %(default)s)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="port (default: %(default)s)")
    parser.add_argument("--device", default=default_device(),
                        help="where the painter and features run (default: %(default)s)")
    parser.add_argument("--max-pixels", type=pixel_limit, default=DEFAULT_MAX_PIXELS,
                        help="refuse an image of more pixels than this (default: %(default)s)")
    parser.add_argument("--max-upload-mb", type=int, default=DEFAULT_MAX_UPLOAD_MB,
                        help="refuse an upload larger than this many MB (default: %(default)s)")
    options = parser.parse_args(args)
    if options.max_upload_mb < 1:
        parser.error(f"--max-upload-mb must be >= 1, got {options.max_upload_mb}")
    # Gradio keeps uploads in GRADIO_TEMP_DIR: one folder of this app's own, removed at the end.
    temporary = tempfile.TemporaryDirectory(prefix="paintseg-app-uploads-")
    os.environ["GRADIO_TEMP_DIR"] = temporary.name
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("paintseg app: stopped (SIGTERM)"))  # so `finally` runs
    try:
        app = build_app(options.config or DEFAULT_CONFIGS, options.examples, check_device(options.device),
                        options.max_pixels)
        print(f"paintseg app: http://{options.host}:{options.port} (Ctrl-C to stop)", flush=True)
        # quiet: Gradio's own lines would suggest share=True, a public link this app never makes.
        app.launch(server_name=options.host, server_port=options.port, ssr_mode=False, quiet=True,
                   max_file_size=f"{options.max_upload_mb}mb")
    except (ConfigError, FileExistsError) as error:
        raise SystemExit(f"paintseg app: error: {error}") from None
    finally:
        temporary.cleanup()


if __name__ == "__main__":
    main()
