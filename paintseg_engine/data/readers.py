"""Where each standard benchmark keeps its images and masks, and how its masks encode objects.

A ``Layout`` names the (image folder, mask folder) pairs a dataset may use (the first pair
found wins), how mask values decode into object / ignored pixels, and whether masks hold
instance ids (PASCAL VOC: one item per instance). ``list_samples`` turns a dataset root into
``Sample`` s; a missing root or folder raises FileNotFoundError naming the expected layout.
"""
from __future__ import annotations

import errno
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import ImageLoadError
from ..imageio import load_mask
from ..limits import DEFAULT_MAX_PIXELS

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
MASK_EXTENSIONS = (".png", ".bmp", ".jpg", ".jpeg", ".tif", ".tiff")


@dataclass(frozen=True)
class Layout:
    folders: tuple[tuple[str, str], ...]  # accepted (image folder, mask folder) pairs
    object_above: int = 128  # mask values above this are object (binary masks)
    void_value: int | None = None  # mask value excluded from metrics
    instances: bool = False  # mask values are instance ids: one item per id
    list_file: str | None = None  # image stems listed in this file ({split} filled in)

    def describe(self) -> str:
        pairs = " or ".join(f"<root>/{images}/<stem>.<ext> + <root>/{masks}/<stem>.png" for images, masks in self.folders)
        return pairs + (f", stems listed in <root>/{self.list_file}" if self.list_file else "")


# RITM's conventions: GrabCut/Berkeley masks mark an unlabeled band around the boundary with 128;
# DAVIS / COCO MVal masks are object wherever non-zero; saliency masks are binarized at 128.
LAYOUTS = {
    "folder": Layout((("images", "masks"),), void_value=128),
    "grabcut": Layout((("data_GT", "boundary_GT"), ("images", "masks")), void_value=128),
    "berkeley": Layout((("images", "masks"),), void_value=128),
    "davis": Layout((("img", "gt"), ("images", "masks")), object_above=0),
    "coco_mval": Layout((("img", "gt"), ("images", "masks")), object_above=0),
    "ecssd": Layout((("images", "ground_truth_mask"),), object_above=127),
    "duts_te": Layout((("DUTS-TE-Image", "DUTS-TE-Mask"),), object_above=127),
    "pascal_voc": Layout((("JPEGImages", "SegmentationObject"),), void_value=255, instances=True,
                         list_file="ImageSets/Segmentation/{split}.txt"),
}


@dataclass(frozen=True)
class Sample:
    name: str  # item name: the image stem, or <stem>_<id> for an instance
    image: Path
    mask: Path | None
    instance: int | None = None
    problem: str | None = None  # why this item cannot be used, found while listing


def layout_of(name: str, layout: str) -> Layout:
    if layout not in LAYOUTS:
        raise ValueError(f"dataset {name!r}: unknown layout {layout!r}; expected one of {sorted(LAYOUTS)}")
    return LAYOUTS[layout]


def _folders(root: Path, name: str, layout_name: str, layout: Layout) -> tuple[Path, Path]:
    expected = f"expected the {layout_name!r} layout: {layout.describe()}"
    if not root.is_dir():
        raise FileNotFoundError(f"dataset {name!r}: no folder {root} ({expected})")
    for images, masks in layout.folders:
        if (root / images).is_dir():
            if not (root / masks).is_dir():
                raise FileNotFoundError(f"dataset {name!r}: no mask folder {root / masks} ({expected})")
            return root / images, root / masks
    raise FileNotFoundError(f"dataset {name!r}: no image folder under {root} ({expected})")


def _files(folder: Path, extensions: tuple[str, ...]) -> list[Path]:
    # Hidden files (macOS' ._name.png resource forks, editors' temporaries) are not data. A link
    # whose target is missing or loops is kept, to be reported, not passed over.
    return [p for p in sorted(folder.iterdir())
            if p.suffix.lower() in extensions and not p.name.startswith(".") and (p.is_file() or p.is_symlink())]


