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


def test_reset_image_reaches_the_painter_and_the_features():
    from paintseg_engine.features import ColorTextureFeatures

    class Features(ColorTextureFeatures):
        resets = 0

        def reset_image(self):
            Features.resets += 1

    image, _ = disc_scene()
    segmenter = Segmenter(OpenCVPainter(), Features(), config=CONFIG)
    segmenter.set_image(image)
    segmenter.predict(BoxPrompt((20, 20, 100, 90)))
    assert segmenter.painter._image is not None and segmenter.painter._work_image is not None
    resets = Features.resets
    segmenter.reset_image()
    assert segmenter.painter._image is None and segmenter.painter._work_image is None
    assert Features.resets == resets + 1 and segmenter.image is None and segmenter.frame is None
    with pytest.raises(RuntimeError, match="set_image"):
        segmenter.predict(BoxPrompt((20, 20, 100, 90)))
