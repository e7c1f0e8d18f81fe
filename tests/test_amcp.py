"""Each AMCP step's contract, for any painter; and that the weight-free default really segments."""
import pytest
import torch

from paintseg_engine.amcp import AMCPConfig, inpaint_step, outpaint_step, segment
from paintseg_engine.amcp.contrast import crop_boxes, kmeans_1d
from paintseg_engine.amcp.frame import Letterbox, valid_region
from paintseg_engine.amcp.steps import StepContext
from paintseg_engine.features import ColorTextureFeatures
from paintseg_engine.painters import OpenCVPainter, Painter
from paintseg_engine.prompts import BoxPrompt, PointsPrompt

from tests.scenes import disc_scene, iou


class NoisePainter(Painter):
    """An adversarial painter: random colours inside the mask."""

    def paint(self, mask, num_samples, generator=None):
        noise = torch.rand(num_samples, *self.image.shape, generator=generator)
        return torch.where(mask, noise, self.image)


def make_state(image, box, painter, config):
    letterbox = Letterbox(*image.shape[-2:], config.frame_size)
    frame = letterbox.image_to_frame(image)
    painter.set_image(frame)
    state = StepContext(frame=frame, valid=valid_region(box, config.valid_region_scale, letterbox),
                        positive=[], prompt_kind="box", inpaint_painter=painter, outpaint_painter=painter,
                        features=ColorTextureFeatures(), config=config, generator=torch.Generator().manual_seed(0))
    return state, letterbox.mask_to_frame(BoxPrompt(box).initial_mask(*image.shape[-2:]))


@pytest.mark.parametrize("painter", [OpenCVPainter(), NoisePainter()], ids=["opencv", "noise"])
def test_inpaint_step_only_shrinks_and_outpaint_step_only_grows(scene, box_around, painter):
    image, gt = scene
    config = AMCPConfig(frame_size=96, num_samples=3)
    state, foreground = make_state(image, box_around(gt, 6), painter, config)
    shrunk = inpaint_step(state, foreground, 0).mask
    assert not (shrunk & ~foreground).any()
    assert shrunk.any()
    grown = outpaint_step(state, shrunk, 1).mask
    assert not (shrunk & ~grown).any()
    # Growth stays inside the band around the mask and inside the valid region.
    band = torch.nn.functional.max_pool2d(shrunk[None].float(), 2 * config.outpaint_band + 1, 1,
                                          config.outpaint_band)[0].bool()
    assert not (grown & ~band).any()
    assert not (grown & ~state.valid).any()


def test_mask_comes_back_at_the_input_size(box_around):
    image, gt = disc_scene(height=70, width=131)
    result = segment(image, BoxPrompt(box_around(gt, 5)), OpenCVPainter(), ColorTextureFeatures(),
                     AMCPConfig(frame_size=128, iterations=3, num_samples=2))
    assert result.mask.shape == (70, 131) and result.mask.dtype == torch.bool
    assert [step.kind for step in result.steps] == ["inpaint", "outpaint", "inpaint"]
    assert all(step.seconds >= step.paint_seconds for step in result.steps)
    assert all(step.mask.shape == (70, 131) for step in result.steps)
    assert torch.equal(result.steps[-1].mask, result.mask)


def test_weight_free_default_improves_a_loose_box(scene, box_around):
    image, gt = scene
    prompt = BoxPrompt(box_around(gt, 10))
    result = segment(image, prompt, OpenCVPainter(), ColorTextureFeatures(),
                     AMCPConfig(frame_size=128, log_contrast=True, outpaint_region="background"))
    box_iou, amcp_iou = iou(result.prompt_mask, gt), iou(result.mask, gt)
    assert amcp_iou > box_iou + 0.15, (box_iou, amcp_iou)
    assert amcp_iou > 0.85


def test_points_prompt_segments_around_the_click(scene):
    image, gt = scene
    ys, xs = torch.nonzero(gt, as_tuple=True)
    click = (xs.float().mean().item(), ys.float().mean().item())
    result = segment(image, PointsPrompt(positive=[click]), OpenCVPainter(), ColorTextureFeatures(),
                     AMCPConfig(frame_size=128, log_contrast=True, outpaint_region="background"))
    assert result.mask[int(click[1]), int(click[0])]
    assert iou(result.mask, gt) > iou(result.prompt_mask, gt)


