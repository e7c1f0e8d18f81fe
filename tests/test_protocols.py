"""The prompt protocols: prompts made from ground truth, seeded, and one vocabulary of kinds."""

import numpy as np
import pytest
import torch
from PIL import Image

from paintseg_engine.clicks import ClickProtocol
from paintseg_engine.data import PromptSettings, prompt_from_gt
from paintseg_engine.metrics import mask_iou
from paintseg_engine.prompts import BoxPrompt, MaskPrompt, PointsPrompt, ScribblePrompt


def test_tight_box_and_seeded_jitter(disc):
    _, gt = disc
    tight = prompt_from_gt(gt, "box", "a")
    assert isinstance(tight, BoxPrompt) and mask_iou(tight.initial_mask(*gt.shape) & gt, gt) == 1.0
    jittered = [prompt_from_gt(gt, "box", name, PromptSettings(seed=seed, box_jitter=0.2)).box
                for name, seed in (("a", 0), ("a", 0), ("b", 0), ("a", 1))]
    assert jittered[0] == jittered[1] and jittered[0] != jittered[2] and jittered[0] != jittered[3]
    assert jittered[0] != tight.box
    for box in jittered:
        BoxPrompt(box).initial_mask(*gt.shape)  # inside the image, not empty


def test_coarse_mask_from_gt_is_seeded_and_coarse(disc):
    _, gt = disc
    settings = PromptSettings(seed=3, coarse_morph=0.15)
    masks = [prompt_from_gt(gt, "coarse_mask", name, settings) for name in ("a", "a", "b")]
    assert all(isinstance(m, MaskPrompt) for m in masks)
    assert torch.equal(masks[0].mask, masks[1].mask) and not torch.equal(masks[0].mask, masks[2].mask)
    for m in masks:
        assert 0.5 < mask_iou(m.initial_mask(*gt.shape), gt) < 1.0


def test_coarse_mask_from_a_folder(tmp_path, disc):
    _, gt = disc
    coarse = np.zeros(gt.shape, np.uint8)
    coarse[20:60, 20:80] = 255
    Image.fromarray(coarse).save(tmp_path / "img1.png")
    prompt = prompt_from_gt(gt, "coarse_mask", "img1", coarse_mask_dir=tmp_path)
    assert prompt.initial_mask(*gt.shape).sum() == 40 * 60
    with pytest.raises(FileNotFoundError, match="img2.png"):
        prompt_from_gt(gt, "coarse_mask", "img2", coarse_mask_dir=tmp_path)


def test_points_scribble_and_clicks(disc):
    _, gt = disc
    points = prompt_from_gt(gt, "points", "a")
    (x, y), = points.positive
    assert isinstance(points, PointsPrompt) and gt[int(y), int(x)]
    scribble = prompt_from_gt(gt, "scribble", "a")
    assert isinstance(scribble, ScribblePrompt) and scribble.scribble.any() and not (scribble.scribble & ~gt).any()
    clicks = prompt_from_gt(gt, "clicks", "a", PromptSettings(max_clicks=7, stop_early=False))
    assert clicks == ClickProtocol(max_clicks=7, stop_iou=None) and clicks.kind == "clicks"
    with pytest.raises(ValueError, match="unknown prompt kind 'lasso'"):
        prompt_from_gt(gt, "lasso", "a")


@pytest.mark.parametrize("kind", ["box", "points", "scribble", "coarse_mask", "clicks"])
def test_one_prompt_vocabulary_from_data_to_records(disc, kind):
    _, gt = disc
    assert prompt_from_gt(gt, kind, "disc").kind == kind  # records and resume compare these names
