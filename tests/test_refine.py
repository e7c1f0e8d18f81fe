"""The refinement (refine.py): a graph cut that moves a mask's outline onto the image's edges."""
import pytest
import torch

from paintseg_engine.amcp import AMCPConfig, Segmenter
from paintseg_engine.amcp.refine import refine_mask
from paintseg_engine.features import ColorTextureFeatures
from paintseg_engine.painters import OpenCVPainter
from paintseg_engine.prompts import BoxPrompt

from tests.scenes import disc_scene, iou


def box_mask(shape, y0, x0, y1, x1):
    mask = torch.zeros(shape, dtype=torch.bool)
    mask[y0:y1, x0:x1] = True
    return mask


@pytest.mark.parametrize("dy, dx", [(4, 0), (0, -5), (3, 3)])
def test_a_mask_offset_by_a_few_pixels_snaps_back_to_the_edge(dy, dx):
    image, gt = disc_scene()
    offset = torch.roll(gt, (dy, dx), (0, 1))
    valid = box_mask(gt.shape, 10, 10, 86, 110)
    refined = refine_mask(image, offset, valid)
    assert iou(offset, gt) < 0.9
    assert iou(refined, gt) > 0.97


def test_the_cut_stays_in_valid_and_keeps_sure_pixels():
    image, gt = disc_scene()
    valid = box_mask(gt.shape, 10, 10, 86, 110)
    sure = box_mask(gt.shape, 46, 88, 50, 92)  # background colour right of the disc, declared object
    refined = refine_mask(image, torch.roll(gt, (3, 3), (0, 1)), valid, sure)
    assert not (refined & ~valid).any()
    assert refined[sure].all()
    assert iou(refined, gt | sure) > 0.97


def test_a_collapsed_cut_is_not_taken():
    image, gt = disc_scene()
    valid = box_mask(gt.shape, 10, 10, 86, 70)  # cuts the disc: its colour also models background
    sure = box_mask(gt.shape, 46, 74, 50, 78)  # a patch of the disc outside valid
    mask = torch.roll(gt, (3, 3), (0, 1)) & valid
    collapsed = refine_mask(image, mask, valid, sure, min_kept=0.0)
    assert collapsed.sum() < 0.25 * mask.sum()
    assert torch.equal(refine_mask(image, mask, valid, sure, min_kept=0.25), mask)


def test_nothing_to_cut_returns_the_mask_and_equal_inputs_give_equal_masks():
    image, gt = disc_scene()
    everything = torch.ones_like(gt)
    assert torch.equal(refine_mask(image, everything, everything), everything)  # no background to model
    empty = torch.zeros_like(gt)
    assert torch.equal(refine_mask(image, empty, everything), empty)
    assert torch.equal(refine_mask(image, gt, everything, iterations=0), gt)
    noisy = (image + 0.2 * torch.randn(image.shape, generator=torch.Generator().manual_seed(0))).clamp(0, 1)
    offset = torch.roll(gt, (4, 4), (0, 1))
    assert torch.equal(refine_mask(noisy, offset, everything, seed=3), refine_mask(noisy, offset, everything, seed=3))


def test_a_window_above_the_work_size_is_cut_smaller_and_brought_back():
    image, gt = disc_scene()
    valid = box_mask(gt.shape, 10, 10, 86, 110)
    sure = box_mask(gt.shape, 46, 88, 50, 92)  # background colour, declared object
    offset = torch.roll(gt, (3, 3), (0, 1))
    full = refine_mask(image, offset, valid, sure)
    small = refine_mask(image, offset, valid, sure, work_size=48)  # the window is the whole 96 x 128 image
    assert small.shape == gt.shape
    assert not (small & ~valid).any() and small[sure].all()  # the constraints hold at the image's size
    assert iou(small, full) > 0.93 and iou(small, gt | sure) > 0.93
    # A window already within the work size is cut at the image's size: the same cut.
    assert torch.equal(refine_mask(image, offset, valid, sure, work_size=128), full)


