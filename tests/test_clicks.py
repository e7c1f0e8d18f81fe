"""The click simulator and NoC, with stand-in predictors (no painting)."""
import numpy as np
import pytest
import torch

from paintseg_engine.clicks import (Click, depth_map, interior_point, iou_at, mean_iou_at, next_click,
                                    number_of_clicks, simulate_clicks)


def rect(h=40, w=50, y0=10, y1=30, x0=10, x1=40):
    mask = torch.zeros(h, w, dtype=torch.bool)
    mask[y0:y1, x0:x1] = True
    return mask


def test_perfect_predictor_needs_one_click():
    gt = rect()
    run = simulate_clicks(lambda pos, neg, previous: gt.clone(), gt)
    assert len(run.clicks) == 1 and run.ious == [1.0] and run.clicks[0].positive
    assert number_of_clicks(run.ious, 0.85) == 1 and number_of_clicks(run.ious, 0.90) == 1


def test_predictor_that_never_changes_never_reaches_85():
    gt = rect()
    calls = []
    run = simulate_clicks(lambda pos, neg, previous: calls.append(len(pos) + len(neg)) or torch.zeros_like(gt), gt)
    assert calls == list(range(1, 21)) and run.ious == [0.0] * 20
    assert number_of_clicks(run.ious, 0.85, max_clicks=20) == 20


def test_first_click_is_the_interior_most_object_point():
    gt = rect()
    click = next_click(torch.zeros_like(gt), gt)
    assert click.positive and gt[int(click.y), int(click.x)]
    # on the ridge of the 20 x 30 rectangle: at least 9 pixels from each of its sides
    assert min(click.y - 10, 29 - click.y, click.x - 10, 39 - click.x) >= 9


def test_clicks_land_in_the_larger_error_region_with_the_right_sign():
    gt = rect()
    spill = gt | rect(y0=0, y1=40, x0=40, x1=50)  # 10-pixel-wide false-positive strip on the right
    click = next_click(spill, gt)
    assert not click.positive and click.x >= 40 and not gt[int(click.y), int(click.x)]
    shrunk = rect(y0=10, y1=30, x0=10, x1=20)  # misses a 20 x 20 block: the larger error
    click = next_click(shrunk | rect(y0=0, y1=3, x0=0, x1=50), gt)
    assert click.positive and gt[int(click.y), int(click.x)] and not shrunk[int(click.y), int(click.x)]
    assert next_click(gt, gt) is None


def test_image_border_counts_as_boundary():
    gt = rect(y0=0, y1=20, x0=0, x1=20)  # a square in the top-left corner
    x, y = interior_point(gt.numpy())
    assert 9 <= x <= 10 and 9 <= y <= 10  # its centre, not pushed against the border


def test_ignored_pixels_draw_no_click():
    gt = rect()
    ignore = rect(y0=0, y1=40, x0=40, x1=50)
    spill = gt | ignore  # every wrong pixel is ignored: nothing to correct
    assert next_click(spill, gt, ignore) is None


def test_simulation_is_deterministic_and_stops_at_the_target():
    gt = rect()

    def grows(pos, neg, previous):  # each click reveals more of the object
        return rect(y0=10, y1=30, x0=10, x1=min(40, 10 + 8 * len(pos)))

    first, second = simulate_clicks(grows, gt), simulate_clicks(grows, gt)
    assert [(c.x, c.y, c.positive) for c in first.clicks] == [(c.x, c.y, c.positive) for c in second.clicks]
    assert all(c.positive for c in first.clicks) and first.ious[-1] == 1.0 and len(first.ious) == 4
    stopped = simulate_clicks(grows, gt, stop_iou=0.5)
    assert len(stopped.ious) == 2 and stopped.ious[-1] >= 0.5


def test_noc_and_miou_at_k():
    ious = [0.5, 0.86, 0.95]
    assert number_of_clicks(ious, 0.85) == 2 and number_of_clicks(ious, 0.9) == 3
    assert number_of_clicks([0.5, 0.99], 0.85, max_clicks=1) == 1  # a click past the cap does not count
    assert number_of_clicks([0.5], 0.85, max_clicks=1) == 1 and number_of_clicks([], 0.85, max_clicks=5) == 5
    assert iou_at(ious, 1) == 0.5 and iou_at(ious, 5) == 0.95  # a stopped run keeps its last IoU
    assert mean_iou_at([[0.2, 0.4], [0.6]], 2) == pytest.approx(0.5)


def test_click_is_a_plain_value():
    assert Click(1.0, 2.0, True) == Click(1.0, 2.0, True)


# --- RITM's rules (isegm/inference/clicker.py), pinned on generated masks -----------------------


def blob(seed=0, h=64, w=80):
    """A random smooth blob with diagonal and curved edges (where chamfer distances err)."""
    noise = torch.randn(1, 1, h // 8, w // 8, generator=torch.Generator().manual_seed(seed))
    smooth = torch.nn.functional.interpolate(noise, (h, w), mode="bicubic", align_corners=False)[0, 0]
    return smooth > 0.3


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_depth_is_the_exact_euclidean_distance_with_the_border_as_boundary(seed):
    ndimage = pytest.importorskip("scipy.ndimage")
    region = blob(seed).numpy()
    exact = ndimage.distance_transform_edt(np.pad(region, 1))[1:-1, 1:-1]
    np.testing.assert_allclose(depth_map(region), exact, atol=1e-3)


def test_among_equally_deep_pixels_the_first_in_row_major_order_is_clicked():
    gt = rect(h=40, w=50, y0=10, y1=30, x0=10, x1=40)  # depth 10 on rows 19-20, columns 19-30
    click = next_click(torch.zeros_like(gt), gt)
    assert (click.x, click.y, click.positive) == (19.0, 19.0, True)


def test_equal_depths_give_a_negative_click():
    gt = rect(h=40, w=60, y0=10, y1=30, x0=5, x1=25)
    spill = rect(h=40, w=60, y0=10, y1=30, x0=35, x1=55)  # same 20 x 20 square, off the object
    click = next_click(spill, gt)
    assert not click.positive and spill[int(click.y), int(click.x)]


def test_a_clicked_pixel_is_never_clicked_again():
    gt = rect()
    run = simulate_clicks(lambda pos, neg, previous: torch.zeros_like(gt), gt, max_clicks=6)
    places = [(c.x, c.y) for c in run.clicks]
    assert len(set(places)) == 6 and all(c.positive for c in run.clicks)
    # each click is the deepest missed pixel not clicked yet: depth 10 ties, row-major order
    assert places[:3] == [(19.0, 19.0), (20.0, 19.0), (21.0, 19.0)]


def test_no_click_when_every_error_pixel_was_clicked():
    gt = rect()
    pred = gt.clone()
    pred[20, 20] = False  # a one-pixel miss
    first = next_click(pred, gt)
    assert (first.x, first.y, first.positive) == (20.0, 20.0, True)
    assert next_click(pred, gt, clicked=[first]) is None


def test_each_click_is_given_the_prediction_before_it():
    gt = rect()
    answers, given = [rect(x1=20), rect(x1=30), rect(x1=35)], []

    def predict(pos, neg, previous):
        given.append(previous)
        return answers[len(given) - 1]

    simulate_clicks(predict, gt, max_clicks=3)
    assert given[0] is None  # a first click has nothing to correct
    assert all(torch.equal(seen, answer) for seen, answer in zip(given[1:], answers))
