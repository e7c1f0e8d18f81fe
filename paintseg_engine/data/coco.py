"""COCO datasets: an instances annotations file, images at ``<root>/<file_name>``, and the
instances to segment on each image, from the ground truth or from a detector's results.

Ground-truth instances are the annotations' objects (polygons or RLE, decoded by
``pycocotools.mask``); crowd annotations get no prompt, as COCO's evaluation ignores detections
that fall on them. A detector's ``bbox`` results file gives instead one instance per detection
scoring at least ``score_threshold``: its box is the prompt and its score the mask's score.

Plain data, no Lightning: the DataModule turns a ``CocoImage`` into an item.
"""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..errors import CocoFileError, ItemError

CROWD = "iscrowd"


def require_pycocotools():
    try:
        from pycocotools import mask as mask_utils
    except ImportError:  # an optional extra: say how to get it
        raise ImportError("the coco layout needs pycocotools: pip install 'paintseg-engine[coco]'") from None
    return mask_utils


@dataclass(frozen=True)
class CocoInstance:
    """One object to segment: ``name`` is the item's (``<image stem>_a<annotation id>`` for ground
    truth, ``<image stem>_d<k>`` for the image's k-th detection in the results file)."""

    name: str
    category_id: int
    box: tuple[float, float, float, float]  # x0, y0, x1, y1 (end exclusive), pixels
    score: float  # 1.0 for ground truth
    segmentation: dict | list | None = None  # the ground-truth object, as the annotation gives it


@dataclass(frozen=True)
class CocoImage:
    image_id: int
    path: Path
    height: int
    width: int
    instances: tuple[CocoInstance, ...]


@dataclass  # not frozen: Lightning's batch transfer refuses frozen dataclasses
class CocoScope:
    """What a dataset's mask AP is computed on: the annotations, the images run, the categories."""

    annotations: str
    image_ids: tuple[int, ...]
    category_ids: tuple[int, ...]

    def to_json(self) -> dict:
        return {"annotations": self.annotations, "image_ids": list(self.image_ids),
                "category_ids": list(self.category_ids)}


def decode_segmentation(segmentation: dict | list, height: int, width: int) -> torch.Tensor:
    """Bool [H, W] from a COCO segmentation: polygons, uncompressed RLE or compressed RLE."""
    mask_utils = require_pycocotools()
    try:
        if isinstance(segmentation, list):  # polygons: one RLE per polygon, merged
            rle = mask_utils.merge(mask_utils.frPyObjects(segmentation, height, width))
        elif isinstance(segmentation.get("counts"), list):  # uncompressed RLE
            rle = mask_utils.frPyObjects(segmentation, height, width)
        else:
            rle = segmentation
        mask = mask_utils.decode(rle).astype(bool)
    except (TypeError, ValueError, KeyError, AttributeError) as err:
        raise ItemError(f"segmentation cannot be decoded ({type(err).__name__}: {err})") from None
    if mask.shape != (height, width):
        raise ItemError(f"segmentation is {mask.shape} but its image is {(height, width)} (HxW)")
    return torch.from_numpy(mask)


def encode_mask(mask: Tensor | np.ndarray) -> dict:
    """COCO's compressed RLE of a bool [H, W] mask, ``counts`` as text (JSON-ready)."""
    mask_utils = require_pycocotools()
    array = mask.numpy() if isinstance(mask, Tensor) else np.asarray(mask)
    rle = mask_utils.encode(np.asfortranarray(array.astype(np.uint8)))
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}


def annotation_of(mask: Tensor | np.ndarray, annotation_id: int, image_id: int, category_id: int) -> dict:
    """A COCO ground-truth annotation of one non-empty object mask (RLE segmentation)."""
    mask_utils = require_pycocotools()
    rle = encode_mask(mask)
    return {"id": annotation_id, "image_id": image_id, "category_id": category_id, "segmentation": rle,
            "bbox": [float(v) for v in mask_utils.toBbox(rle)], "area": float(mask_utils.area(rle)), CROWD: 0}


def xywh_to_box(bbox: list[float]) -> tuple[float, float, float, float]:
    x, y, w, h = (float(v) for v in bbox)
    return x, y, x + w, y + h


def _read_json(path: Path, what: str):
    if not path.is_file():
        raise FileNotFoundError(f"no {what} file {path}")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CocoFileError(f"{path} is not a JSON {what} file ({err})") from None


