"""The CUDA path on tiny models: where every network and tensor lives and in which dtype, and the
compiled UNet that replays CUDA graphs. Marked gpu (benchmarks/gpu/run.sh runs them); skipped
without CUDA."""
import copy

import pytest
import torch

from paintseg_engine.amcp import AMCPConfig, Segmenter
from paintseg_engine.features.dino import DinoFeatures
from paintseg_engine.painters.diffusion import DiffusionPainter, load_components
from paintseg_engine.prompts import BoxPrompt
from paintseg_engine.runtime import build_runners
from tests.scenes import disc_scene
from tests.backend_checks import assert_close, unet_inputs

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]

TINY_AMCP = dict(frame_size=64, iterations=3, num_samples=2)


@pytest.mark.parametrize("dtype, vae_dtype", [("float16", torch.float32), ("bfloat16", torch.bfloat16)])
def test_segmenter_runs_on_cuda_in_the_painter_precision(tiny_weights, dtype, vae_dtype):
    """As Lightning does: build on the CPU, move to CUDA, then run. The UNet and text encoder run in
    the painter's precision, SD's VAE stays float32 under float16 only (force_upcast)."""
    painter = DiffusionPainter(tiny_weights[0], dtype=dtype, steps=2, prompt="a red disc").to("cuda")
    features = DinoFeatures(tiny_weights[1], input_size=32, dtype=dtype).to("cuda")
    precision = getattr(torch, dtype)
    for module, expected in [(painter.unet, precision), (painter.text_encoder, precision), (painter.vae, vae_dtype),
                             (features.vit, precision)]:
        assert {p.device.type for p in module.parameters()} == {"cuda"}
        assert {p.dtype for p in module.parameters()} == {expected}
    image, _ = disc_scene(48, 64)
    image = image.cuda()
    frame = torch.rand(3, 64, 64, device="cuda")
    painter.set_image(frame)
    mask = torch.zeros(64, 64, dtype=torch.bool, device="cuda")
    mask[16:48, 16:48] = True
    painted = painter.paint(mask, 2, torch.Generator("cuda").manual_seed(0))
    assert painted.device.type == "cuda" and painted.dtype == torch.float32 and painted.shape == (2, 3, 64, 64)
    assert torch.isfinite(painted).all()
    grid = features(painted)
    assert grid.device.type == "cuda" and grid.dtype == precision
    segmenter = Segmenter(painter, features, AMCPConfig(**TINY_AMCP))
    segmenter.set_image(image)
    result = segmenter.predict(BoxPrompt((10, 6, 50, 42)))
    assert result.mask.shape == (48, 64) and result.mask.dtype == torch.bool and result.mask.device.type == "cuda"
    assert len(result.steps) == TINY_AMCP["iterations"]


def test_cuda_graph_unet_matches_eager(tiny_weights):
    """torch.compile's CUDA-graph replays reuse one output buffer: each call must return its own."""
    loaded = load_components(tiny_weights[0])
    unet, vae = (m.cuda().half() for m in (loaded.unet, loaded.vae))
    eager_unet, _ = build_runners("torch", unet, vae)
    compiled_unet, _ = build_runners("torch-compile", copy.deepcopy(unet), copy.deepcopy(vae), cuda_graphs=True)
    first, second = unet_inputs(2, 8, "cuda"), unet_inputs(2, 8, "cuda")
    second[0] = second[0] + 1  # another sample: another output
    with torch.no_grad():
        expected = [eager_unet(*first), eager_unet(*second)]
        for _ in range(3):  # warm-up, recording, replays
            outputs = [compiled_unet(*first), compiled_unet(*second)]
    for output, reference in zip(outputs, expected):
        assert_close(output, reference, tolerance=2e-2)
    assert not torch.equal(outputs[0], outputs[1])
