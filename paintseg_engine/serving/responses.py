"""The wire format out: per prompt the mask as a PNG and as COCO RLE, and where the time went."""
from __future__ import annotations

import base64
import io
from dataclasses import dataclass

import numpy as np
from PIL import Image
from pycocotools import mask as coco_mask
from torch import Tensor

from ..amcp import StepRecord


@dataclass
class PromptAnswer:
    mask: Tensor  # bool [H, W], on the CPU
    steps: list[StepRecord]
    seconds: float


@dataclass
class SegmentAnswer:
    """One request's answer: the image it was about, then one answer per prompt, in order."""

    key: str
    size: tuple[int, int]  # (H, W)
    set_image_seconds: float | None  # None: the image's set-up was reused
    answers: list[PromptAnswer]

    def to_json(self) -> dict:
        height, width = self.size
        return {"image": {"width": width, "height": height, "key": self.key,
                          "set_image_seconds": self.set_image_seconds, "reused": self.set_image_seconds is None},
                "results": [{"mask_png": png_base64(a.mask), "rle": coco_rle(a.mask),
                             "area": int(a.mask.sum()), "seconds": a.seconds,
                             "steps": [s.timings() for s in a.steps]} for a in self.answers]}


def png_base64(mask: Tensor) -> str:
    """The mask as a base64 8-bit grey PNG, 0 background and 255 object."""
    buffer = io.BytesIO()
    Image.fromarray(mask.numpy().astype(np.uint8) * 255).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def coco_rle(mask: Tensor) -> dict:
    """COCO's compressed RLE of the mask, as pycocotools encodes it, ``counts`` as text."""
    rle = coco_mask.encode(np.asfortranarray(mask.numpy().astype(np.uint8)))
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}