@pytest.mark.parametrize("painter", [OpenCVPainter(), NoisePainter()], ids=["opencv", "noise"])
def test_clicks_are_hard_constraints(scene, painter):
    image, gt = scene
    ys, xs = torch.nonzero(gt, as_tuple=True)
    inside = (xs.float().mean().item(), ys.float().mean().item())
    outside = (2.0, 2.0)  # the scene's disc is away from its corners
    config = AMCPConfig(frame_size=96, num_samples=3, click_radius=0.05)
    result = segment(image, PointsPrompt(positive=[inside], negative=[outside]), painter, ColorTextureFeatures(), config)
    radius = config.click_radius * max(image.shape[-2:])  # in image pixels: the frame is the longer side
    yy, xx = torch.meshgrid(torch.arange(gt.shape[0]), torch.arange(gt.shape[1]), indexing="ij")
    near = lambda p: (xx - p[0]) ** 2 + (yy - p[1]) ** 2 <= (radius - 1.5) ** 2  # noqa: E731  (resampling margin)
    assert result.mask[near(inside)].all()
    assert not result.mask[near(outside)].any()


def test_original_feature_cache_gives_identical_masks(scene, box_around):
    image, gt = scene
    runs = [segment(image, BoxPrompt(box_around(gt, 8)), OpenCVPainter(), ColorTextureFeatures(),
                    AMCPConfig(frame_size=96, iterations=2, num_samples=4, crop_jitter=0,
                               cache_original_features=cache)).mask
            for cache in (True, False)]
    assert torch.equal(runs[0], runs[1])


def test_kmeans_1d_separates_two_groups():
    values = torch.cat([torch.full((50,), 1.0), torch.full((30,), 5.0)]) + 0.01 * torch.randn(80)
    centres, labels = kmeans_1d(values, 2, steps=20)
    assert torch.allclose(centres, torch.tensor([1.0, 5.0]), atol=0.05)
    assert (labels[:50] == 0).all() and (labels[50:] == 1).all()


def lloyd_1d(values: torch.Tensor, k: int, steps: int) -> torch.Tensor:
    """Plain Lloyd's k-means on scalars from torch.quantile starts: the oracle for kmeans_1d."""
    centres = torch.quantile(values, (torch.arange(k, dtype=torch.float32) + 0.5) / k)
    for _ in range(steps):
        labels = torch.bucketize(values, (centres[1:] + centres[:-1]) / 2)
        sums = torch.zeros(k, dtype=torch.float64).index_add_(0, labels, values.double())
        counts = torch.bincount(labels, minlength=k)
        centres = torch.where(counts > 0, (sums / counts.clamp_min(1)).float(), centres).sort().values
    return centres


@pytest.mark.parametrize("k", [2, 3])
def test_kmeans_1d_matches_lloyds_algorithm(k):
    # Skewed, overlapping groups (as log contrast is), fewer values than the fitting cap.
    generator = torch.Generator().manual_seed(k)
    values = torch.cat([torch.log(torch.rand(20_000, generator=generator) ** 3 + 1e-3),
                        torch.randn(9_000, generator=generator) * 0.5 + 1.5])
    centres, labels = kmeans_1d(values, k, steps=50)
    assert torch.allclose(centres, lloyd_1d(values, k, 50), rtol=1e-5, atol=1e-5)
    assert torch.equal(labels, torch.bucketize(values, (centres[1:] + centres[:-1]) / 2))
    assert labels.unique().tolist() == list(range(k))


def test_crops_share_one_size_and_stay_in_the_frame():
    foreground = torch.zeros(64, 64, dtype=torch.bool)
    foreground[0:20, 50:64] = True  # touches the frame's corner
    boxes = crop_boxes(foreground, 5, AMCPConfig(crop_jitter=4), torch.Generator().manual_seed(0))
    sizes = {(y1 - y0, x1 - x0) for x0, y0, x1, y1 in boxes}  # (x0, y0, x1, y1), as prompts' boxes
    assert len(sizes) == 1
    assert all(0 <= y0 and 0 <= x0 and y1 <= 64 and x1 <= 64 for x0, y0, x1, y1 in boxes)
    assert all(x1 == 64 for x0, y0, x1, y1 in boxes)  # the object touches the right edge, not the bottom


def test_letterbox_round_trip_keeps_masks():
    letterbox = Letterbox(50, 80, 64)
    mask = torch.zeros(50, 80, dtype=torch.bool)
    mask[10:40, 20:60] = True
    back = letterbox.mask_from_frame(letterbox.mask_to_frame(mask))
    assert back.shape == (50, 80)
    assert iou(back, mask) > 0.95
    assert not letterbox.content()[: letterbox.top].any()


def test_bad_image_shape_is_refused(box_around):
    with pytest.raises(ValueError, match=r"\[3, H, W\]"):
        segment(torch.rand(4, 20, 20), BoxPrompt((1, 1, 5, 5)), OpenCVPainter(), ColorTextureFeatures())
