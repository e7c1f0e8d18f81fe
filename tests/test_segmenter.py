"""The segmenter session: one image set, many prompts, the same masks as one-shot segment()."""
import pytest
import torch

from paintseg_engine import AMCPConfig, BoxPrompt, PointsPrompt, PromptError, Segmenter, segment
from paintseg_engine.painters import OpenCVPainter

from tests.scenes import disc_scene

CONFIG = AMCPConfig(frame_size=96, iterations=3, num_samples=2, log_contrast=True, outpaint_region="background")


class CountingPainter(OpenCVPainter):
    def __init__(self):
        super().__init__()
        self.set_image_calls = 0

    def set_image(self, image):
        self.set_image_calls += 1
        super().set_image(image)


def test_session_answers_many_prompts_with_one_set_image(scene, box_around):
    image, gt = scene
    painter = CountingPainter()
    segmenter = Segmenter(painter, config=CONFIG)
    segmenter.set_image(image)
    prompts = [BoxPrompt(box_around(gt, 4)), BoxPrompt(box_around(gt, 10)), PointsPrompt([(50.0, 48.0)])]
    session = [segmenter.predict(p).mask for p in prompts]
    assert painter.set_image_calls == 1
    one_shot = [segment(image, p, config=CONFIG).mask for p in prompts]
    assert all(torch.equal(a, b) for a, b in zip(session, one_shot))


def test_on_step_sees_each_iteration_as_it_ends(scene, box_around):
    image, gt = scene
    segmenter = Segmenter(config=CONFIG)
    segmenter.set_image(image)
    seen = []
    result = segmenter.predict(BoxPrompt(box_around(gt, 6)), on_step=seen.append)
    assert [s.iteration for s in seen] == [0, 1, 2]
    assert [s.kind for s in seen] == ["inpaint", "outpaint", "inpaint"]
    assert seen == result.steps
    assert all(s.seconds >= s.paint_seconds + s.features_seconds for s in seen)


def test_predict_before_set_image_is_refused():
    with pytest.raises(RuntimeError, match="set_image"):
        Segmenter().predict(BoxPrompt((0, 0, 4, 4)))


@pytest.mark.parametrize("image, message", [
    ((torch.rand(3, 20, 20) * 255).to(torch.uint8), "float"),
    (torch.rand(3, 20, 20) * 255, r"\[0, 1\]"),
    (torch.rand(20, 20, 3), r"\[3, H, W\]"),
    (torch.rand(3, 20, 20).numpy(), "torch.Tensor"),
])
def test_images_that_are_not_float_rgb_in_unit_range_are_refused(image, message):
    with pytest.raises((ValueError, TypeError), match=message):
        Segmenter().set_image(image)


def test_prompt_outside_the_image_is_refused():
    image, _ = disc_scene()
    segmenter = Segmenter(config=CONFIG)
    segmenter.set_image(image)
    with pytest.raises(PromptError, match="outside"):
        segmenter.predict(BoxPrompt((100, 10, 200, 50)))


def test_from_config_builds_the_configured_components():
    segmenter = Segmenter.from_config("configs/default.yaml")
    assert isinstance(segmenter.painter, OpenCVPainter)
    assert segmenter.config.frame_size == 320 and segmenter.config.log_contrast


def test_from_config_refuses_a_baseline_config_and_a_missing_file():
    with pytest.raises(ValueError, match="grabcut"):
        Segmenter.from_config("configs/grabcut_baseline.yaml")
    with pytest.raises(FileNotFoundError, match="nope.yaml"):
        Segmenter.from_config("configs/nope.yaml")


def test_clicks_start_from_the_cut_they_seed_or_from_the_whole_image(scene):
    from tests.scenes import iou

    image, gt = scene
    click = PointsPrompt([(57.0, 48.0)])
    from_clicks = segment(image, click, config=AMCPConfig(**{**vars(CONFIG), "points_start": "clicks"}))
    assert iou(from_clicks.prompt_mask, gt) > 0.9 and iou(from_clicks.mask, gt) > 0.9
    from_image = segment(image, click, config=CONFIG)  # the reference's start
    assert from_image.prompt_mask.all()


def test_points_start_outside_its_choices_is_refused():
    from paintseg_engine.amcp.config import SettingsError

    with pytest.raises(SettingsError, match=r"points_start='box' \(allowed: 'image' or 'clicks'\)"):
        AMCPConfig(points_start="box")
    with pytest.raises(SettingsError, match=r"start_valid_scale=0.5 \(allowed: >= 1.0\)"):
        AMCPConfig(start_valid_scale=0.5)
