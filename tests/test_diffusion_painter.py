"""DiffusionPainter on a tiny random SD-inpainting checkpoint saved in the real diffusers layout."""
import logging

import diffusers
import pytest
import torch

from paintseg_engine.painters.diffusion import (SCHEDULERS, DiffusionPainter, SDComponents, cast, coverage,
                                              load_components)
from paintseg_engine.pretrained import MissingWeightsError
from export.random_weights import TINY_UNET
from tests.shared import tiny_sd_checkpoint

RESOLUTION = 64  # 8x8 latents: the tiny UNet's native size
FAST = dict(steps=3, resolution=RESOLUTION)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return tiny_sd_checkpoint(tmp_path_factory)


@pytest.fixture(scope="module")
def image():
    return torch.rand(3, 40, 56, generator=torch.Generator().manual_seed(0))


@pytest.fixture(scope="module")
def mask():
    mask = torch.zeros(40, 56, dtype=torch.bool)
    mask[10:30, 12:36] = True
    return mask


class Recorder:
    """Wraps a painter's runners and records what the denoising loop sends them."""

    def __init__(self, painter):
        self.unet, self.vae = painter.unet_runner, painter.vae_runner
        self.unet_batches, self.encodes, self.decoded = [], 0, []
        painter.unet_runner, painter.vae_runner = self.run_unet, self

    def run_unet(self, sample, timestep, encoder_hidden_states):
        self.unet_batches.append(len(sample))
        return self.unet(sample, timestep, encoder_hidden_states)

    def encode(self, images):
        self.encodes += 1
        return self.vae.encode(images)

    def decode(self, latents):
        self.decoded.append(latents)
        return self.vae.decode(latents)


def paint(painter, image, mask, num_samples=2, seed=0):
    painter.set_image(image)
    return painter.paint(mask, num_samples, torch.Generator().manual_seed(seed))


def test_loads_checkpoint_and_paints_at_input_size(checkpoint, image, mask):
    painter = DiffusionPainter(str(checkpoint), **FAST)
    assert isinstance(painter.unet, diffusers.UNet2DConditionModel) and painter.unet.config.in_channels == 9
    assert isinstance(painter, torch.nn.Module) and painter.text_encoder is not None
    out = paint(painter, image, mask, num_samples=3)
    assert out.shape == (3, 3, 40, 56) and out.dtype == torch.float32
    assert out.min() >= 0 and out.max() <= 1
    assert not torch.equal(out[0], out[1]), "samples must differ by their noise"


def test_seeded_generator_is_deterministic(checkpoint, image, mask):
    painter = DiffusionPainter(str(checkpoint), **FAST)
    first, again = paint(painter, image, mask, seed=1), paint(painter, image, mask, seed=1)
    assert torch.equal(first, again)
    assert not torch.equal(first, paint(painter, image, mask, seed=2))


def test_samples_share_one_unet_call_per_step(checkpoint, image, mask):
    guided = DiffusionPainter(str(checkpoint), prompt="cat", **FAST)
    recorder = Recorder(guided)
    paint(guided, image, mask, num_samples=3)
    assert recorder.unet_batches == [6] * 3  # 3 samples x (unconditional, conditional), 3 steps


def test_guidance_shortcut_gives_the_same_latents(checkpoint, image, mask):
    latents, batches = {}, {}
    for skip in (True, False):
        painter = DiffusionPainter(str(checkpoint), guidance_scale=7.5, skip_redundant_guidance=skip, **FAST)
        recorder = Recorder(painter)
        paint(painter, image, mask, num_samples=3)
        latents[skip], batches[skip] = recorder.decoded[0], recorder.unet_batches
    assert batches == {True: [3] * 3, False: [6] * 3}
    torch.testing.assert_close(latents[True], latents[False], rtol=1e-3, atol=1e-4)


