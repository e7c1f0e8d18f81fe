"""Image set-ups kept between requests: a new prompt on an image the worker has seen skips
decoding it and ``set_image``."""
from __future__ import annotations

import copy
import time
from collections import OrderedDict

from torch import Tensor

from ..amcp import Segmenter


class ImageSessions:
    """At most ``capacity`` segmenters, each holding one image, least recently used dropped first.

    They share the models of ``segmenter``: a painter keeps its per-image work (a resized image,
    cached latents) on itself, so each session has a shallow copy of it, whose weights are the
    same objects."""

    def __init__(self, segmenter: Segmenter, capacity: int, device: str):
        self.segmenter, self.capacity, self.device = segmenter, capacity, device
        self.sessions: OrderedDict[str, Segmenter] = OrderedDict()

    def get(self, key: str) -> Segmenter | None:
        """The session holding the image of ``key``, now the most recently used; None if not held."""
        if key in self.sessions:
            self.sessions.move_to_end(key)
        return self.sessions.get(key)

    def open(self, key: str, image: Tensor) -> tuple[Segmenter, float]:
        """A session holding ``image`` (kept under ``key``), and the seconds ``set_image`` took."""
        base = self.segmenter
        session = Segmenter(copy.copy(base.painter), base.features, base.config)
        start = time.perf_counter()
        session.set_image(image.to(self.device))
        seconds = time.perf_counter() - start
        self.sessions[key] = session
        while len(self.sessions) > self.capacity:
            self.sessions.popitem(last=False)
        return session, seconds
