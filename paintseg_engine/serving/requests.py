"""The wire format in: a request's image and prompts, checked at the door.

A request is a JSON object ``{"image": <base64 PNG/JPEG/...>, "prompts": [...]}``, or a
multipart form with the file in ``image`` and the prompts' JSON text in ``prompts``. A prompt is
an object with a ``box`` [x0, y0, x1, y1] and/or ``positive`` / ``negative`` clicks [[x, y], ...],
or a coarse ``mask`` (base64 PNG of the image's size, non-zero = object). Clicks alone may carry
the ``previous`` answer they correct (a mask as ``mask`` is), as SAM's mask input. Pixels of the image, x
right, y down, box x1, y1 exclusive. Anything else is a ``Refusal``: an HTTP status and one line
naming what is wrong. docs/serve.md has the schema.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import io
import json
import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from torch import Tensor

from ..errors import PromptError
from ..errors import ImageTooLargeError
from ..imageio import rgb_tensor
from ..limits import check_pixel_count
from ..prompts import MaskPrompt, Prompt, prompt_from
from .sessions import ImageSession

PROMPT_KEYS = ("box", "positive", "negative", "previous", "mask")


class Refusal(Exception):
    """A request the server will not segment: the HTTP status and why, in one line."""

    def __init__(self, status: int, detail: str):
        super().__init__(status, detail)  # both in args: the exception pickles whole
        self.status, self.detail = status, detail


@dataclass
class SegmentRequest:
    """A checked request: the image's key and size, either the session already holding the image
    or the decoded image, the prompts, and when the worker took it (the deadline counts from it)."""

    key: str
    size: tuple[int, int]  # (H, W)
    session: ImageSession | None
    image: Tensor | None
    prompts: list[Prompt]
    received: float = field(default_factory=time.monotonic)


def content_key(data: bytes) -> str:
    """Which image bytes these are: two requests with equal keys share an image set-up."""
    return hashlib.sha256(data).hexdigest()


def read_fields(body) -> tuple[bytes, object]:
    """(The image's bytes, the prompts as parsed JSON) of a JSON object or a multipart form."""
    if isinstance(body, dict):
        if "image" not in body or "prompts" not in body:
            raise Refusal(422, f"the request needs 'image' (base64) and 'prompts'; it has {sorted(body)}")
        return from_base64(body["image"], "image"), body["prompts"]
    if hasattr(body, "getlist"):  # a multipart form (starlette's FormData)
        upload, prompts = body.get("image"), body.get("prompts")
        if not hasattr(upload, "file") or not isinstance(prompts, str):
            raise Refusal(422, "a multipart request needs the file 'image' and the text field 'prompts' (JSON)")
        try:
            return upload.file.read(), json.loads(prompts)
        except json.JSONDecodeError as error:
            raise Refusal(400, f"field 'prompts' is not valid JSON ({error})") from None
    raise Refusal(422, f"the body must be a JSON object or a multipart form, got {type(body).__name__}")


def from_base64(value, what: str) -> bytes:
    if not isinstance(value, str):
        raise Refusal(422, f"{what} must be a base64 string, got {type(value).__name__}")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as error:
        raise Refusal(400, f"{what} is not valid base64 ({error})") from None


def open_image(data: bytes, what: str, max_pixels: int) -> Image.Image:
    """The decoded image of ``data``; its size is checked from the header, before decoding."""
    try:
        image = Image.open(io.BytesIO(data))
    except (UnidentifiedImageError, OSError):
        raise Refusal(415, f"{what}: the {len(data)} bytes are not an image in a format Pillow reads "
                      "(PNG, JPEG, WebP, TIFF, ...)") from None
    except Image.DecompressionBombError as error:  # Pillow's own limit, for a max_pixels set above it
        raise Refusal(413, f"{what}: refused as a decompression bomb ({error})") from None
    width, height = image.size
    try:
        check_pixel_count(width, height, max_pixels, what)
    except ImageTooLargeError as error:
        raise Refusal(413, str(error)) from None
    if min(width, height) < 1:
        raise Refusal(422, f"{what} is empty ({width}x{height})")
    try:
        image.load()
    except (OSError, SyntaxError) as error:
        raise Refusal(415, f"{what}: the image cannot be decoded ({error})") from None
    return image


def decode_image(data: bytes, max_pixels: int) -> Tensor:
    """[3, H, W] float in [0, 1], EXIF rotation applied, as ``load_image`` reads a file."""
    return rgb_tensor(ImageOps.exif_transpose(open_image(data, "image", max_pixels)))


def number(value, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise Refusal(422, f"{what} must be a finite number, got {value!r}")
    return float(value)


def numbers(value, count: int, what: str) -> tuple[float, ...]:
    if not isinstance(value, list) or len(value) != count:
        raise Refusal(422, f"{what} must be a list of {count} numbers, got {value!r}")
    return tuple(number(v, what) for v in value)


def points(value, what: str) -> list[tuple[float, ...]]:
    if not isinstance(value, list):
        raise Refusal(422, f"{what} must be a list of [x, y] points, got {value!r}")
    return [numbers(p, 2, f"{what}[{i}]") for i, p in enumerate(value)]


def mask_field(spec: dict, key: str, what: str, max_pixels: int) -> Tensor:
    """Bool [H, W]: the base64 PNG mask in ``spec[key]``, non-zero = object."""
    mask = open_image(from_base64(spec[key], f"{what}.{key}"), f"{what}.{key}", max_pixels)
    return torch.from_numpy(np.asarray(mask.convert("L")) > 0)


def parse_prompt(spec, index: int, size: tuple[int, int], max_pixels: int) -> Prompt:
    """One prompt object, checked against the image's (H, W)."""
    what = f"prompts[{index}]"
    if not isinstance(spec, dict):
        raise Refusal(422, f"{what} must be an object with {list(PROMPT_KEYS)}, got {type(spec).__name__}")
    unknown = sorted(set(spec) - set(PROMPT_KEYS))
    if unknown:
        raise Refusal(422, f"{what} has unknown keys {unknown}; known: {list(PROMPT_KEYS)}")
    try:
        if "mask" in spec:
            if len(spec) > 1:
                raise Refusal(422, f"{what}: a coarse 'mask' goes alone, without box or clicks")
            prompt = MaskPrompt(mask_field(spec, "mask", what, max_pixels))
        else:
            box = numbers(spec["box"], 4, f"{what}.box") if "box" in spec else None
            if "previous" in spec and box is not None:
                raise Refusal(422, f"{what}: a 'previous' mask goes with clicks alone (a box is its own start)")
            previous = mask_field(spec, "previous", what, max_pixels) if "previous" in spec else None
            prompt = prompt_from(box, points(spec.get("positive", []), f"{what}.positive"),
                                 points(spec.get("negative", []), f"{what}.negative"), previous)
        prompt.initial_mask(*size)  # a prompt outside the image, empty, or with masks of another size fails here
    except PromptError as error:
        raise Refusal(422, f"{what}: {error}") from None
    return prompt


def parse_prompts(value, size: tuple[int, int], max_prompts: int, max_pixels: int) -> list[Prompt]:
    if not isinstance(value, list) or not value:
        raise Refusal(422, f"'prompts' must be a non-empty list of prompt objects, got {value!r:.80}")
    if len(value) > max_prompts:
        raise Refusal(422, f"{len(value)} prompts, more than max_prompts={max_prompts}")
    return [parse_prompt(spec, i, size, max_pixels) for i, spec in enumerate(value)]
