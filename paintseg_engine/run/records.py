"""What crosses the run: the DataModule's ``Item`` to the module, the module's ``Prediction`` to the
writer, and what the writer keeps per image on disk."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from torch import Tensor

from ..clicks import ClickProtocol
from ..data.coco import CocoScope
from ..prompts import Prompt


@dataclass
class Item:
    """One dataset item as the DataModule reads it: ``image`` [3, H, W] in [0, 1], ``prompt``,
    ``gt`` / ``ignore`` bool [H, W] (``ignore`` None when nothing is ignored), ``name`` (file stem,
    or ``<stem>_<id>`` per instance), ``dataset``. An item that could not be read carries only its
    name, dataset and ``error`` (why), so one bad file never stops a dataset."""

    name: str
    dataset: str
    image: Tensor | None = None
    prompt: Prompt | ClickProtocol | None = None
    gt: Tensor | None = None
    ignore: Tensor | None = None
    error: str | None = None
    # A COCO image (run/coco.py): its instances, each an Item without the image (answered on one
    # session), and what its dataset's AP is computed on. An instance's coco: image and category
    # ids, score.
    instances: list[Item] | None = None
    coco_scope: CocoScope | None = None
    coco: dict | None = None


@dataclass
class PredictionRecord:
    """One finished image, as ``records/<name>.json``: metrics and timings, no pixels."""

    name: str
    dataset: str
    prompt: str  # the prompt kind: box, points, scribble, coarse_mask, clicks
    method: str  # amcp or grabcut
    iou: float | None
    prompt_iou: float | None
    fbeta: float | None
    seconds: float
    settings: str = ""  # the run's settings key (the writer's): records of other settings never count
    timings: list[dict] = field(default_factory=list)  # one per AMCP iteration
    # The click protocol only: clicks as [x, y, positive], IoU after each, NoC@85/90, the cap.
    clicks: list[list] | None = None
    click_ious: list[float] | None = None
    noc85: int | None = None
    noc90: int | None = None
    max_clicks: int | None = None
    # A COCO instance (run/coco.py): image_id, category_id, score, the mask and prompt as RLE, prompt_bbox.
    coco: dict | None = None

    def step_seconds(self, step: str) -> float | None:
        """Mean seconds of this image's I-steps (``inpaint``) or O-steps (``outpaint``)."""
        seconds = [t["seconds"] for t in self.timings if t["step"] == step]
        return sum(seconds) / len(seconds) if seconds else None

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "inpaint_seconds": self.step_seconds("inpaint"),
                "outpaint_seconds": self.step_seconds("outpaint")}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "PredictionRecord":
        known = {f.name for f in fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in known})


@dataclass
class Failure:
    """An item that could not be segmented, and why (``failures/<name>.json``)."""

    name: str
    dataset: str
    error: str  # one line naming the file or setting at fault


@dataclass
class Prediction:
    """``predict_step``'s answer for one item: a record with its mask, or a failure."""

    name: str
    dataset: str
    record: PredictionRecord | None = None
    mask: Tensor | None = None  # bool [H, W]
    prompt: Prompt | None = None  # what the overlay draws
    failure: Failure | None = None
