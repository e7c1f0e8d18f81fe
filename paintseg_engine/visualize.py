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
    """The image with the mask tinted and outlined, and the prompt drawn on top."""
    rgb = (image.permute(1, 2, 0).numpy() * 255).astype(np.float32)
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
