"""The GrabCut baseline is reproducible: seeded per item, whatever ran before it."""
import zlib

import cv2
import numpy as np
import pytest
import torch

from paintseg_engine.baselines import GrabCutSegmenter, click_grabcut_mask, grabcut_mask, grabcut_seed
from paintseg_engine.errors import PromptError, SettingsError
from paintseg_engine.metrics import mask_iou
from paintseg_engine.prompts import BoxPrompt, PointsPrompt

from .scenes import disc_scene, twin_discs_scene


def test_same_seed_same_mask_whatever_used_opencvs_generator_before():
    image, gt = disc_scene(seed=3)
    image = (image + 0.15 * torch.randn(image.shape, generator=torch.Generator().manual_seed(1))).clamp(0, 1)
    box = (10, 8, 110, 88)
    by_seed = [grabcut_mask(image, box, seed=s) for s in range(3)]
    assert not all(torch.equal(m, by_seed[0]) for m in by_seed)  # the seed matters on this noisy scene
    cv2.randu(np.zeros((64, 64), np.float32), 0, 1)  # advance OpenCV's global generator
    assert torch.equal(grabcut_mask(image, box, seed=1), by_seed[1])


def test_item_seed_is_stable_across_processes_and_differs_between_items():
    assert grabcut_seed(0, "cat01") == zlib.crc32(b"0/cat01") & 0x7FFFFFFF  # no per-process hash()
    assert grabcut_seed(0, "cat01") != grabcut_seed(0, "cat02") != grabcut_seed(1, "cat02")


def test_grabcut_baseline_beats_the_box(disc, box_around):
    image, gt = disc
    box = box_around(gt, 6)
    mask = grabcut_mask(image, box)
    assert mask_iou(mask, gt) > mask_iou(BoxPrompt(box).initial_mask(*gt.shape), gt) + 0.15
    assert mask_iou(mask, gt) > 0.9


def test_grabcut_segmenter_is_the_seeded_cut_of_the_items_name():
    image, gt = disc_scene(seed=3)
    segmenter = GrabCutSegmenter(iterations=3, seed=7)
    segmenter.set_image(image, "scene_003")
    result = segmenter.predict(BoxPrompt((10, 8, 110, 88)))
    assert torch.equal(result.mask, grabcut_mask(image, (10, 8, 110, 88), 3, grabcut_seed(7, "scene_003")))
    assert result.steps == [] and segmenter.method == "grabcut"
    clicks = PointsPrompt([(57.0, 48.0)])
    assert torch.equal(segmenter.predict(clicks).mask, click_grabcut_mask(image, clicks, 0.02, 0.1, 3,
                                                                           grabcut_seed(7, "scene_003"), 0.4))
    segmenter.reset_image()
    with pytest.raises(RuntimeError, match="set_image"):
        segmenter.predict(BoxPrompt((10, 8, 110, 88)))
    with pytest.raises(SettingsError, match="iterations=0"):
        GrabCutSegmenter(iterations=0)


def test_click_seeded_cut_finds_the_object_and_keeps_every_click():
    from .scenes import iou

    image, gt = disc_scene()
    mask = click_grabcut_mask(image, PointsPrompt([(57.0, 48.0)]), radius=0.02, reach=0.1)
    assert iou(mask, gt) > 0.9  # grown from a disc of radius 2.56 px to the whole disc
    # A negative click on the object carves its disc out; the positive disc stays object.
    carved = click_grabcut_mask(image, PointsPrompt([(57.0, 48.0)], [(70.0, 48.0)]), radius=0.05, reach=0.1)
    assert carved[48, 57] and not carved[48, 70] and mask[48, 70]


def test_click_seeded_cut_in_its_window_leaves_a_distant_object_of_the_same_colour():
    image, clicked, other = twin_discs_scene()
    clicks = PointsPrompt([(30.0, 48.0)])
    whole = click_grabcut_mask(image, clicks, 0.02, 0.1, window=None)
    windowed = click_grabcut_mask(image, clicks, 0.02, 0.1, window=0.25)  # 40 px beyond the click
    assert whole[other].all()  # the whole image's cut takes every pixel of the object's colour
    assert windowed[clicked].all() and not windowed[other].any()
    with pytest.raises(SettingsError, match="start_window=0"):
        GrabCutSegmenter(start_window=0)


def test_click_seeded_cut_refuses_clicks_outside_the_image_or_none_positive():
    image, _ = disc_scene()
    with pytest.raises(PromptError, match=r"outside the 128x96"):
        click_grabcut_mask(image, PointsPrompt([(200.0, 10.0)]), radius=0.02, reach=0.1)
    with pytest.raises(PromptError, match="at least one positive"):
        click_grabcut_mask(image, PointsPrompt([], [(10.0, 10.0)]), radius=0.02, reach=0.1)