def test_text_embedding_cache_encodes_once_with_identical_output(checkpoint, image, mask):
    outputs, encoder_calls = {}, {}
    for cache in (True, False):
        painter = DiffusionPainter(str(checkpoint), prompt="red", cache_text_embeddings=cache, **FAST)
        calls = []
        painter.text_encoder.register_forward_hook(lambda *args: calls.append(1))
        outputs[cache] = torch.cat([paint(painter, image, mask, seed=s) for s in (0, 1)])
        encoder_calls[cache] = len(calls)
    assert encoder_calls == {True: 2, False: 4}  # prompt and negative prompt; per call without cache
    assert torch.equal(outputs[True], outputs[False])


@pytest.mark.parametrize("settings", [dict(strength=0.5), dict(blend_unmasked=True)])
def test_image_latent_cache_encodes_once_per_image_with_identical_output(checkpoint, image, mask, settings):
    outputs, encodes = {}, {}
    for cache in (True, False):
        painter = DiffusionPainter(str(checkpoint), cache_image_latents=cache, **FAST, **settings)
        recorder = Recorder(painter)
        painter.set_image(image)
        outputs[cache] = torch.cat([painter.paint(mask, 2, torch.Generator().manual_seed(s)) for s in (0, 1)])
        encodes[cache] = recorder.encodes
    assert encodes == {True: 1 + 2, False: 2 * 2}  # masked image every call; the image once, or every call
    assert torch.equal(outputs[True], outputs[False])


def test_image_latents_are_not_encoded_when_unused(checkpoint, image, mask):
    painter = DiffusionPainter(str(checkpoint), **FAST)
    recorder = Recorder(painter)
    paint(painter, image, mask)
    assert recorder.encodes == 1  # the masked image only


def test_strength_runs_the_tail_of_the_schedule(checkpoint, image, mask):
    painter = DiffusionPainter(str(checkpoint), steps=4, strength=0.5, resolution=RESOLUTION)
    recorder = Recorder(painter)
    paint(painter, image, mask)
    assert len(recorder.unet_batches) == 2


