"""The web app's logic without a browser: prompts placed by clicks, one segmenter per config
that keeps its image, configs without weights listed apart; hostile input refused in a line, uploads
limited and removed at the end. (tests/test_app_browser.py drives it.)"""
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
import torch

pytest.importorskip("gradio", reason="the app extra is not installed: pip install -e '.[app]'")
from paintseg_engine.commands.app import BOX, NEGATIVE, POSITIVE, LoadedImage, PromptDraft, Sessions, build_app  # noqa: E402
from paintseg_engine.prompts import BoxClicksPrompt, BoxPrompt  # noqa: E402
from paintseg_engine.errors import ConfigError  # noqa: E402

from tests.scenes import disc_scene, png_header  # noqa: E402
from tests.tiny_config import write_config_without_weights, write_tiny_config  # noqa: E402



def test_two_corner_clicks_make_a_box_holding_both_corners():
    draft = PromptDraft()
    draft.add(BOX, 40, 30)
    assert draft.prompt() is None and "first corner (40, 30)" in draft.describe()
    draft.add(BOX, 10, 50)
    assert draft.prompt() == BoxPrompt((10, 30, 41, 51))
    draft.add(POSITIVE, 20, 40)
    draft.add(NEGATIVE, 5, 5)
    assert draft.prompt() == BoxClicksPrompt((10, 30, 41, 51), [(20, 40)], [(5, 5)])


def test_only_negative_clicks_are_no_prompt_yet():
    draft = PromptDraft()
    draft.add(NEGATIVE, 5, 5)
    assert draft.prompt() is None and "place a box or a positive click" in draft.describe()


def test_the_next_clicks_carry_the_last_answer_to_correct(tmp_path):
    app = build_app([write_tiny_config(tmp_path, points_start="clicks", points_previous=True)], tmp_path / "examples")
    segment = next(f.fn for f in app.fns.values() if getattr(f.fn, "__name__", "") == "segment")
    image, gt = disc_scene()
    draft = PromptDraft()
    draft.add(POSITIVE, 64, 48)
    assert draft.prompt().previous is None  # a first click corrects nothing
    draft = segment(LoadedImage("disc.png", image, key="disc"), draft, str(tmp_path / "tiny.yaml"))[0]
    assert draft.answer.shape == gt.shape and draft.answer.any()
    draft.add(NEGATIVE, 2, 2)
    assert draft.prompt().previous is draft.answer


def test_a_segmenter_per_config_sets_each_image_once(tmp_path):
    config = write_tiny_config(tmp_path, iterations=1)
    sessions = Sessions("cpu")
    image = LoadedImage("disc.png", disc_scene()[0], key="disc")
    first, set_seconds = sessions.segmenter(str(config), image)
    again, set_again = sessions.segmenter(str(config), image)
    assert again is first and set_seconds is not None and set_again is None
    other = LoadedImage("other.png", torch.flip(disc_scene()[0], dims=[-1]), key="other")
    assert sessions.segmenter(str(config), other)[1] is not None


def test_configs_without_weights_are_listed_apart_and_none_usable_is_refused(tmp_path):
    no_weights = write_config_without_weights(tmp_path)
    usable = write_tiny_config(tmp_path)
    app = build_app([usable, no_weights], tmp_path / "examples")
    radios = {block.elem_id: block for block in app.blocks.values() if getattr(block, "elem_id", None)}
    assert [value for _, value in radios["config"].choices] == [str(usable)]
    assert radios["unavailable"].interactive is False and "no folder" in radios["unavailable"].info
    with pytest.raises(ConfigError, match="no config can run here"):
        build_app([no_weights], tmp_path / "examples")


def test_a_too_large_image_or_a_bomb_is_refused_in_one_line_naming_it(tmp_path, capsys):
    import gradio as gr

    from paintseg_engine.commands.app import open_image

    for path, limit, message in ((png_header(tmp_path / "large.png", 3000, 2000), 1_000_000, "more than the limit "
                                  "of 1,000,000"), (png_header(tmp_path / "bomb.png", 20000, 20000), None, "pixels")):
        with pytest.raises(gr.Error) as refused:
            open_image(str(path), *([limit] if limit else []))
        assert path.name in refused.value.message and message in refused.value.message
        assert str(tmp_path) not in refused.value.message and refused.value.print_exception is False
    assert len(capsys.readouterr().err.strip().splitlines()) == 2  # a line each in the server's log


def test_a_user_mistake_is_one_line_in_the_log_without_a_traceback(tmp_path, capsys):
    import gradio as gr

    app = build_app([write_tiny_config(tmp_path)], tmp_path / "examples")
    segment = next(f.fn for f in app.fns.values() if getattr(f.fn, "__name__", "") == "segment")
    with pytest.raises(gr.Error) as refused:
        segment(None, PromptDraft(), str(tmp_path / "tiny.yaml"))
    assert refused.value.print_exception is False  # Gradio prints the traceback otherwise
    assert capsys.readouterr().err.strip().splitlines() == ["paintseg app: Cannot do that: Upload an image or pick "
                                                             "an example first"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def upload(port: int, size: int) -> int:
    """POSTs a file of ``size`` bytes to the app's upload route; the HTTP status."""
    boundary = "paintsegtest"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"x.png\"\r\n"
            f"Content-Type: image/png\r\n\r\n").encode() + b"\0" * size + f"\r\n--{boundary}--\r\n".encode()
    request = urllib.request.Request(f"http://127.0.0.1:{port}/gradio_api/upload", data=body, method="POST",
                                     headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.status
    except urllib.error.HTTPError as error:
        return error.code


def test_the_app_limits_uploads_keeps_no_temp_files_and_hints_no_public_link(tmp_path):
    port, temp = free_port(), tmp_path / "tmp"
    temp.mkdir()
    app = subprocess.Popen([sys.executable, "-m", "paintseg_engine", "app", "--config", str(write_tiny_config(tmp_path)),
                            "--examples", str(tmp_path / "examples"), "--port", str(port), "--max-upload-mb", "1"],
                           env={**os.environ, "TMPDIR": str(temp)}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True)
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and app.poll() is None:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5)
                break
            except OSError:
                time.sleep(0.5)
        assert upload(port, 2 * 2**20) == 413  # over --max-upload-mb
        assert upload(port, 1000) == 200
        assert any(p.is_file() for p in temp.rglob("*"))  # the upload, while the app runs
    finally:
        app.send_signal(signal.SIGTERM)
        printed = app.communicate(timeout=60)[0]
    assert not [p for p in temp.rglob("*") if p.is_file()], printed  # nothing left once it ended
    assert "share=True" not in printed and "public link" not in printed
