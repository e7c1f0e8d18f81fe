"""Image set-ups kept between requests: a new prompt on an image the worker has seen skips
decoding it and ``set_image``."""
from __future__ import annotations

import copy
import time
from collections import OrderedDict
from dataclasses import dataclass

from torch import Tensor

from ..amcp import PromptSegmenter


@dataclass
class ImageSession:
    segmenter: PromptSegmenter  # holding the image
    size: tuple[int, int]  # the image's (H, W)


def session_of(segmenter: PromptSegmenter) -> PromptSegmenter:
    """A segmenter that holds its own image and shares ``segmenter``'s models: its parts keep
    their per-image work (a resized image, cached latents) on themselves, so each is a shallow
    copy, whose weights are the same objects. A part the segmenter holds under two names (AMCP's
    one painter as ``painter`` and ``outpaint_painter``) is copied once and held under both, so no
    name is left pointing at the shared part, which holds the image set last."""
    session = copy.copy(segmenter)
    copies = {id(part): copy.copy(part) for part in segmenter.components().values()}
    for name, value in vars(segmenter).items():
        if id(value) in copies:
            setattr(session, name, copies[id(value)])
    return session


class ImageSessions:
    """At most ``capacity`` sessions on ``device``, each holding one image, least recently used
    dropped first; all share the models of ``segmenter``."""

    def __init__(self, segmenter: PromptSegmenter, capacity: int, device: str):
        self.segmenter, self.capacity, self.device = segmenter, capacity, device
        self.sessions: OrderedDict[str, ImageSession] = OrderedDict()

    def get(self, key: str) -> ImageSession | None:
        """The session holding the image of ``key``, now the most recently used; None if not held."""
        if key in self.sessions:
            self.sessions.move_to_end(key)
        return self.sessions.get(key)

    def open(self, key: str, image: Tensor) -> tuple[ImageSession, float]:
        """A session holding ``image`` (kept under ``key``), and the seconds ``set_image`` took."""
        segmenter = session_of(self.segmenter)
        start = time.perf_counter()
        segmenter.set_image(image.to(self.device))
        seconds = time.perf_counter() - start
        self.sessions[key] = session = ImageSession(segmenter, tuple(image.shape[-2:]))
        while len(self.sessions) > self.capacity:
            self.sessions.popitem(last=False)
        return session, seconds
