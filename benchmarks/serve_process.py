"""``paintseg serve`` in a subprocess on a free loopback port: for the tests that talk HTTP to it and the load test."""
from __future__ import annotations

import base64
import contextlib
import io
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import yaml
from PIL import Image

STARTUP_SECONDS = 180  # the worker imports torch and builds its segmenter; a loaded 2-core machine is slow
REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running_server(folder: Path, config: Path, env: dict | None = None, **settings):
    """Yields (base URL, the server process); the server has ``settings`` over the defaults and
    is stopped (SIGTERM, then SIGKILL) when the block ends, unless the block stopped it."""
    settings_path = Path(folder) / "serve.yaml"
    settings_path.write_text(yaml.safe_dump({"serve": settings}))
    port = free_port()
    log = open(Path(folder) / "server.log", "w")
    process = subprocess.Popen([sys.executable, "-m", "paintseg_engine", "serve", "--config", str(config),
                                "--settings", str(settings_path), "--port", str(port), "--device", "cpu"],
                               cwd=REPO, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})},
                               start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(url, process, Path(folder) / "server.log")
        yield url, process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        log.close()


def wait_until_healthy(url: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"paintseg serve exited with {process.returncode}:\n{log.read_text()}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        time.sleep(0.5)
    raise RuntimeError(f"paintseg serve was not healthy after {STARTUP_SECONDS} s:\n{log.read_text()}")


def png_bytes(array: np.ndarray) -> bytes:
    """A uint8 [H, W] or [H, W, 3] array as PNG file bytes."""
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def request_json(image_bytes: bytes, prompts) -> dict:
    """A ``POST /predict`` JSON body: the image file's bytes in base64 and the prompts."""
    return {"image": base64.b64encode(image_bytes).decode(), "prompts": prompts}
