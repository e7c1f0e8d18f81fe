"""The server's settings: the ``serve:`` section of a settings file (configs/serve.yaml)."""
from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

import yaml

from ..amcp.config import out_of_range
from ..errors import SettingsError
from ..limits import DEFAULT_MAX_PIXELS


@dataclass
class ServeSettings:
    """How ``paintseg serve`` takes requests; the model comes from the segmenter's own config."""

    # Work: inference worker processes per device, each with its own segmenter (the weight-free
    # default is CPU-bound and single-image, so throughput comes from workers, not batches).
    workers_per_device: int = 1
    # LitServe's request batching: up to max_batch_size requests, waiting at most batch_timeout s
    # for the batch to fill, go to one predict call (a batch sets each distinct image up once and
    # answers its prompts together, in lockstep: docs/serve.md, "Batching").
    max_batch_size: int = 1
    batch_timeout: float = 0.0
    # Reuse: image set-ups kept per worker, least recently used dropped first (keyed by a hash of
    # the image's bytes, so a new prompt on the same image skips decoding and set_image).
    image_cache_size: int = 8

    # Bounds. A request waits at most timeout s in the queue and segments at most timeout s more
    # (checked after each AMCP step), else 504. More than max_pending requests accepted at once
    # (queued or being segmented) get 503. Larger bodies get 413, larger images 413.
    timeout: float = 60.0
    max_pending: int = 32
    max_body_bytes: int = 32 * 2**20
    max_pixels: int = DEFAULT_MAX_PIXELS
    max_prompts: int = 16
    # SIGTERM stops accepting and lets the requests in flight finish for up to this long.
    drain_seconds: float = 30.0
    # If this environment variable is set, every request but /health needs its value in X-API-Key.
    api_key_env: str = "PAINTSEG_API_KEY"

    def __post_init__(self) -> None:
        errors = out_of_range(self, self._ranges())
        if not errors and self.batch_timeout >= self.timeout:
            errors.append(f"batch_timeout={self.batch_timeout!r} (allowed: < timeout={self.timeout!r})")
        if errors:
            raise SettingsError("serve: " + "; ".join(errors))

    @staticmethod
    def _ranges() -> dict:
        whole = lambda low: (lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= low,  # noqa: E731
                             f"a whole number >= {low}")
        seconds = lambda low: (lambda v: isinstance(v, (int, float)) and v >= low, f"seconds >= {low}")  # noqa: E731
        return {
            "workers_per_device": whole(1),
            "max_batch_size": whole(1),
            "batch_timeout": seconds(0),
            "image_cache_size": whole(1),
            "timeout": (lambda v: isinstance(v, (int, float)) and v > 0, "seconds > 0"),
            "max_pending": whole(1),
            "max_body_bytes": whole(1024),
            "max_pixels": whole(1),
            "max_prompts": whole(1),
            "drain_seconds": seconds(0),
            "api_key_env": (lambda v: isinstance(v, str) and v != "", "an environment variable's name"),
        }

    @classmethod
    def from_file(cls, path: str | Path | None) -> "ServeSettings":
        """The ``serve:`` section of ``path`` (the defaults when None); unknown keys are refused."""
        if path is None:
            return cls()
        path = Path(path)
        if not path.is_file():
            raise SettingsError(f"settings {path}: no such file")
        section = (yaml.safe_load(path.read_text()) or {}).get("serve") or {}
        unknown = sorted(set(section) - {f.name for f in fields(cls)})
        if unknown:
            raise SettingsError(f"settings {path}: unknown serve settings {unknown}; "
                                f"known: {[f.name for f in fields(cls)]}")
        return cls(**section)
