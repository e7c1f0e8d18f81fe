"""Any folder dataset the engine reads, as a COCO instances dict, so it can be scored as COCO
(``paintseg to_coco``, commands/to_coco.py, writes it to a file).

One image entry per image (``file_name`` relative to ``root``, so the COCO dataset's root is the
folder's), one annotation per object (RLE), one category (``--category``). COCO has no per-pixel
"ignore": a layout's void pixels (GrabCut's unlabeled band) are written as background. Items that
cannot be read (no mask, two files of one name) are left out and counted on stderr; an image
whose mask holds no object keeps its image entry, with no annotation.
"""
from __future__ import annotations

from pathlib import Path

from ..imageio import ImageLoadError, load_mask
from .coco import annotation_of
from .readers import decode_mask, layout_of, list_samples

CATEGORY_ID = 1


def folder_to_coco(root: str | Path, layout: str = "folder", split: str = "val", category: str = "object"
                   ) -> tuple[dict, list[str]]:
    """(the COCO instances dict, one line per item left out and why)."""
    root = Path(root)
    images: dict[Path, dict] = {}
    annotations, left_out = [], []
    for sample in list_samples(root, root.name, layout, split):
        if sample.problem or sample.mask is None:
            left_out.append(f"{sample.image}: {sample.problem or 'no mask'}")
            continue
        try:
            object_mask, _ = decode_mask(load_mask(sample.mask), layout_of(root.name, layout), sample.instance)
        except (ImageLoadError, OSError) as err:
            left_out.append(f"{sample.mask}: {err}")
            continue
        height, width = object_mask.shape
        image = images.setdefault(sample.image, {"id": len(images) + 1, "file_name": str(sample.image.relative_to(root)),
                                                 "height": height, "width": width})
        if object_mask.any():
            annotations.append(annotation_of(object_mask, len(annotations) + 1, image["id"], CATEGORY_ID))
    data = {"images": list(images.values()), "annotations": annotations,
            "categories": [{"id": CATEGORY_ID, "name": category}]}
    return data, left_out
