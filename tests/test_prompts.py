import pytest
import torch

from paintseg_engine.prompts import BoxPrompt, MaskPrompt, PointsPrompt, PromptError, ScribblePrompt, box_of


def test_box_prompt_fills_its_box():
    mask = BoxPrompt((2, 3, 6, 8)).initial_mask(10, 12)
    assert mask.shape == (10, 12)
    assert mask.sum() == 4 * 5
    assert box_of(mask) == (2, 3, 6, 8)


@pytest.mark.parametrize("box, message", [
    ((0, 0, 13, 5), "outside"),
    ((-1, 0, 5, 5), "outside"),
    ((4, 4, 4, 8), "empty"),
    ((1, 2, 3), "x0, y0, x1, y1"),
])
def test_bad_boxes_are_refused_with_a_clear_message(box, message):
    with pytest.raises(PromptError, match=message):
        BoxPrompt(box).initial_mask(10, 12)


def test_coarse_mask_is_binarized_and_accepts_0_255():
    coarse = torch.zeros(10, 12)
    coarse[2:5, 3:9] = 200
    mask = MaskPrompt(coarse).initial_mask(10, 12)
    assert mask.sum() == 18 and mask.dtype == torch.bool


def test_empty_or_misshaped_masks_are_refused():
    with pytest.raises(PromptError, match="empty"):
        MaskPrompt(torch.zeros(10, 12)).initial_mask(10, 12)
    with pytest.raises(PromptError, match="shape"):
        MaskPrompt(torch.ones(9, 12)).initial_mask(10, 12)
    with pytest.raises(PromptError, match="empty"):
        ScribblePrompt(torch.zeros(10, 12, dtype=torch.bool)).initial_mask(10, 12)


def test_scribble_is_dilated_once():
    stroke = torch.zeros(10, 12, dtype=torch.bool)
    stroke[5, 6] = True
    mask = ScribblePrompt(stroke).initial_mask(10, 12)
    assert mask.sum() == 9  # a 5x5 cross
    assert mask[5, 4] and mask[3, 6] and not mask[4, 5]


def test_points_start_from_the_whole_image_and_are_checked():
    prompt = PointsPrompt(positive=[(3, 4)], negative=[(10, 1)])
    assert prompt.initial_mask(10, 12).all()
    assert prompt.points() == ([(3.0, 4.0)], [(10.0, 1.0)])
    with pytest.raises(PromptError, match="outside"):
        PointsPrompt(positive=[(12, 4)]).initial_mask(10, 12)
    with pytest.raises(PromptError, match="at least one positive"):
        PointsPrompt(negative=[(1, 1)]).initial_mask(10, 12)
    # The previous answer the clicks correct is checked with them, whatever the config does with it.
    with pytest.raises(PromptError, match=r"previous mask has shape \(9, 12\), but the image is 10x12"):
        PointsPrompt(positive=[(3, 4)], previous=torch.ones(9, 12, dtype=torch.bool)).region_box(10, 12)
    assert PointsPrompt(positive=[(3, 4)], previous=torch.ones(10, 12, dtype=torch.bool)).initial_mask(10, 12).all()
