"""Datasets of image/mask folders, with prompts synthesized from ground truth, as a DataModule.

Each dataset becomes its own predict dataloader, so ``dataloader_idx`` names the dataset.
Layout: ``<root>/images/<stem>.<ext>`` and optional ``<root>/masks/<stem>.png`` (0 background,
255 object, 128 = unlabeled band, excluded from IoU as in the GrabCut protocol).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from ..io import load_image, load_mask
from ..prompts import BoxPrompt, PointsPrompt, Prompt, ScribblePrompt
from .synthetic import generate_dataset

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
VOID_VALUE = 128
PROMPT_KINDS = ("box", "points", "scribble")


@dataclass
class DatasetSpec:
    """One dataset: a folder (``kind: folder``) or the generated default (``kind: synthetic``,
    written to ``root`` on first use with ``num_images`` scenes of ``seed``). ``max_images``
    keeps an evenly spaced subset of the sorted file list (for quick runs on big sets)."""

    name: str
    root: str
    kind: str = "folder"
    num_images: int = 12
    seed: int = 0
    max_images: int | None = None


def interior_point(mask: np.ndarray) -> tuple[float, float]:
    """(x, y) of the pixel farthest from the mask's boundary: the standard first click."""
    distance = cv2.distanceTransform(np.pad(mask, 1).astype(np.uint8), cv2.DIST_L2, 5)[1:-1, 1:-1]
    y, x = np.unravel_index(np.argmax(distance), distance.shape)
    return float(x), float(y)


def prompt_from_gt(gt: torch.Tensor, kind: str) -> Prompt:
    """The prompt a user would give for this object: its tight box, a click at its most interior
    point, or a scribble (its skeleton-like core: the mask eroded to a third of its thickness)."""
    if kind == "box":
        ys, xs = torch.nonzero(gt, as_tuple=True)
        return BoxPrompt((xs.min().item(), ys.min().item(), xs.max().item() + 1, ys.max().item() + 1))
    mask = gt.numpy().astype(np.uint8)
    if kind == "points":
        return PointsPrompt(positive=[interior_point(mask)])
    if kind == "scribble":
        distance = cv2.distanceTransform(np.pad(mask, 1), cv2.DIST_L2, 5)[1:-1, 1:-1]
        return ScribblePrompt(torch.from_numpy(distance >= distance.max() * 2 / 3))
    raise ValueError(f"unknown prompt kind {kind!r}; expected one of {PROMPT_KINDS}")


class SegmentationFolder(Dataset):
    """Items: ``image`` [3, H, W] float, ``gt`` / ``ignore`` bool [H, W] or None, ``prompt``,
    ``name`` (file stem), ``dataset``."""

    def __init__(self, root: str | Path, name: str, prompt: str = "box", skip: set[str] | None = None,
                 max_images: int | None = None):
        self.root, self.name, self.prompt = Path(root), name, prompt
        image_dir = self.root / "images"
        if not image_dir.is_dir():
            raise FileNotFoundError(f"dataset {name!r}: no folder {image_dir} "
                                    f"(expected {self.root}/images/<stem>.<ext> and {self.root}/masks/<stem>.png)")
        if prompt not in PROMPT_KINDS:
            raise ValueError(f"dataset {name!r}: unknown prompt kind {prompt!r}; expected one of {PROMPT_KINDS}")
        images = sorted(p for p in image_dir.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
        if max_images is not None and len(images) > max_images:
            images = [images[i] for i in np.linspace(0, len(images) - 1, max_images).round().astype(int)]
        self.images = [p for p in images if p.stem not in (skip or set())]

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> dict:
        path = self.images[index]
        image = load_image(path)
        mask_path = self.root / "masks" / f"{path.stem}.png"
        gt = ignore = None
        if mask_path.is_file():
            raw = load_mask(mask_path)
            if tuple(raw.shape) != tuple(image.shape[-2:]):
                raise ValueError(f"mask {mask_path} is {tuple(raw.shape)} but image {path} is "
                                 f"{tuple(image.shape[-2:])} (HxW)")
            gt, ignore = raw > VOID_VALUE, raw == VOID_VALUE
            if not gt.any():
                raise ValueError(f"mask {mask_path} is empty: no object to make a prompt from")
            ignore = ignore if ignore.any() else None
        else:
            raise FileNotFoundError(f"{path}: no ground-truth mask {mask_path} to make a {self.prompt} prompt from")
        return {"image": image, "gt": gt, "ignore": ignore, "prompt": prompt_from_gt(gt, self.prompt),
                "name": path.stem, "dataset": self.name}


def collate_items(items: list[dict]) -> list[dict]:
    return items  # images differ in size; AMCP handles them one by one


class PaintSegDataModule(L.LightningDataModule):
    """One predict dataloader per dataset. Images whose record exists under ``skip_done_in``
    (the prediction writer's folder; the writer sets it) are skipped, so a restarted run resumes."""

    def __init__(self, datasets: list[DatasetSpec], prompt: str = "box", batch_size: int = 1,
                 num_workers: int = 0, skip_done_in: str | None = None):
        super().__init__()
        if not datasets:
            raise ValueError("PaintSegDataModule needs at least one dataset")
        self.specs = [d if isinstance(d, DatasetSpec) else DatasetSpec(**d) for d in datasets]
        self.prompt, self.batch_size, self.num_workers = prompt, batch_size, num_workers
        self.skip_done_in = skip_done_in

    @property
    def dataset_names(self) -> list[str]:
        return [spec.name for spec in self.specs]

    def prepare_data(self) -> None:
        for spec in self.specs:
            if spec.kind == "synthetic":
                generate_dataset(spec.root, num_images=spec.num_images, seed=spec.seed)
            elif spec.kind != "folder":
                raise ValueError(f"dataset {spec.name!r}: unknown kind {spec.kind!r} (folder or synthetic)")

    def _done(self, spec: DatasetSpec) -> set[str]:
        if self.skip_done_in is None:
            return set()
        return {p.stem for p in (Path(self.skip_done_in) / spec.name / "records").glob("*.json")}

    def predict_dataloader(self) -> list[DataLoader]:
        return [DataLoader(SegmentationFolder(spec.root, spec.name, self.prompt, self._done(spec), spec.max_images),
                           batch_size=self.batch_size, num_workers=self.num_workers, collate_fn=collate_items)
                for spec in self.specs]
