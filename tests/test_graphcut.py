"""graphcut.py: GrabCut on the engine's max-flow gives OpenCV's masks (cv2.grabCut is the oracle)."""
import cv2
import numpy as np
import pytest

from paintseg_engine.amcp.graphcut import grabcut, grabcut_starts, neighbour_links, quadratic_features, start_model


def textured_scene(seed: int = 0, height: int = 90, width: int = 120) -> np.ndarray:
    """uint8 [h, w, 3]: a noisy two-colour background and a noisy blob of mixed colours, so that
    every colour model has several components and the cut has real edges to follow."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:height, :width]
    image = np.where((xx < width // 2)[..., None], [60, 120, 40], [150, 140, 90]).astype(np.float64)
    blob = ((yy - 45) / 28) ** 2 + ((xx - 62) / 35) ** 2 < 1
    image[blob] = np.where((yy[blob] % 12 < 6)[:, None], [200, 60, 50], [230, 200, 70])
    image += rng.normal(0, 18, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)


def opencv_cut(image, labels, iterations, seed):
    cv2.setRNGSeed(seed)
    cv2.grabCut(image, labels, None, np.zeros((1, 65)), np.zeros((1, 65)), iterations, cv2.GC_INIT_WITH_MASK)
    return (labels == cv2.GC_FGD) | (labels == cv2.GC_PR_FGD)


def starts(height=90, width=120):
    """A box start (as the baseline's rect) and a refinement-like start: probable object and
    background inside a sure-background border, a sure-object disc, a sure-background notch."""
    box = np.full((height, width), cv2.GC_BGD, np.uint8)
    box[12:80, 20:105] = cv2.GC_PR_FGD
    refine = np.full((height, width), cv2.GC_BGD, np.uint8)
    refine[8:84, 10:112] = cv2.GC_PR_BGD
    refine[25:70, 35:95] = cv2.GC_PR_FGD
    refine[42:48, 58:66] = cv2.GC_FGD
    refine[8:30, 10:25] = cv2.GC_BGD
    return {"box": box, "refine": refine}


@pytest.mark.parametrize("start", ["box", "refine"])
@pytest.mark.parametrize("iterations", [1, 5])
@pytest.mark.parametrize("seed", [0, 3])
def test_the_masks_and_labels_are_opencvs(start, iterations, seed):
    image = textured_scene(seed)
    ours, theirs = starts()[start], starts()[start]
    mask = grabcut(image, ours, iterations, seed)
    expected = opencv_cut(image, theirs, iterations, seed)
    assert 0.1 < expected.mean() < 0.9  # a real cut, neither everything nor nothing
    np.testing.assert_array_equal(mask, expected)
    np.testing.assert_array_equal(ours, theirs)  # the probable labels are updated in place, as OpenCV's


def test_sure_pixels_keep_their_labels():
    image, labels = textured_scene(), starts()["refine"]
    before = labels.copy()
    grabcut(image, labels, 3, 0)
    sure = (before == cv2.GC_BGD) | (before == cv2.GC_FGD)
    np.testing.assert_array_equal(labels[sure], before[sure])


def test_nothing_probable_is_nothing_to_cut():
    labels = np.full((90, 120), cv2.GC_BGD, np.uint8)
    labels[30:60, 40:80] = cv2.GC_FGD
    mask = grabcut(textured_scene(), labels, 5, 0)
    np.testing.assert_array_equal(mask, labels == cv2.GC_FGD)


def test_a_start_without_background_is_refused():
    labels = np.full((90, 120), cv2.GC_PR_FGD, np.uint8)
    with pytest.raises(ValueError, match="both background and object"):
        grabcut(textured_scene(), labels, 5, 0)


def test_a_grey_region_keeps_its_colour_distances_positive():
    """Grey pixels lie on a line of RGB: rounding alone gives their covariance a determinant above
    OpenCV's singular test, and the expanded Mahalanobis distance went to -1e5 (densities that
    overflow) until such a model got OpenCV's singular variance too."""
    from paintseg_engine.amcp.graphcut import ColourModel, quadratic_features

    rng = np.random.default_rng(29)
    grey = rng.integers(0, 256, 400).astype(np.float64)
    pixels = np.stack([grey, grey, grey + 2 * rng.integers(0, 2, 400)], axis=1)
    features = quadratic_features(pixels)
    model = ColourModel.fit(features, np.zeros(400, int))
    with np.errstate(all="raise"):
        assert (features @ model.distance).min() > -1e-6
        assert np.isfinite(model.neg_log_likelihood(features)).all()


def direct_energy(image, start, iterations, seed):
    """GrabCut's energy of the labels ``iterations`` cuts from ``start`` end at, summed term by
    term: the colour models refitted after each cut (as OpenCV does), every pixel's cost under its
    label's model, and the neighbour links the outline cuts between pixels not both sure."""
    pixels = image.reshape(-1, 3).astype(np.float64)
    features = quadratic_features(pixels)
    history = [start.copy()]
    for done in range(1, iterations + 1):  # the labels after each cut
        history.append(start.copy())
        grabcut(image, history[-1], done, seed)
    is_background = [np.isin(labels.reshape(-1), (cv2.GC_BGD, cv2.GC_PR_BGD)) for labels in history]
    cv2.setRNGSeed(seed)
    background = start_model(pixels[is_background[0]], features[is_background[0]])
    foreground = start_model(pixels[~is_background[0]], features[~is_background[0]])
    for mask in is_background[:-1]:  # each cut's models: refitted to the labels before it
        background, foreground = background.refit(features[mask]), foreground.refit(features[~mask])
    last = is_background[-1]
    colour = background.neg_log_likelihood(features[last]).sum() + foreground.neg_log_likelihood(features[~last]).sum()
    obj, sure = ~last.reshape(start.shape), np.isin(start, (cv2.GC_BGD, cv2.GC_FGD))
    links = sum(weight[(obj[here] != obj[there]) & ~(sure[here] & sure[there])].sum()
                for here, there, weight in neighbour_links(image.astype(np.float64)))
    return colour + links


@pytest.mark.parametrize("start", ["box", "refine"])
def test_the_energy_is_the_cuts_colour_costs_and_cut_links(start):
    image, labels = textured_scene(1), starts()[start]
    ((mask, energy),) = grabcut_starts(image, [labels.copy()], 3, 0)
    assert energy == pytest.approx(direct_energy(image, labels, 3, 0), rel=1e-9)


def test_starts_sharing_one_graph_cut_as_each_alone():
    """The second start reuses the graph and flow the first left: the same masks and energies as
    two separate cuts, and the first start's mask still OpenCV's."""
    image = textured_scene(2)
    box = starts()["box"]
    partial = box.copy()
    partial[:, 62:][partial[:, 62:] == cv2.GC_PR_FGD] = cv2.GC_PR_BGD  # the blob's left half as object
    together = grabcut_starts(image, [partial.copy(), box.copy()], 4, 0)
    alone = [grabcut_starts(image, [labels.copy()], 4, 0)[0] for labels in (partial, box)]
    for (mask, energy), (mask_alone, energy_alone) in zip(together, alone):
        np.testing.assert_array_equal(mask, mask_alone)
        assert energy == pytest.approx(energy_alone, rel=1e-9)
    np.testing.assert_array_equal(together[0][0], opencv_cut(image, partial.copy(), 4, 0))


def test_starts_with_other_sure_pixels_are_refused():
    box, refine = starts()["box"], starts()["refine"]
    with pytest.raises(ValueError, match="same sure pixels"):
        grabcut_starts(textured_scene(), [box, refine], 3, 0)
