"""serve's image sessions: each holds its own image, whatever was set on another since."""
import numpy as np
import torch

from paintseg_engine import AMCPConfig, Segmenter
from paintseg_engine.data.synthetic import make_scene
from paintseg_engine.prompts import BoxPrompt, box_of
from paintseg_engine.serving.sessions import ImageSessions


def scene(seed: int) -> tuple[torch.Tensor, BoxPrompt]:
    pixels, gt = make_scene(np.random.default_rng(seed), 64, 80)
    return torch.from_numpy(pixels).permute(2, 0, 1).float() / 255, BoxPrompt(box_of(torch.from_numpy(gt)))


def test_a_kept_session_answers_as_a_fresh_one_after_other_images_were_set():
    segmenter = Segmenter(config=AMCPConfig(frame_size=64, iterations=3, num_samples=2))
    (image_a, box_a), (image_b, _) = scene(0), scene(1)
    sessions = ImageSessions(segmenter, capacity=2, device="cpu")
    session_a, _ = sessions.open("a", image_a)
    sessions.open("b", image_b)  # set last: a part shared by the sessions would now hold image b
    assert session_a.segmenter.outpaint_painter is session_a.segmenter.painter  # one painter, copied once
    fresh = Segmenter(config=AMCPConfig(frame_size=64, iterations=3, num_samples=2))
    fresh.set_image(image_a)
    assert torch.equal(sessions.get("a").segmenter.predict(box_a).mask, fresh.predict(box_a).mask)