def broken_link(path: Path | None) -> str | None:
    """Why ``path``, a symbolic link, leads to no file (dangling, looping), or None."""
    if path is None or not path.is_symlink():
        return None
    try:
        os.stat(path)
    except OSError as error:
        why = "loops" if error.errno == errno.ELOOP else "points to nothing (a git-annex / DVC file not fetched?)"
        return f"{path} is a symbolic link to {os.readlink(path)} that {why}"
    return None


def _by_stem(folder: Path, extensions: tuple[str, ...]) -> tuple[dict[str, Path], dict[str, list[Path]]]:
    """(stem -> file, stem -> files for stems that more than one file shares)."""
    files: dict[str, list[Path]] = {}
    for path in _files(folder, extensions):
        files.setdefault(path.stem, []).append(path)
    return {stem: paths[0] for stem, paths in files.items()}, {s: p for s, p in files.items() if len(p) > 1}


def list_samples(root: str | Path, name: str, layout_name: str = "folder", split: str = "val",
                 max_pixels: int = DEFAULT_MAX_PIXELS) -> list[Sample]:
    """Every item of a dataset, sorted by name. Images without a mask keep ``mask=None``; an item
    that cannot be used (a name two files share, a broken link, an instance mask that cannot be
    read) keeps its ``problem``, to fail when loaded."""
    root = Path(root)
    layout = layout_of(name, layout_name)
    image_dir, mask_dir = _folders(root, name, layout_name, layout)
    images, shared_images = _by_stem(image_dir, IMAGE_EXTENSIONS)
    masks, shared_masks = _by_stem(mask_dir, MASK_EXTENSIONS)

    def problem(stem: str) -> str | None:
        shared = shared_images.get(stem) or shared_masks.get(stem)
        if shared:  # which file is meant is a guess; refuse to guess
            return f"{', '.join(str(p) for p in shared)} share the name {stem!r}: rename all but one"
        return broken_link(images.get(stem)) or broken_link(masks.get(stem))

    if layout.list_file is not None:
        list_path = root / layout.list_file.format(split=split)
        if not list_path.is_file():
            raise FileNotFoundError(f"dataset {name!r}: no list {list_path} (expected the {layout_name!r} layout: "
                                    f"{layout.describe()})")
        listed = list_path.read_text().split()
        missing = [stem for stem in listed if stem not in images]
        if missing:
            raise FileNotFoundError(f"dataset {name!r}: {len(missing)} images listed in {list_path} are not in "
                                    f"{image_dir}, e.g. {missing[0]!r}")
        images = {stem: images[stem] for stem in listed}
    if not images:
        raise FileNotFoundError(f"dataset {name!r}: no images ({', '.join(IMAGE_EXTENSIONS)}) in {image_dir}")
    if not layout.instances:
        return [Sample(stem, path, masks.get(stem), problem=problem(stem)) for stem, path in sorted(images.items())]
    samples = []
    for stem, path in sorted(images.items()):
        if stem not in masks or problem(stem):
            samples.append(Sample(stem, path, masks.get(stem), problem=problem(stem)))  # fails when loaded
            continue
        try:
            ids = np.unique(load_mask(masks[stem], max_pixels).numpy())
        except ImageLoadError as error:
            samples.append(Sample(stem, path, masks[stem], problem=str(error)))
            continue
        samples += [Sample(f"{stem}_{i}", path, masks[stem], int(i)) for i in ids if i != 0 and i != layout.void_value]
    return samples


def decode_mask(raw: torch.Tensor, layout: Layout, instance: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(object, ignored) bool masks from a mask file's uint8 values. A binary mask saved as 0 / 1
    (a common format) reads as 0 / 255."""
    if not layout.instances and raw.max() == 1:
        raw = raw * 255
    ignore = raw == layout.void_value if layout.void_value is not None else torch.zeros_like(raw, dtype=torch.bool)
    gt = raw == instance if layout.instances else (raw > layout.object_above) & ~ignore
    return gt, ignore
