"""Pictures people would rather look at than read: the mask over the image, with the prompt drawn on."""
from __future__ import annotations

import cv2
import numpy as np
import torch

from .prompts import BoxPrompt, PointsPrompt

MASK_TINT = np.array([255, 64, 32], np.float32)  # RGB
TINT_ALPHA = 0.45
PROMPT_COLOUR = (255, 255, 0)
NEGATIVE_COLOUR = (0, 160, 255)


def overlay(image: torch.Tensor, mask: torch.Tensor, prompt) -> np.ndarray:
    """The image (any float dtype: a -true precision casts the batch's) with the mask tinted and
    outlined, and the prompt drawn on top."""
    rgb = (image.permute(1, 2, 0).float().numpy() * 255).astype(np.float32)
    m = mask.numpy()
    rgb[m] = (1 - TINT_ALPHA) * rgb[m] + TINT_ALPHA * MASK_TINT
    out = np.ascontiguousarray(rgb.round().astype(np.uint8))
    contours, _ = cv2.findContours(m.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    cv2.drawContours(out, contours, -1, tuple(int(c) for c in MASK_TINT), 1)
    if isinstance(prompt, BoxPrompt):
        x0, y0, x1, y1 = (int(v) for v in prompt.box)
        cv2.rectangle(out, (x0, y0), (x1 - 1, y1 - 1), PROMPT_COLOUR, 1)
    if isinstance(prompt, PointsPrompt):
        for points, colour in ((prompt.positive, PROMPT_COLOUR), (prompt.negative, NEGATIVE_COLOUR)):
            for x, y in points:
                cv2.circle(out, (int(x), int(y)), 4, colour, -1)
    return out


STRIP_TILE_HEIGHT = 160  # px: each picture of the strip is scaled to this height
STRIP_GAP = 4  # px between pictures
LABEL_HEIGHT = 18  # px: the caption band above each picture
LABEL_SCALE = 0.45  # cv2 Hershey font scale of the captions
LABEL_COLOUR = (255, 255, 255)
STRIP_BACKGROUND = (32, 32, 32)
STEP_NAMES = {"inpaint": "I-step", "outpaint": "O-step"}


def _captioned(picture: np.ndarray, caption: str) -> np.ndarray:
    height, width = picture.shape[:2]
    tile_width = max(1, round(width * STRIP_TILE_HEIGHT / height))
    tile = np.full((LABEL_HEIGHT + STRIP_TILE_HEIGHT, tile_width, 3), STRIP_BACKGROUND, np.uint8)
    tile[LABEL_HEIGHT:] = cv2.resize(picture, (tile_width, STRIP_TILE_HEIGHT), interpolation=cv2.INTER_AREA)
    cv2.putText(tile, caption, (3, LABEL_HEIGHT - 5), cv2.FONT_HERSHEY_SIMPLEX, LABEL_SCALE, LABEL_COLOUR, 1,
                cv2.LINE_AA)
    return tile


def step_strip(image: torch.Tensor, result, prompt) -> np.ndarray:
    """How the mask moves through AMCP: the prompt's starting mask, then the mask after each
    I-step and O-step (a ``Segmentation``'s ``steps``), side by side with captions; uint8 RGB."""
    pictures = [("prompt", result.prompt_mask)]
    pictures += [(f"{step.iteration + 1} {STEP_NAMES[step.kind]}", step.mask) for step in result.steps]
    tiles = [_captioned(overlay(image, mask.cpu(), prompt), caption) for caption, mask in pictures]
    gap = np.full((tiles[0].shape[0], STRIP_GAP, 3), STRIP_BACKGROUND, np.uint8)
    return np.concatenate([part for tile in tiles for part in (tile, gap)][:-1], axis=1)
