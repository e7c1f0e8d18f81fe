"""The segmenter session: one image set, many prompts, the same masks as one-shot segment()."""
import pytest
import torch

from paintseg_engine import AMCPConfig, BoxPrompt, MaskPrompt, PointsPrompt, PromptError, Segmenter, segment
from paintseg_engine.errors import SettingsError
from paintseg_engine.painters import OpenCVPainter

from tests.scenes import disc_scene

CONFIG = AMCPConfig(frame_size=96, iterations=3, num_samples=2, log_contrast=True, outpaint_region="background")


class CountingPainter(OpenCVPainter):
    def __init__(self, methods=("telea", "ns")):
        super().__init__(methods)
        self.set_image_calls, self.regions = 0, []

    def set_image(self, image):
        self.set_image_calls += 1
        super().set_image(image)

    def paint(self, mask, num_samples, generator=None):
        self.regions.append(mask.clone())
        return super().paint(mask, num_samples, generator)


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


def test_each_step_paints_with_its_own_painter(scene, box_around):
    image, gt = scene
    inpainter, outpainter = CountingPainter(("telea",)), CountingPainter(("ns",))
    segmenter = Segmenter(inpainter, config=CONFIG, outpaint_painter=outpainter)
    segmenter.set_image(image)
    result = segmenter.predict(BoxPrompt(box_around(gt, 6)))
    assert (inpainter.set_image_calls, outpainter.set_image_calls) == (1, 1)
    assert (len(inpainter.regions), len(outpainter.regions)) == (2, 1)  # I, O, I
    assert [(s.kind, s.painter) for s in result.steps] == [
        ("inpaint", "CountingPainter"), ("outpaint", "CountingPainter"), ("inpaint", "CountingPainter")]
    assert result.steps[1].timings()["painter"] == "CountingPainter"
    # The default: one painter paints both steps, set once per image.
    one = CountingPainter()
    single = Segmenter(one, config=CONFIG)
    single.set_image(image)
    single.predict(BoxPrompt(box_around(gt, 6)))
    assert single.outpaint_painter is one and one.set_image_calls == 1 and len(one.regions) == 3


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


def test_a_step_record_prints_as_one_short_line():
    from paintseg_engine.amcp import StepRecord

    record = StepRecord(2, "inpaint", "OpenCVPainter", torch.ones(30, 40, dtype=torch.bool), 0.5, 0.1, 0.25, 0.15)
    assert str(record) == "iteration 2 inpaint: 0.500 s (paint 0.100, features 0.250, update 0.150), mask 100.0% of 40x30"
    assert "tensor" not in repr(record)


def test_clicks_start_from_the_cut_they_seed_or_from_the_whole_image(scene):
    from tests.scenes import iou

    image, gt = scene
    click = PointsPrompt([(57.0, 48.0)])
    from_clicks = segment(image, click, config=AMCPConfig(**{**vars(CONFIG), "points_start": "clicks"}))
    assert iou(from_clicks.prompt_mask, gt) > 0.9 and iou(from_clicks.mask, gt) > 0.9
    from_image = segment(image, click, config=CONFIG)  # the reference's start
    assert from_image.prompt_mask.all()


def test_clicks_start_from_the_previous_answer_they_carry_when_so_configured(scene):
    from tests.scenes import iou

    image, gt = scene
    config = {**vars(CONFIG), "points_start": "clicks", "start_reach": 0.0}  # the click's own disc alone is little
    click = PointsPrompt([(57.0, 48.0)], previous=gt)
    corrected = segment(image, click, config=AMCPConfig(**{**config, "points_previous": True}))
    afresh = segment(image, click, config=AMCPConfig(**config))
    assert iou(corrected.prompt_mask, gt) > 0.9 and iou(afresh.prompt_mask, gt) < 0.5
    # A negative click inside the previous answer says it spilled: the cut starts afresh.
    spilled = PointsPrompt([(57.0, 48.0)], [(5.0, 5.0)], previous=torch.ones_like(gt))
    starts = [segment(image, spilled, config=AMCPConfig(**{**config, "points_previous": on})).prompt_mask
              for on in (True, False)]
    assert torch.equal(*starts)
    with pytest.raises(PromptError, match=r"previous mask has shape \(10, 128\), but the image is 96x128"):
        segment(image, PointsPrompt([(57.0, 48.0)], previous=gt[:10]), config=AMCPConfig(**{**config, "points_previous": True}))


