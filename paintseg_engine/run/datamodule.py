"""Datasets of images and ground-truth masks, with prompts made from the ground truth, as a DataModule.

Each dataset becomes its own predict dataloader, so ``dataloader_idx`` names the dataset.
Where images and masks live, and how masks encode objects, is the dataset's ``layout``
(readers.py); the default ``folder`` is ``<root>/images/<stem>.<ext>`` + ``<root>/masks/<stem>.png``
(0 background, 255 object, 128 = unlabeled band, excluded from metrics as in the GrabCut protocol).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import lightning as L
from lightning.pytorch.utilities import rank_zero_info
import numpy as np
from torch.utils.data import DataLoader, Dataset

from ..errors import ITEM_ERRORS, ItemError
from ..imageio import load_image, load_mask
from ..limits import DEFAULT_MAX_PIXELS, check_max_pixels
from .coco import CocoImages
from .folder import RunFolder, check_dataset_name
from .records import Item
from ..data.protocols import PROMPT_KINDS, PromptSettings, prompt_from_gt
from ..data.readers import Sample, decode_mask, layout_of, list_samples
from ..data.synthetic import generate_dataset

DATASET_KINDS = ("folder", "synthetic")
COCO_LAYOUT = "coco"


@dataclass
class DatasetSpec:
    """One dataset: a folder in one of the standard ``layout`` s (``kind: folder``) or the
    generated default (``kind: synthetic``, written to ``root`` on first use with ``num_images``
    scenes of ``seed``). ``max_images`` keeps an evenly spaced subset of the sorted items (for
    quick runs on big sets); ``split`` picks PASCAL VOC's image list; ``coarse_mask_dir`` holds
    coarse masks (``<stem>.png``, e.g. an unsupervised method's output) for the coarse_mask prompt.
    ``layout: coco`` reads ``annotations`` instead, images at ``<root>/<file_name>``, one item per
    image with all its instances (docs/datasets.md)."""

    name: str
    root: str
    kind: str = "folder"
    layout: str = "folder"
    num_images: int = 12
    seed: int = 0
    max_images: int | None = None
    split: str = "val"
    coarse_mask_dir: str | None = None
    # layout: coco (run/coco.py): the instances file; a category filter (names or ids); a
    # detector's bbox results as the prompts, those scoring at least score_threshold.
    annotations: str | None = None
    categories: list[int | str] | None = None
    prompts: str | None = None
    score_threshold: float = 0.0

    def __post_init__(self) -> None:
        check_dataset_name(self.name)
        if self.kind not in DATASET_KINDS:
            raise ValueError(f"dataset {self.name!r}: kind must be one of {DATASET_KINDS}, got {self.kind!r}")
        if self.layout == COCO_LAYOUT:
            if self.annotations is None or self.kind != "folder":
                raise ValueError(f"dataset {self.name!r}: layout coco needs kind folder and annotations: <instances.json>")
        else:
            layout_of(self.name, self.layout)
            if self.annotations is not None or self.prompts is not None or self.categories is not None:
                raise ValueError(f"dataset {self.name!r}: annotations, prompts and categories belong to layout coco")
        if not 0.0 <= self.score_threshold <= 1.0:
            raise ValueError(f"dataset {self.name!r}: score_threshold must be in [0, 1], got {self.score_threshold}")
        if self.max_images is not None and self.max_images < 1:
            raise ValueError(f"dataset {self.name!r}: max_images must be >= 1, got {self.max_images}")


class SegmentationFolder(Dataset):
    """A dataset's ``Item`` s (records.py). An item that cannot be read (corrupt image, no mask, a
    mask of another size, no object, more than ``max_pixels`` pixels, a broken link) carries its
    ``error`` instead: one bad file never stops a dataset, and the run's failure policy decides
    what happens (the prediction writer's ``on_error``). ``item_names`` are the dataset's items
    (after ``max_images``), finished (``skip``) or not.
    """

    def __init__(self, root: str | Path, name: str, prompt: str = "box", skip: set[str] | None = None,
                 max_images: int | None = None, layout: str = "folder", split: str = "val",
                 settings: PromptSettings | None = None, coarse_mask_dir: str | None = None,
                 max_pixels: int = DEFAULT_MAX_PIXELS):
        if prompt not in PROMPT_KINDS:
            raise ValueError(f"dataset {name!r}: unknown prompt kind {prompt!r}; expected one of {PROMPT_KINDS}")
        self.name, self.prompt, self.layout = name, prompt, layout_of(name, layout)
        self.settings, self.coarse_mask_dir = settings or PromptSettings(), coarse_mask_dir
        self.max_pixels = check_max_pixels(max_pixels)
        samples = list_samples(root, name, layout, split, self.max_pixels)
        if max_images is not None and len(samples) > max_images:
            samples = [samples[i] for i in np.linspace(0, len(samples) - 1, max_images).round().astype(int)]
        self.item_names = [s.name for s in samples]
        self.samples = [s for s in samples if s.name not in (skip or set())]

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> Item:
        sample = self.samples[index]
        try:
            return self.load(sample)
        except ITEM_ERRORS as error:
            return Item(sample.name, self.name, error=str(error))

    def load(self, sample: Sample) -> Item:
        if sample.problem:
            raise ItemError(sample.problem)
        if sample.mask is None:
            raise FileNotFoundError(f"{sample.image}: no ground-truth mask to make a {self.prompt} prompt from")
        raw = load_mask(sample.mask, self.max_pixels)
        image = load_image(sample.image, max_pixels=self.max_pixels)
        if tuple(raw.shape) != tuple(image.shape[-2:]):
            stored = load_image(sample.image, apply_exif=False, max_pixels=self.max_pixels)
            if tuple(raw.shape) != tuple(stored.shape[-2:]):
                raise ItemError(f"mask {sample.mask} is {tuple(raw.shape)} but image {sample.image} is "
                                 f"{tuple(image.shape[-2:])} (HxW)")
            image = stored  # the mask was drawn on the pixels as stored, before EXIF rotation
        gt, ignore = decode_mask(raw, self.layout, sample.instance)
        if not gt.any():
            what = "all void" if ignore.all() else "empty"
            raise ItemError(f"mask {sample.mask} is {what}: no object to make a prompt from")
        prompt = prompt_from_gt(gt, self.prompt, sample.name, self.settings, self.coarse_mask_dir)
        return Item(sample.name, self.name, image, prompt, gt, ignore if ignore.any() else None)


def collate_items(items: list[Item]) -> list[Item]:
    return items  # images differ in size; AMCP handles them one by one


class PaintSegDataModule(L.LightningDataModule):
    """One predict dataloader per dataset, every item prompted the same way (``prompt``, with
    ``prompt_settings``). Items finished in the run folder ``run_dir`` are skipped, so a
    restarted run resumes, and each dataset's current items are listed there for the table.
    ``max_images``, when set, caps every dataset (evenly spaced items); an image (or mask) of more
    than ``max_pixels`` pixels is refused, as an item failure, before it is decoded.

    ``datasets`` are plain mappings of ``DatasetSpec`` fields: a config layered over another
    replaces the list whole (a list of dataclasses would be merged item by item, and a dataset
    of photos would inherit ``kind: synthetic`` from the list it replaces).
    """

    def __init__(self, datasets: list[dict], prompt: str = "box", prompt_settings: PromptSettings | None = None,
                 max_images: int | None = None, run_dir: str | None = None, batch_size: int = 1,
                 num_workers: int = 0, max_pixels: int = DEFAULT_MAX_PIXELS):
        super().__init__()
        if not datasets:
            raise ValueError("PaintSegDataModule needs at least one dataset")
        if prompt not in PROMPT_KINDS:
            raise ValueError(f"unknown prompt kind {prompt!r}; expected one of {PROMPT_KINDS}")
        self.specs = [d if isinstance(d, DatasetSpec) else DatasetSpec(**d) for d in datasets]
        names = [check_dataset_name(spec.name) for spec in self.specs]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"dataset names must differ (they name output folders): {repeated} repeated")
        if max_images is not None and max_images < 1:
            raise ValueError(f"max_images must be >= 1, got {max_images}")
        self.prompt, self.prompt_settings = prompt, prompt_settings or PromptSettings()
        self.max_images, self.run_dir, self.max_pixels = max_images, run_dir, check_max_pixels(max_pixels)
        self.batch_size, self.num_workers = batch_size, num_workers

    @property
    def dataset_names(self) -> list[str]:
        return [spec.name for spec in self.specs]

    def prepare_data(self) -> None:
        for spec in self.specs:
            if spec.kind == "synthetic":
                generate_dataset(spec.root, num_images=spec.num_images, seed=spec.seed)

    def dataset(self, spec: DatasetSpec) -> SegmentationFolder | CocoImages:
        run = RunFolder(self.run_dir) if self.run_dir else None
        max_images = min(filter(None, (spec.max_images, self.max_images)), default=None)
        finished = run.finished(spec.name) if run else set()
        if spec.layout == COCO_LAYOUT:
            dataset = CocoImages(spec.root, spec.name, spec.annotations, self.prompt, finished, max_images,
                                 spec.categories, spec.prompts, spec.score_threshold, self.prompt_settings,
                                 spec.coarse_mask_dir, self.max_pixels)
        else:
            dataset = SegmentationFolder(spec.root, spec.name, self.prompt, finished, max_images, spec.layout,
                                         spec.split, self.prompt_settings, spec.coarse_mask_dir, self.max_pixels)
        if run:
            run.write_items(spec.name, dataset.item_names)
        return dataset

    def predict_dataloader(self) -> list[DataLoader]:
        datasets = [self.dataset(spec) for spec in self.specs]
        if self.run_dir and not any(len(dataset) for dataset in datasets):
            rank_zero_info(f"{self.run_dir}: every item is finished already; the results table is written from its records")
        return [DataLoader(dataset, batch_size=self.batch_size, num_workers=self.num_workers,
                           collate_fn=collate_items) for dataset in datasets]
