"""``paintseg serve`` over HTTP: one server for the module, in a subprocess on a free loopback
port, batching requests that come together (test_serve_drain's server does not batch). A box and
clicks give the engine's masks, alone or in concurrent requests; each bad request gets its 4xx and
the server keeps serving."""
import base64
import io
import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip("litserve", reason="paintseg serve needs the serve extra: pip install -e '.[serve]'")
import httpx  # noqa: E402
from pycocotools import mask as coco_mask  # noqa: E402

from paintseg_engine import BoxPrompt, PointsPrompt, Segmenter, build_segmenter  # noqa: E402
from paintseg_engine.__main__ import main as paintseg  # noqa: E402
from paintseg_engine.commands.serve import SegmentAPI  # noqa: E402
from paintseg_engine.prompts import prompt_from  # noqa: E402
from paintseg_engine.serving.requests import Refusal, parse_prompt  # noqa: E402
from paintseg_engine.serving.settings import ServeSettings  # noqa: E402
from benchmarks.serve_process import png_bytes, request_json, running_server  # noqa: E402
from tests.scenes import disc_scene  # noqa: E402
from tests.tiny_config import TINY_AMCP, write_config_without_weights, write_tiny_config  # noqa: E402

API_KEY = "test-key"
MAX_PIXELS = 20_000  # the 128x96 scene passes, a 200x200 image does not
MAX_BODY_BYTES = 200_000
MAX_PROMPTS = 4
TIMEOUT = 120.0  # s: generous, a loaded 2-core machine is slow
MAX_BATCH_SIZE, BATCH_TIMEOUT = 3, 0.1  # requests sent together are answered together