def test_clicks_can_start_from_the_seeded_cut_on_the_image_itself(scene):
    from paintseg_engine.baselines import click_grabcut_mask
    from tests.scenes import iou

    image, gt = scene
    config = AMCPConfig(**{**vars(CONFIG), "points_start": "clicks", "start_on": "image"})
    click = PointsPrompt([(57.0, 48.0)])
    result = segment(image, click, config=config)
    baseline = click_grabcut_mask(image, click, config.click_radius, config.start_reach, config.start_iterations,
                                  config.seed, config.start_window)
    assert torch.equal(result.prompt_mask, baseline) and iou(result.mask, gt) > 0.9
    with pytest.raises(SettingsError, match=r"start_on='box' \(allowed: 'frame' or 'image'\)"):
        AMCPConfig(start_on="box")


def test_clicks_start_in_a_window_around_them_or_from_the_whole_image():
    from tests.scenes import twin_discs_scene

    image, clicked, other = twin_discs_scene()
    click = PointsPrompt([(30.0, 48.0)])
    config = {**vars(CONFIG), "points_start": "clicks"}
    windowed = segment(image, click, config=AMCPConfig(**{**config, "start_window": 0.25}))
    assert windowed.mask[clicked].float().mean() > 0.9 and not windowed.mask[other].any()
    whole = segment(image, click, config=AMCPConfig(**{**config, "start_window": None}))
    assert whole.prompt_mask[other].float().mean() > 0.9  # the whole frame's cut takes the look-alike too
    with pytest.raises(SettingsError, match=r"start_window=0 \(allowed: > 0, or None"):
        AMCPConfig(start_window=0)


def test_from_clicks_the_valid_region_stays_in_the_starts_window(scene):
    from paintseg_engine.amcp.start import click_window

    image, _ = scene  # 128x96, letterboxed into a 96 px frame: the frame is 0.75 of the image
    segmenter = Segmenter(config=AMCPConfig(**{**vars(CONFIG), "points_start": "clicks", "start_window": 0.1}))
    segmenter.set_image(image)
    valid = segmenter.prompt_run(PointsPrompt([(57.0, 48.0)])).ctx.valid
    window = click_window([segmenter.letterbox.point_to_frame(57.0, 48.0)], 0.1 * 96, (96, 96))
    assert valid.any() and not (valid & ~window).any()


def test_points_start_outside_its_choices_is_refused():
    with pytest.raises(SettingsError, match=r"points_start='box' \(allowed: 'image' or 'clicks'\)"):
        AMCPConfig(points_start="box")
    with pytest.raises(SettingsError, match=r"start_valid_scale=0.5 \(allowed: >= 1.0\)"):
        AMCPConfig(start_valid_scale=0.5)


class NoisyPainter(OpenCVPainter):
    """The OpenCV fill plus noise drawn from the prompt's generator, so that a prompt's results
    depend on its generator as a diffusion painter's do; counts its ``paint_many`` calls."""

    def __init__(self):
        super().__init__()
        self.stacks = []

    def paint(self, mask, num_samples, generator=None):
        painted = super().paint(mask, num_samples, generator)
        noise = 0.2 * torch.rand(painted.shape, generator=generator)
        return torch.where(mask, (painted + noise).clamp(0, 1), painted)

    def paint_many(self, masks, num_samples, generators):
        self.stacks.append(len(masks))
        return super().paint_many(masks, num_samples, generators)


