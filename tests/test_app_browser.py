"""The web app in a real browser: headless Chromium driven by selenium uploads a scene, places a
box by clicking two corners, segments, and gets the mask the engine gives for that box.

Needs the ``app`` extra (gradio, selenium) and Debian's ``chromium`` and ``chromium-driver``;
skips, saying which is missing, without them. The app runs in this process on 127.0.0.1 with a
tiny AMCP config. Set PAINTSEG_APP_SCREENSHOT=docs/app.png to keep the screenshot it takes.
"""
import io
import os
import re
import shutil
import socket
import urllib.request

import numpy as np
import pytest
import torch
from PIL import Image

from paintseg_engine import BoxPrompt, build_segmenter, load_image
from paintseg_engine.data.synthetic import generate_dataset
from paintseg_engine.imageio import load_mask
from paintseg_engine.metrics import mask_iou

from tests.tiny_config import write_tiny_config

pytest.importorskip("gradio", reason="the app extra is not installed: pip install -e '.[app]'")
webdriver = pytest.importorskip("selenium.webdriver", reason="the app extra is not installed: pip install -e '.[app]'")
from selenium.common.exceptions import WebDriverException  # noqa: E402
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

SCENE_HEIGHT, SCENE_WIDTH, SCENE_SEED = 240, 320, 1  # AMCP's cost is the frame's, not the image's
BOX_MARGIN = 6  # px around the object's ground-truth box
WINDOW = "1280,1320"
SCREENSHOT_COLOURS = 256  # a palette PNG: small enough to commit
WAIT_SECONDS = 60  # generous: the CI machine is small and shared
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
# Records every progress text the overlay's status tracker shows during a run.
WATCH_PROGRESS = """
window.progressSeen = [];
new MutationObserver(() => {
  const tracker = document.querySelector('#overlay [data-testid="status-tracker"]');
  if (tracker && tracker.innerText.trim()) window.progressSeen.push(tracker.innerText);
}).observe(document.body, {subtree: true, childList: true, characterData: true});
"""


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    root = generate_dataset(tmp_path_factory.mktemp("scene"), 1, SCENE_HEIGHT, SCENE_WIDTH, SCENE_SEED)
    return root / "images" / "scene_000.png", load_mask(root / "masks" / "scene_000.png") > 0


@pytest.fixture(scope="module")
def tiny_config(tmp_path_factory):
    return write_tiny_config(tmp_path_factory.mktemp("config"))


@pytest.fixture(scope="module")
def app_url(tiny_config, tmp_path_factory):
    from paintseg_engine.commands.app import build_app

    app = build_app([tiny_config], tmp_path_factory.mktemp("examples"))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    app.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, ssr_mode=False)
    yield f"http://127.0.0.1:{port}/"
    app.close()