def test_a_lost_object_is_found_again_by_the_cut_from_the_box():
    """AMCP's mask holds the box's corners and none of the disc: its own cut keeps background; the
    cut from the box (``rival``) ends at a lower energy and is kept."""
    image, gt = disc_scene()
    box, valid = box_mask(gt.shape, 22, 31, 75, 85), box_mask(gt.shape, 17, 26, 80, 90)
    corners = box & ~gt
    assert iou(refine_mask(image, corners, valid), gt) < 0.1
    assert iou(refine_mask(image, corners, valid, rival=box), gt) > 0.97
    # A good mask stays good whatever the second start.
    offset = torch.roll(gt, (3, 3), (0, 1))
    for rival in (box, corners):
        assert iou(refine_mask(image, offset, valid, rival=rival), gt) > 0.97


def test_shapes_must_agree():
    image, gt = disc_scene()
    with pytest.raises(ValueError, match="height and width"):
        refine_mask(image, gt[:-1], gt[:-1])


def test_segmenter_refines_the_last_update_only_when_asked():
    image, gt = disc_scene(height=72, width=96)
    runs = {}
    for refine_iterations in (0, 3):
        config = AMCPConfig(frame_size=64, iterations=3, num_samples=2, refine_iterations=refine_iterations)
        segmenter = Segmenter(OpenCVPainter(), ColorTextureFeatures(), config)
        segmenter.set_image(image)
        runs[refine_iterations] = segmenter.predict(BoxPrompt((15, 8, 80, 66)))
    plain, refined = runs[0], runs[3]
    for a, b in zip(plain.steps[:-1], refined.steps[:-1]):
        assert torch.equal(a.mask, b.mask)  # the earlier updates are untouched
    assert torch.equal(refined.mask, refined.steps[-1].mask)
    assert iou(refined.mask, gt) > max(0.95, iou(plain.mask, gt))


def test_box_prompts_cut_from_their_box_too_with_their_own_iterations(monkeypatch):
    """``refine_from_box`` gives a box prompt's refinement its box as the second start; a box runs
    ``iterations_box`` AMCP and ``refine_iterations_box`` GrabCut iterations, other prompts not."""
    from paintseg_engine.amcp import segmenter as segmenter_module
    from paintseg_engine.prompts import PointsPrompt

    calls = []
    def spy(image, mask, valid, sure, iterations, *rest):
        calls.append((iterations, rest[-1]))
        return refine_mask(image, mask, valid, sure, iterations, *rest)

    monkeypatch.setattr(segmenter_module, "refine_mask", spy)
    image, gt = disc_scene(height=72, width=96)
    box = BoxPrompt((15, 8, 80, 66))
    steps = {}
    for refine_from_box in (False, True):
        box_settings = {"iterations_box": 1, "refine_iterations_box": 2} if refine_from_box else {}
        config = AMCPConfig(frame_size=64, iterations=3, num_samples=2, refine_iterations=4,
                            refine_from_box=refine_from_box, **box_settings)
        segmenter = Segmenter(OpenCVPainter(), ColorTextureFeatures(), config)
        segmenter.set_image(image)
        steps[refine_from_box] = [len(segmenter.predict(p).steps) for p in (box, PointsPrompt([(43, 36)]))]
    (plain, none), (clicks, no_rival), (from_box, rival), (clicks_again, none_again) = calls
    assert steps == {False: [3, 3], True: [1, 3]}
    assert (plain, clicks, from_box, clicks_again) == (4, 4, 2, 4)
    assert none is None and no_rival is None and none_again is None
    assert torch.equal(rival, box.initial_mask(72, 96))


def test_refinement_settings_are_validated():
    with pytest.raises(ValueError, match=r"refine_iterations=-1 \(allowed: >= 0\)"):
        AMCPConfig(refine_iterations=-1)
    with pytest.raises(ValueError, match="refine_context"):
        AMCPConfig(refine_context=-0.5)
    with pytest.raises(ValueError, match="refine_work_size=8"):
        AMCPConfig(refine_work_size=8)
    with pytest.raises(ValueError, match=r"iterations_box=-1 \(allowed: >= 0, or None"):
        AMCPConfig(iterations_box=-1)
    with pytest.raises(ValueError, match=r"refine_iterations_box=-2 \(allowed: >= 0, or None"):
        AMCPConfig(refine_iterations_box=-2)