def test_blend_keeps_the_original_latents_outside_the_mask(checkpoint, image, mask):
    painter = DiffusionPainter(str(checkpoint), blend_unmasked=True, **FAST)
    recorder = Recorder(painter)
    paint(painter, image, mask)
    final = recorder.decoded[0] * painter.latent_scale
    height, width = painter._pixels.shape[-2:]
    region = coverage(mask[None, None], (height, width))
    outside = ~coverage(region, (height // 8, width // 8))[0, 0]
    assert outside.any() and not outside.all()
    torch.testing.assert_close(final[:, :, outside], painter._image_latents.expand_as(final)[:, :, outside])


@pytest.mark.parametrize("name", sorted(SCHEDULERS))
def test_scheduler_selected_by_name_from_the_checkpoint_config(checkpoint, image, mask, name):
    painter = DiffusionPainter(str(checkpoint), scheduler=name, steps=2, resolution=RESOLUTION)
    class_name, settings = SCHEDULERS[name]
    scheduler = painter.noise_scheduler
    assert type(scheduler).__name__ == class_name
    assert scheduler.config.beta_schedule == "scaled_linear"  # inherited from the checkpoint
    assert all(scheduler.config[key] == value for key, value in settings.items())
    assert paint(painter, image, mask).shape == (2, 3, 40, 56)


def test_scheduler_options_override_the_config(checkpoint):
    painter = DiffusionPainter(str(checkpoint), scheduler="dpm++", scheduler_options={"use_karras_sigmas": True})
    assert painter.noise_scheduler.config.use_karras_sigmas


def test_float16_keeps_the_upcast_vae_in_float32(checkpoint):
    painter = DiffusionPainter(str(checkpoint), dtype="float16")
    assert painter.unet.dtype == torch.float16 and painter.text_encoder.dtype == torch.float16
    assert painter.vae.dtype == torch.float32
    assert DiffusionPainter(str(checkpoint), dtype="bfloat16").vae.dtype == torch.bfloat16


def test_components_without_text_encoder_paint_with_empty_prompt(checkpoint, image, mask):
    loaded = load_components(str(checkpoint))
    components = SDComponents(loaded.unet, loaded.vae, loaded.scheduler_config)
    assert paint(DiffusionPainter(components, **FAST), image, mask).shape == (2, 3, 40, 56)
    with pytest.raises(ValueError, match="must be empty"):
        DiffusionPainter(components, prompt="cat")


@pytest.mark.parametrize("bad, message", [
    (dict(scheduler="plms"), "scheduler must be one of"),
    (dict(resolution=100), "resolution must be a multiple of 8"),
    (dict(strength=0.0), "strength must be in"),
    (dict(dtype="float64"), "dtype must be one of"),
    (dict(backend="tvm"), "backend must be one of"),
])
def test_bad_settings_name_the_setting(checkpoint, bad, message):
    with pytest.raises(ValueError, match=message):
        DiffusionPainter(str(checkpoint), **bad)


def test_rejects_a_non_inpainting_unet(checkpoint):
    loaded = load_components(str(checkpoint))
    loaded.unet = diffusers.UNet2DConditionModel(**{**TINY_UNET, "in_channels": 4})
    with pytest.raises(ValueError, match="4-channel UNet"):
        DiffusionPainter(loaded)


def test_missing_folder_says_what_to_download_where(tmp_path):
    folder = tmp_path / "sd-inpainting"
    with pytest.raises(MissingWeightsError) as error:
        DiffusionPainter(str(folder))
    assert f"hf download stable-diffusion-v1-5/stable-diffusion-inpainting --local-dir {folder}" in str(error.value)


def test_missing_hub_model_offline_says_what_to_download_where():
    with pytest.raises(MissingWeightsError) as error:
        DiffusionPainter("someone/missing-inpainting", local_files_only=True)
    assert "hf download someone/missing-inpainting --local-dir checkpoints/missing-inpainting" in str(error.value)
    assert "model=checkpoints/missing-inpainting" in str(error.value)


def test_step_callback_sees_every_step_and_can_end_the_loop(checkpoint, image, mask):
    painter = DiffusionPainter(str(checkpoint), steps=4, resolution=RESOLUTION)
    seen = []

    def record(painter, index, timestep, kwargs):
        seen.append((index, kwargs["latents"].shape))
        return kwargs

    painter.callback_on_step_end = record
    paint(painter, image, mask)
    assert [index for index, _ in seen] == [0, 1, 2, 3] and seen[0][1][0] == 2  # both samples' latents

    def stop_after_two(painter, index, timestep, kwargs):
        seen.append(index)
        painter.interrupt = index + 1 >= 2
        return kwargs

    seen.clear()
    painter.callback_on_step_end = stop_after_two
    assert paint(painter, image, mask).shape == (2, 3, 40, 56)  # decoded all the same
    assert seen == [0, 1]


def test_reset_image_drops_the_pixels_and_latents(checkpoint, image):
    painter = DiffusionPainter(str(checkpoint), blend_unmasked=True, **FAST)
    painter.set_image(image)
    assert painter._pixels is not None and painter._image_latents is not None
    painter.reset_image()
    assert painter._image is None and painter._pixels is None and painter._image_latents is None
    with pytest.raises(RuntimeError, match="set_image"):
        painter.image


def masks_of(*boxes):
    """Bool [40, 56] masks, one per (y0, y1, x0, x1)."""
    masks = []
    for y0, y1, x0, x1 in boxes:
        masks.append(torch.zeros(40, 56, dtype=torch.bool))
        masks[-1][y0:y1, x0:x1] = True
    return masks


# CPU kernels round a batch of 6 a little differently from a batch of 2: measured at most 4.4e-6 on
# these paintings in [0, 1], so stacked and alone agree to this, not bit for bit.
STACK_TOLERANCE = 1e-4


@pytest.mark.parametrize("settings", [{}, dict(scheduler="euler_ancestral", strength=0.7, blend_unmasked=True,
                                               prompt="cat")], ids=["ddim", "ancestral-guided-blended"])
def test_masks_painted_together_share_each_unet_call_and_paint_as_alone(checkpoint, image, settings):
    painter = DiffusionPainter(str(checkpoint), **FAST, **settings)
    masks = masks_of((10, 30, 12, 36), (0, 20, 0, 20), (20, 40, 30, 56))
    painter.set_image(image)
    recorder = Recorder(painter)
    alone = [painter.paint(m, 2, torch.Generator().manual_seed(i)) for i, m in enumerate(masks)]
    alone_calls, alone_batches = len(recorder.unet_batches), set(recorder.unet_batches)
    recorder.unet_batches, recorder.encodes, recorder.decoded = [], 0, []
    together = painter.paint_many(masks, 2, [torch.Generator().manual_seed(i) for i in range(3)])
    # One UNet call per denoising step for the three masks' samples (both guidance branches when guided).
    assert len(recorder.unet_batches) == alone_calls // 3
    assert set(recorder.unet_batches) == {3 * batch for batch in alone_batches}
    assert recorder.encodes == 1 and [len(latents) for latents in recorder.decoded] == [6]
    for one, stacked in zip(alone, together):
        assert stacked.shape == one.shape == (2, 3, 40, 56)
        torch.testing.assert_close(stacked, one, rtol=0, atol=STACK_TOLERANCE)
    assert not torch.allclose(together[0], together[1], atol=1e-2), "each mask is painted as its own"


class LimitedRunner:
    """A UNet runner that takes at most ``max_batch`` samples, as an exported engine's does."""

    def __init__(self, runner, max_batch):
        self.runner, self.max_batch = runner, max_batch

    def __call__(self, sample, timestep, encoder_hidden_states):
        assert len(sample) <= self.max_batch
        return self.runner(sample, timestep, encoder_hidden_states)


def test_a_runner_with_a_batch_limit_gets_stacks_that_fit(checkpoint, image):
    painter = DiffusionPainter(str(checkpoint), **FAST)
    recorder = Recorder(painter)
    painter.unet_runner = LimitedRunner(painter.unet_runner, max_batch=5)  # two masks of 2 samples
    painter.set_image(image)
    masks = masks_of((10, 30, 12, 36), (0, 20, 0, 20), (20, 40, 30, 56))
    painted = painter.paint_many(masks, 2, [torch.Generator().manual_seed(i) for i in range(3)])
    assert recorder.unet_batches == [4] * 3 + [2] * 3 and [len(p) for p in painted] == [2, 2, 2]
    with pytest.raises(ValueError, match="one generator per mask, got 3 masks and 1 generators"):
        painter.paint_many(masks, 2, [None])
    assert painter.paint_many([], 2, []) == []


def test_cast_holds_back_diffusers_empty_keep_in_float32_warning():
    logger = diffusers.utils.logging.get_logger("diffusers.models.modeling_utils")
    level = logger.level
    logger.setLevel(logging.WARNING)  # whatever verbosity the session set
    heard = []
    handler = logging.Handler()
    handler.emit = lambda record: heard.append(record.getMessage())
    logger.addHandler(handler)
    try:
        unet = diffusers.UNet2DConditionModel(**TINY_UNET)
        unet.to(torch.bfloat16)  # diffusers' own cast: the warning, listing no modules
        assert any("should be kept in float32: []" in message for message in heard)
        heard.clear()
        cast(unet, torch.float32)
        assert heard == [] and logger.level == logging.WARNING
        unet._keep_in_fp32_modules = ["conv_in"]  # a list that says something still shows
        cast(unet, torch.bfloat16)
        assert any("should be kept in float32: ['conv_in']" in message for message in heard)
        unet._keep_in_fp32_modules = None
        cast(unet, torch.float32)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    assert unet.dtype == torch.float32 and not unet.training
