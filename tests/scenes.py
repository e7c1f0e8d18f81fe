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