@pytest.fixture(scope="module")
def scene():
    image, gt = disc_scene()
    pixels = (image.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    return torch.from_numpy(pixels).permute(2, 0, 1).float() / 255, png_bytes(pixels)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("serve")
    config = write_tiny_config(folder)
    with running_server(folder, config, env={"PAINTSEG_API_KEY": API_KEY}, max_pixels=MAX_PIXELS,
                        max_body_bytes=MAX_BODY_BYTES, max_prompts=MAX_PROMPTS, timeout=TIMEOUT,
                        max_batch_size=MAX_BATCH_SIZE, batch_timeout=BATCH_TIMEOUT) as (url, _):
        with httpx.Client(base_url=url, headers={"X-API-Key": API_KEY}, timeout=TIMEOUT) as client:
            yield client, config


def decoded(result: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """(The PNG mask, the RLE mask) of one prompt's answer, as bool tensors."""
    png = np.asarray(Image.open(io.BytesIO(base64.b64decode(result["mask_png"]))))
    rle = coco_mask.decode({"size": result["rle"]["size"], "counts": result["rle"]["counts"].encode()})
    return torch.from_numpy(png > 0), torch.from_numpy(rle > 0)


def test_a_box_and_clicks_give_the_engines_masks(server, scene):
    client, config = server
    image, encoded = scene
    box, positive, negative = [10, 10, 110, 90], [[57, 48]], [[5, 5]]
    prompts = [{"box": box}, {"positive": positive, "negative": negative}]
    first = client.post("/predict", json=request_json(encoded, prompts))
    assert first.status_code == 200, first.text
    # The same image again, uploaded as a file: its set-up is reused and the masks are the same.
    again = client.post("/predict", files={"image": ("photo.png", encoded, "image/png")},
                        data={"prompts": json.dumps(prompts[:1])})
    assert again.status_code == 200, again.text

    segmenter = build_segmenter(config)
    segmenter.set_image(image)
    engine = [segmenter.predict(p).mask for p in (BoxPrompt(box), PointsPrompt(positive, negative))]
    answer = first.json()
    assert answer["image"] | {"key": None} == {"width": 128, "height": 96, "key": None, "reused": False,
                                               "set_image_seconds": answer["image"]["set_image_seconds"]}
    assert len(answer["results"]) == 2
    for result, expected in zip(answer["results"], engine):
        png, rle = decoded(result)
        assert torch.equal(png, expected) and torch.equal(rle, expected)
        assert result["area"] == int(expected.sum()) > 0
        assert [s["step"] for s in result["steps"]] == ["inpaint", "outpaint", "inpaint"][:TINY_AMCP["iterations"]]
        assert all(s["seconds"] >= s["paint"] >= 0 for s in result["steps"])
    assert again.json()["image"]["reused"] is True and again.json()["image"]["set_image_seconds"] is None
    assert torch.equal(decoded(again.json()["results"][0])[0], engine[0])


def mask_text(mask: np.ndarray) -> str:
    return base64.b64encode(png_bytes(mask)).decode()


def test_clicks_carry_the_previous_answer_they_correct(server, scene):
    """``previous`` (SAM's mask input) reaches the engine as PointsPrompt.previous."""
    client, config = server
    image, encoded = scene
    previous = np.zeros((96, 128), np.uint8)
    previous[30:70, 40:80] = 255
    spec = {"positive": [[57, 48]], "negative": [[5, 5]], "previous": mask_text(previous)}
    prompt = parse_prompt(spec, 0, (96, 128), MAX_PIXELS)
    assert torch.equal(prompt.previous_mask(96, 128), torch.from_numpy(previous > 0))
    response = client.post("/predict", json=request_json(encoded, [spec]))
    assert response.status_code == 200, response.text
    segmenter = build_segmenter(config)
    segmenter.set_image(image)
    assert torch.equal(decoded(response.json()["results"][0])[0], segmenter.predict(prompt).mask)


def too_many_pixels() -> bytes:
    return png_bytes(np.zeros((200, 200, 3), np.uint8))


def bad_requests(encoded: bytes) -> dict:
    """name -> (request arguments, the status it must get, a fragment of the detail)."""
    good = request_json(encoded, [{"box": [10, 10, 110, 90]}])
    return {
        "malformed JSON": (dict(content=b'{"image": "', headers={"content-type": "application/json"}), 400,
                           "not valid JSON"),
        "not an object": (dict(json=[1, 2]), 422, "JSON object"),
        "no prompts": (dict(json={"image": good["image"]}), 422, "'prompts'"),
        "image not a string": (dict(json={**good, "image": 7}), 422, "base64 string"),
        "image not base64": (dict(json={**good, "image": "***"}), 400, "not valid base64"),
        "box of text": (dict(json={**good, "prompts": [{"box": "10,10,110,90"}]}), 422, "prompts[0].box"),
        "box of 3 numbers": (dict(json={**good, "prompts": [{"box": [1, 2, 3]}]}), 422, "list of 4 numbers"),
        "unknown prompt key": (dict(json={**good, "prompts": [{"scribble": []}]}), 422, "unknown keys"),
        "empty prompts": (dict(json={**good, "prompts": []}), 422, "non-empty list"),
        "too many prompts": (dict(json={**good, "prompts": good["prompts"] * (MAX_PROMPTS + 1)}), 422,
                             "max_prompts"),
        "box outside the image": (dict(json={**good, "prompts": [{"box": [10, 10, 500, 90]}]}), 422,
                                  "outside the 128x96"),
        "click outside the image": (dict(json={**good, "prompts": [{"positive": [[300, 5]]}]}), 422,
                                    "outside the 128x96"),
        "mask of another size": (dict(json={**good, "prompts": [{"mask": base64.b64encode(
            png_bytes(np.full((10, 10), 255, np.uint8))).decode()}]}), 422, "coarse mask has shape"),
        "previous of another size": (dict(json={**good, "prompts": [{"positive": [[57, 48]], "previous": mask_text(
            np.full((10, 10), 255, np.uint8))}]}), 422, "previous mask has shape"),
        "previous with a box": (dict(json={**good, "prompts": [{"box": [10, 10, 110, 90], "previous": mask_text(
            np.full((96, 128), 255, np.uint8))}]}), 422, "goes with clicks alone"),
        "non-image bytes": (dict(json=request_json(b"not an image at all", good["prompts"])), 415, "not an image"),
        "too many pixels": (dict(json=request_json(too_many_pixels(), good["prompts"])), 413, "max_pixels"),
        "body too large": (dict(json={**good, "padding": "x" * MAX_BODY_BYTES}), 413, "max_body_bytes"),
        "no API key": (dict(json=good, headers={"X-API-Key": ""}), 401, "X-API-Key"),
    }


def test_each_bad_request_gets_its_4xx_and_the_server_keeps_serving(server, scene):
    client, _ = server
    encoded = scene[1]
    statuses = {}
    for name, (arguments, status, fragment) in bad_requests(encoded).items():
        response = client.post("/predict", **arguments)
        statuses[name] = response.status_code
        assert response.status_code == status, (name, response.text)
        assert fragment in response.json()["detail"], (name, response.text)
    assert len(statuses) == 19
    assert httpx.get(client.base_url.join("/health"), timeout=10).status_code == 200  # no key needed there
    good = client.post("/predict", json=request_json(encoded, [{"box": [10, 10, 110, 90]}]))
    assert good.status_code == 200 and good.json()["results"][0]["area"] > 0


def test_a_coarse_mask_prompt_is_answered(server, scene):
    client, config = server
    image, encoded = scene
    coarse = np.zeros((96, 128), np.uint8)
    coarse[20:80, 25:95] = 255
    response = client.post("/predict", json=request_json(encoded, [{"mask": base64.b64encode(png_bytes(coarse)).decode()}]))
    assert response.status_code == 200, response.text
    assert decoded(response.json()["results"][0])[0].any()


def worker(folder, **settings) -> SegmentAPI:
    """The LitAPI as a worker runs it, in this process."""
    api = SegmentAPI(write_tiny_config(folder), ServeSettings(**settings))
    api.pre_setup()
    api.setup("cpu")
    return api


def test_a_bad_request_in_a_batch_fails_alone_and_an_image_is_set_up_once(tmp_path, scene):
    api = worker(tmp_path, max_batch_size=3)
    encoded = scene[1]
    good = request_json(encoded, [{"box": [10, 10, 110, 90]}])
    batch = api.batch([api.decode_request(r) for r in (good, {**good, "prompts": [{"box": [0, 0, 999, 9]}]}, good)])
    first, refused, second = [api.encode_response(y) for y in api.unbatch(api.predict(batch))]
    assert json.loads(refused.body)["detail"].startswith("prompts[0]: box") and refused.status_code == 422
    assert first["image"]["reused"] is False and second["image"]["reused"] is True
    assert first["results"][0]["rle"] == second["results"][0]["rle"]


def test_a_segmentation_past_its_deadline_is_answered_504(tmp_path, scene):
    api = worker(tmp_path, timeout=1e-6)
    request = api.decode_request(request_json(scene[1], [{"box": [10, 10, 110, 90]}]))
    answer = api.predict(request)
    assert isinstance(answer, Refusal) and answer.status == 504
    assert api.encode_response(answer).status_code == 504


def engine_masks(config, image, prompts: list[dict]) -> list[torch.Tensor]:
    """What ``Segmenter.predict`` answers to each prompt object alone, on a fresh segmenter."""
    segmenter = build_segmenter(config)
    segmenter.set_image(image)
    return [segmenter.predict(prompt_from(p.get("box"), p.get("positive", ()), p.get("negative", ()))).mask
            for p in prompts]


def test_requests_on_one_image_in_a_batch_are_answered_together_and_a_failing_one_alone(tmp_path, scene,
                                                                                          monkeypatch):
    api = worker(tmp_path, max_batch_size=5)
    image, encoded = scene
    calls, predict_many = [], Segmenter.predict_many
    monkeypatch.setattr(Segmenter, "predict_many", lambda self, prompts, on_step=None: (
        calls.append(len(prompts)) or predict_many(self, prompts, on_step)))
    flipped = image.flip(-1)
    other = png_bytes((flipped.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8))
    box, clicks = {"box": [10, 10, 110, 90]}, {"positive": [[57, 48]], "negative": [[5, 5]]}
    lost = {"box": [3, 3, 4, 4]}  # inside the image, but no pixel of the 96-pixel frame: refused by AMCP, not the door
    bodies = [[box], [box], [clicks, lost], [clicks, box], [box]]
    requests = [api.decode_request(request_json(other if i == 1 else encoded, prompts))
                for i, prompts in enumerate(bodies)]
    requests[4].received -= api.settings.timeout + 1  # waited past its deadline: 504 at its first step
    answers = [api.encode_response(y) for y in api.unbatch(api.predict(api.batch(requests)))]

    # The image's 6 prompts go to one predict_many: the lost one is refused before anything is
    # painted, the other 4 go again; the request past its deadline stops them at the first step,
    # and the last 3 go again. Then the flipped image's prompt, alone.
    assert calls == [6, 4, 3, 1]
    assert answers[2].status_code == 422 and json.loads(answers[2].body)["detail"] == (
        "prompts[1]: the box prompt covers no pixel of the frame (image 96x128)")
    assert answers[4].status_code == 504 and "timeout=" in json.loads(answers[4].body)["detail"]
    expected = engine_masks(api.config, image, [box, clicks])
    assert [torch.equal(decoded(r)[0], e) for r, e in zip(answers[0]["results"] + answers[3]["results"],
                                                           [expected[0], expected[1], expected[0]])] == [True] * 3
    assert torch.equal(decoded(answers[1]["results"][0])[0], engine_masks(api.config, flipped, [box])[0])
    assert [a["image"]["reused"] for a in (answers[0], answers[1], answers[3])] == [False, False, True]


def test_concurrent_requests_on_one_image_get_the_engines_masks(server, scene):
    client, config = server
    image, encoded = scene
    bodies = [[{"box": [10, 10, 110, 90]}], [{"positive": [[57, 48]]}],
              [{"box": [20, 15, 100, 85]}, {"positive": [[57, 48]], "negative": [[5, 5]]}]]

    def post(prompts):
        return httpx.post(client.base_url.join("/predict"), json=request_json(encoded, prompts),
                          headers=client.headers, timeout=TIMEOUT)

    with ThreadPoolExecutor(len(bodies)) as pool:  # answered in one batch or several, as they arrive
        responses = list(pool.map(post, bodies))
    assert [r.status_code for r in responses] == [200] * 3, [r.text for r in responses]
    for response, prompts in zip(responses, bodies):
        expected = engine_masks(config, image, prompts)
        results = response.json()["results"]
        assert [torch.equal(decoded(r)[0], e) for r, e in zip(results, expected)] == [True] * len(prompts)


def test_bad_settings_or_a_config_without_weights_end_in_one_line(tmp_path):
    settings = tmp_path / "bad.yaml"
    settings.write_text("serve: {max_pending: 0, workers: 2}")
    with pytest.raises(SystemExit, match=r"unknown serve settings \['workers'\]"):
        paintseg(["serve", "--config", str(write_tiny_config(tmp_path)), "--settings", str(settings)])
    settings.write_text("serve: {max_pending: 0}")
    with pytest.raises(SystemExit, match=r"max_pending=0 \(allowed: a whole number >= 1\)"):
        paintseg(["serve", "--config", str(write_tiny_config(tmp_path)), "--settings", str(settings)])
    with pytest.raises(SystemExit, match=r"no_weights.yaml: painter: "):
        paintseg(["serve", "--config", str(write_config_without_weights(tmp_path))])


def test_the_serve_door_does_not_import_lightning():
    check = ("import sys; from paintseg_engine.commands import serve; "
             "print(sorted(m for m in sys.modules if m == 'lightning' or m.startswith('lightning.')))")
    printed = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, check=True).stdout
    assert printed.strip() == "[]"