@pytest.fixture(scope="module")
def browser():
    chromium = next(filter(None, map(shutil.which, CHROMIUM_NAMES)), None)
    chromedriver = shutil.which("chromedriver")
    if chromium is None or chromedriver is None:
        pytest.skip("no Chromium and chromedriver on PATH (Debian: apt-get install chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     f"--window-size={WINDOW}"):
        options.add_argument(argument)
    try:
        driver = webdriver.Chrome(service=webdriver.ChromeService(chromedriver), options=options)
    except WebDriverException as error:
        pytest.skip(f"Chromium did not start: {error.msg}")
    yield driver
    driver.quit()


def wait(driver):
    return WebDriverWait(driver, WAIT_SECONDS)


def open_app(driver, url: str) -> None:
    driver.get(url)
    wait(driver).until(lambda d: d.find_elements(By.CSS_SELECTOR, "input[type=file]"))


def upload(driver, path) -> None:
    driver.find_element(By.CSS_SELECTOR, "input[type=file]").send_keys(str(path))


def click_pixel(driver, x: int, y: int) -> None:
    """Click the shown image where its pixel (x, y) is. The picture sits centred in its element,
    scaled to fit (object-fit: contain) or, for scale-down, never enlarged."""
    image = driver.find_element(By.CSS_SELECTOR, "#canvas img")
    width, height, fit = driver.execute_script(
        "const i = arguments[0]; return [i.naturalWidth, i.naturalHeight, getComputedStyle(i).objectFit]", image)
    scale = min(image.size["width"] / width, image.size["height"] / height)
    scale = min(scale, 1.0) if fit == "scale-down" else scale
    dx, dy = (x + 0.5 - width / 2) * scale, (y + 0.5 - height / 2) * scale  # from the element's centre
    ActionChains(driver).move_to_element_with_offset(image, dx, dy).click().perform()


def place_box(driver, box) -> tuple[int, ...]:
    """Click the box's two corners on the image; the box the app says it placed."""
    x0, y0, x1, y1 = box
    wait(driver).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#canvas img"))
    click_pixel(driver, x0, y0)
    wait(driver).until(lambda d: "first corner" in d.find_element(By.ID, "prompt").text)
    click_pixel(driver, x1 - 1, y1 - 1)
    placed = wait(driver).until(lambda d: re.search(r"box \((\d+), (\d+), (\d+), (\d+)\)",
                                                     d.find_element(By.ID, "prompt").text))
    return tuple(int(v) for v in placed.groups())


def wait_for_mask(driver) -> torch.Tensor:
    """The mask the app offers for download once the run is done."""
    link = wait(driver).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#mask a[href]"))[0]
    wait(driver).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#overlay img"))
    with urllib.request.urlopen(link.get_attribute("href")) as response:
        return torch.from_numpy(np.asarray(Image.open(io.BytesIO(response.read()))) > 0)


def ground_truth_box(gt: torch.Tensor) -> tuple[int, int, int, int]:
    ys, xs = torch.nonzero(gt, as_tuple=True)
    return (max(0, xs.min().item() - BOX_MARGIN), max(0, ys.min().item() - BOX_MARGIN),
            min(SCENE_WIDTH, xs.max().item() + 1 + BOX_MARGIN), min(SCENE_HEIGHT, ys.max().item() + 1 + BOX_MARGIN))


def test_box_drawn_in_the_browser_gives_the_engines_mask(browser, app_url, scene, tiny_config, tmp_path):
    image_path, gt = scene
    open_app(browser, app_url)
    upload(browser, image_path)
    wanted = ground_truth_box(gt)
    box = place_box(browser, wanted)
    # The clicks land within a pixel of the corners asked for.
    assert max(abs(a - b) for a, b in zip(box, wanted)) <= 1

    browser.execute_script(WATCH_PROGRESS)
    browser.find_element(By.ID, "segment").click()
    app_mask = wait_for_mask(browser)
    assert browser.find_elements(By.CSS_SELECTOR, "#steps img")  # the strip of per-step masks
    assert re.search(r"3 steps: [\d.]+ s", browser.find_element(By.ID, "latency").text)
    assert any("O-step 2/3" in text for text in browser.execute_script("return window.progressSeen"))

    # The engine on its own, same config, same image, same box.
    segmenter = build_segmenter(tiny_config)
    segmenter.set_image(load_image(image_path))
    engine_mask = segmenter.predict(BoxPrompt(box)).mask
    assert mask_iou(app_mask, gt) == mask_iou(engine_mask, gt)
    assert torch.equal(app_mask, engine_mask)

    screenshot = Image.open(io.BytesIO(browser.get_screenshot_as_png())).convert("RGB").quantize(SCREENSHOT_COLOURS)
    screenshot.save(tmp_path / "app.png")
    if os.environ.get("PAINTSEG_APP_SCREENSHOT"):
        screenshot.save(os.environ["PAINTSEG_APP_SCREENSHOT"])


def test_requests_from_two_tabs_are_both_answered(browser, app_url, scene):
    """Two sessions segment at once: the queue runs one after the other, and the second finds
    the image already set in the shared segmenter."""
    image_path, gt = scene
    tabs = []
    for _ in range(2):
        browser.switch_to.new_window("tab")
        tabs.append(browser.current_window_handle)
        open_app(browser, app_url)
        upload(browser, image_path)
        place_box(browser, ground_truth_box(gt))
    for tab in tabs:
        browser.switch_to.window(tab)
        browser.find_element(By.ID, "segment").click()
    masks = []
    for tab in tabs:
        browser.switch_to.window(tab)
        masks.append(wait_for_mask(browser))
    assert torch.equal(masks[0], masks[1])
    assert "already set for this config" in browser.find_element(By.ID, "latency").text


def test_an_upload_that_is_not_an_image_gets_a_message(browser, app_url, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("not an image")
    open_app(browser, app_url)
    upload(browser, notes)
    message = wait(browser).until(lambda d: "cannot be read as an image" in d.page_source)
    assert message and "notes.txt" in browser.page_source


def test_an_example_picked_is_shown_to_click_on(browser, app_url):
    open_app(browser, app_url)
    browser.find_elements(By.CSS_SELECTOR, "#examples button.thumbnail-item")[0].click()
    shown = wait(browser).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#canvas img"))[0]
    assert int(shown.get_attribute("naturalWidth")) > 0
