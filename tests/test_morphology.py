"""morphology.py: OpenCV's dilation on the CPU and max-pooling elsewhere give the same masks."""
import pytest
import torch

from paintseg_engine.morphology import closing, dilate, erode, opening, pooled_dilation


def random_masks(shape, seed=0):
    """Sparse seeds and solid blocks, some touching the border, so that both the growth and the
    frame's edge are exercised."""
    generator = torch.Generator().manual_seed(seed)
    masks = torch.rand(shape, generator=generator) > 0.97
    masks[..., :6, :9] = True
    masks[..., -4:, 20:30] = True
    return masks


@pytest.mark.parametrize("size", [3, 5, 15])
@pytest.mark.parametrize("steps", [1, 4])
def test_opencv_and_pooling_agree(size, steps):
    masks = random_masks((2, 3, 40, 56))
    expected = pooled_dilation(masks, size, steps)
    assert expected.sum() > masks.sum()  # it grew
    assert torch.equal(dilate(masks, size, steps), expected)
    assert torch.equal(erode(masks, size, steps), ~pooled_dilation(~masks, size, steps))


def test_the_cross_grows_along_rows_and_columns_only():
    mask = torch.zeros(11, 11, dtype=torch.bool)
    mask[5, 5] = True
    grown = dilate(mask, 3, 2)
    assert grown[5, 3:8].all() and grown[3:8, 5].all()
    assert grown[4, 4] and not grown[3, 3]  # two steps of a 3x3 cross: a diamond of radius 2
    assert grown.sum() == 13


def test_opening_removes_specks_and_closing_fills_holes():
    mask = torch.zeros(30, 30, dtype=torch.bool)
    mask[5:25, 5:25] = True
    mask[15, 15] = False  # a hole
    mask[1, 1] = True  # a speck
    assert not opening(mask, 5)[1, 1]
    assert closing(mask, 5)[15, 15]


def test_an_even_cross_is_refused():
    with pytest.raises(ValueError, match="positive odd"):
        dilate(torch.zeros(4, 4, dtype=torch.bool), 4)