class CocoAnnotations:
    """The annotations file, filtered to ``categories`` (names or ids; all when None)."""

    def __init__(self, path: str | Path, categories: list[int | str] | None = None):
        self.path = Path(path)
        data = _read_json(self.path, "COCO annotations")
        missing = [key for key in ("images", "annotations", "categories") if key not in data]
        if not isinstance(data, dict) or missing:
            raise CocoFileError(f"{self.path}: not a COCO instances file (missing {missing or 'everything'})")
        self.images = {image["id"]: image for image in data["images"]}
        stems = Counter(Path(image["file_name"]).stem for image in data["images"])
        shared = sorted(stem for stem, count in stems.items() if count > 1)
        if shared:  # item names start with the stem: two images must not share one
            raise CocoFileError(f"{self.path}: images share the file stem {shared[0]!r}; item names need distinct stems")
        by_name = {c["name"]: c["id"] for c in data["categories"]}
        known = set(by_name.values())
        wanted = [by_name.get(c, c) for c in categories] if categories else sorted(known)
        unknown = [c for c, i in zip(categories or [], wanted) if i not in known]
        if unknown:
            raise CocoFileError(f"{self.path}: unknown categories {unknown}; known: {sorted(by_name)}")
        self.category_ids = sorted(set(wanted))
        self.annotations: dict[int, list[dict]] = {image_id: [] for image_id in self.images}
        for ann in data["annotations"]:
            if ann["category_id"] in self.category_ids and ann["image_id"] in self.annotations:
                self.annotations[ann["image_id"]].append(ann)

    def image_ids(self, max_images: int | None = None) -> list[int]:
        """Image ids in increasing order; ``max_images`` keeps an evenly spaced subset."""
        ids = sorted(self.images)
        if max_images is not None and len(ids) > max_images:
            ids = [ids[i] for i in np.linspace(0, len(ids) - 1, max_images).round().astype(int)]
        return ids

    def ground_truth_instances(self, image_id: int) -> tuple[CocoInstance, ...]:
        stem = Path(self.images[image_id]["file_name"]).stem
        return tuple(CocoInstance(f"{stem}_a{ann['id']}", ann["category_id"], xywh_to_box(ann["bbox"]), 1.0,
                                  ann["segmentation"])
                     for ann in self.annotations[image_id] if not ann.get(CROWD, 0))


def read_detections(path: str | Path, annotations: CocoAnnotations, score_threshold: float
                    ) -> dict[int, tuple[CocoInstance, ...]]:
    """Image id -> detections scoring at least ``score_threshold``, of the annotations' categories.
    A detection keeps its index among its image's detections in the file as its name, so a
    different threshold names the same detection the same way."""
    path = Path(path)
    results = _read_json(path, "COCO detection results")
    if not isinstance(results, list) or any(not {"image_id", "bbox", "score", "category_id"} <= set(r)
                                            for r in results if isinstance(r, dict)):
        raise CocoFileError(f"{path}: expected a list of {{image_id, category_id, bbox, score}} (COCO bbox results)")
    unknown = sorted({r["image_id"] for r in results} - set(annotations.images))
    if unknown:
        raise CocoFileError(f"{path}: detections on images not in {annotations.path}, e.g. image_id {unknown[0]}")
    found: dict[int, list[CocoInstance]] = {}
    counts: dict[int, int] = {}
    for result in results:
        image_id = result["image_id"]
        index = counts[image_id] = counts.get(image_id, -1) + 1
        if result["score"] >= score_threshold and result["category_id"] in annotations.category_ids:
            stem = Path(annotations.images[image_id]["file_name"]).stem
            found.setdefault(image_id, []).append(
                CocoInstance(f"{stem}_d{index}", result["category_id"], xywh_to_box(result["bbox"]),
                             float(result["score"])))
    return {image_id: tuple(instances) for image_id, instances in found.items()}


def list_coco_images(root: str | Path, annotations: str | Path | CocoAnnotations,
                     categories: list[int | str] | None = None, max_images: int | None = None,
                     detections: str | Path | None = None, score_threshold: float = 0.0) -> list[CocoImage]:
    """Every image of the (filtered) dataset with its instances, by image id. An image with no
    instance stays in the list: it still counts in the evaluation (a missed object lowers AP).
    ``annotations`` already read keep their own category filter."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"no COCO image root {root} (images are read from <root>/<file_name>)")
    coco = annotations if isinstance(annotations, CocoAnnotations) else CocoAnnotations(annotations, categories)
    detected = read_detections(detections, coco, score_threshold) if detections else None
    images = []
    for image_id in coco.image_ids(max_images):
        info = coco.images[image_id]
        instances = detected.get(image_id, ()) if detected is not None else coco.ground_truth_instances(image_id)
        images.append(CocoImage(image_id, root / info["file_name"], info["height"], info["width"], instances))
    return images
