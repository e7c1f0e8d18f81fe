"""Small synthetic scenes with exact ground truth, and image files that are not what they claim, shared by tests."""
import struct
import zlib
from pathlib import Path

import torch


def disc_scene(height: int = 96, width: int = 128, seed: int = 0):
    """A red disc on a mottled green background: (image [3,H,W] in [0,1], gt bool [H,W])."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    cy, cx, r = height * 0.5, width * 0.45, min(height, width) * 0.28
    gt = (yy - cy) ** 2 + (xx - cx) ** 2 <= r**2
    background = torch.tensor([0.25, 0.55, 0.3])[:, None, None] + 0.04 * torch.randn(3, height, width, generator=g)
    background = background + 0.05 * torch.sin(xx / 9.0 + yy / 13.0)[None]
    obj = torch.tensor([0.8, 0.2, 0.2])[:, None, None] + 0.03 * torch.randn(3, height, width, generator=g)
    image = torch.where(gt[None], obj, background).clamp(0, 1)
    return image, gt


def iou(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a & b).sum() / (a | b).sum()).item()


def png_header(path: Path, width: int, height: int) -> Path:
    """A PNG that declares ``width`` x ``height`` pixels in a few dozen bytes (the header of a
    decompression bomb): only a reader that decodes before checking the size pays for it."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) +
                     chunk(b"IEND", b""))
    return path


def coco_scenes(root, num_images: int = 2, objects: int = 4, height: int = 96, width: int = 128):
    """Generated multi-object scenes as a COCO dataset under ``root``, plus a crowd annotation on the
    first image and a detector's results file: every object's tight box with a score, and one low
    score detection. Returns (annotations path, detections path, the annotations as a dict)."""
    import json

    import numpy as np

    from paintseg_engine.data.coco import annotation_of
    from paintseg_engine.data.synthetic import generate_coco_dataset

    annotations = generate_coco_dataset(root, num_images, objects, height, width)
    data = json.loads(annotations.read_text())
    crowd = np.zeros((height, width), np.uint8)
    crowd[:4, :8] = 1  # a corner strip that no object touches
    data["annotations"].append({**annotation_of(crowd, 1000, 1, 1), "iscrowd": 1})
    annotations.write_text(json.dumps(data))
    detections = [{"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"],
                   "score": round(0.9 - 0.01 * i, 2)} for i, a in enumerate(data["annotations"]) if not a["iscrowd"]]
    detections.append({"image_id": 1, "category_id": 1, "bbox": [0, 0, 20, 20], "score": 0.05})
    (root / "detections.json").write_text(json.dumps(detections))
    return annotations, root / "detections.json", data


def twin_discs_scene():
    """(image [3, 96, 160], clicked, other): two discs of one colour, 100 px apart, on grey noise;
    a click on the first should not take the second."""
    generator = torch.Generator().manual_seed(0)
    yy, xx = torch.meshgrid(torch.arange(96), torch.arange(160), indexing="ij")
    image = 0.5 + 0.05 * torch.randn(3, 96, 160, generator=generator)
    clicked, other = ((xx - cx) ** 2 + (yy - 48) ** 2 <= 14**2 for cx in (30, 130))
    image[:, clicked | other] = torch.tensor([0.85, 0.2, 0.2])[:, None]
    return image.clamp(0, 1), clicked, other