def three_prompts():
    """A box, clicks and a coarse mask on the 64x64 disc scene: (image, prompts)."""
    image, gt = disc_scene(64, 64)
    coarse = torch.zeros(64, 64, dtype=torch.bool)
    coarse[14:50, 8:44] = True
    return image, [BoxPrompt((6, 12, 50, 54)), PointsPrompt([(29.0, 32.0)], [(3.0, 3.0)]), MaskPrompt(coarse)]


@pytest.mark.parametrize("iterations_box", [None, 1])
@pytest.mark.parametrize("painter", [OpenCVPainter, NoisyPainter])
def test_prompts_in_lockstep_get_the_masks_they_get_alone(painter, iterations_box):
    """Also when the box runs fewer iterations than the others (``iterations_box``): it leaves the
    lockstep after its last one."""
    image, prompts = three_prompts()
    config = AMCPConfig(frame_size=48, iterations=3, num_samples=2, log_contrast=True, iterations_box=iterations_box)
    counts = [3 if iterations_box is None else iterations_box, 3, 3]
    segmenter = Segmenter(painter(), config=config)
    segmenter.set_image(image)
    assert [segmenter.steps_for(p) for p in prompts] == counts
    alone = [segmenter.predict(p) for p in prompts]
    seen = []
    together = segmenter.predict_many(prompts, on_step=lambda index, record: seen.append((index, record.iteration)))
    for one, many, count in zip(alone, together, counts):
        assert torch.equal(one.mask, many.mask) and torch.equal(one.prompt_mask, many.prompt_mask)
        assert [torch.equal(a.mask, b.mask) for a, b in zip(one.steps, many.steps)] == [True] * count
        assert len(many.steps) == count
    firsts = [r.steps[0].mask for r in together]  # (the refinement brings all three to the disc at the end)
    assert not any(torch.equal(a, b) for i, a in enumerate(firsts) for b in firsts[i + 1:]), "three paths, not one"
    assert seen == [(index, iteration) for iteration in range(3) for index in range(3) if iteration < counts[index]]
    if painter is NoisyPainter:  # one painter call per iteration for the prompts still running
        assert segmenter.painter.stacks == [1] * sum(counts) + [sum(c > i for c in counts) for i in range(3)]


def test_predict_many_of_no_prompts_is_no_results_and_a_bad_prompt_is_named():
    image, prompts = three_prompts()
    painter = NoisyPainter()
    segmenter = Segmenter(painter, config=AMCPConfig(frame_size=32, iterations=1, num_samples=2))
    with pytest.raises(RuntimeError, match="set_image"):
        segmenter.predict_many(prompts)
    segmenter.set_image(image)
    assert segmenter.predict_many([]) == []
    lost = BoxPrompt((1, 1, 2, 2))  # inside the image, but no pixel of the half-size frame
    with pytest.raises(PromptError, match=r"^prompts\[1\]: the box prompt covers no pixel of the frame") as error:
        segmenter.predict_many([prompts[0], lost, prompts[2]])
    assert error.value.index == 1 and painter.stacks == [], "checked before anything is painted"
    with pytest.raises(PromptError, match=r"^the box prompt covers no pixel") as alone:
        segmenter.predict(lost)
    assert alone.value.index is None


def test_the_baseline_answers_many_prompts_one_after_the_other():
    from paintseg_engine.baselines import GrabCutSegmenter

    image, prompts = three_prompts()
    baseline = GrabCutSegmenter()
    baseline.set_image(image)
    boxes = [prompts[0], BoxPrompt((10, 10, 40, 40))]
    together = baseline.predict_many(boxes)
    assert [torch.equal(a.mask, baseline.predict(p).mask) for a, p in zip(together, boxes)] == [True] * 2
    with pytest.raises(PromptError, match=r"^prompts\[1\]: box \(100, 100, 120, 120\) lies outside") as error:
        baseline.predict_many([boxes[0], BoxPrompt((100, 100, 120, 120))])
    assert error.value.index == 1
