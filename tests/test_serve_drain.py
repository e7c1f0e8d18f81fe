"""``paintseg serve`` under load: past max_pending it answers 503 at once, and SIGTERM lets the
requests in flight finish (none lost) before the server stops. Its own server: this module ends it."""
import signal
import threading
import time

import httpx
import numpy as np
import pytest

pytest.importorskip("litserve", reason="paintseg serve needs the serve extra: pip install -e '.[serve]'")

from benchmarks.serve_process import png_bytes, request_json, running_server  # noqa: E402
from tests.scenes import disc_scene  # noqa: E402
from tests.tiny_config import write_tiny_config  # noqa: E402

MAX_PENDING = 2
EXTRA = 3  # sent at the same moment as the first MAX_PENDING: some find the server full
PROMPTS_PER_REQUEST = 2  # one worker segments the accepted requests in turn: some still in flight at SIGTERM
EXIT_SECONDS = 300  # drain_seconds too: a loaded 2-core machine is slow, and the drain must not cut


def post_all(url: str, bodies: list[dict]) -> tuple[list[threading.Thread], list]:
    """Each body posted from its own thread: (the threads, the list their responses or exceptions fill in order)."""
    results = [None] * len(bodies)

    def post(i: int) -> None:
        try:
            results[i] = httpx.post(f"{url}/predict", json=bodies[i], timeout=EXIT_SECONDS)
        except httpx.HTTPError as error:
            results[i] = error
    threads = [threading.Thread(target=post, args=(i,)) for i in range(len(bodies))]
    for thread in threads:
        thread.start()
    return threads, results


def test_past_max_pending_503_and_sigterm_drains_the_requests_in_flight(tmp_path):
    image, _ = disc_scene()
    encoded = png_bytes((image.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8))
    body = request_json(encoded, [{"box": [10 + i, 10, 110, 90]} for i in range(PROMPTS_PER_REQUEST)])
    with running_server(tmp_path, write_tiny_config(tmp_path), max_pending=MAX_PENDING,
                        drain_seconds=EXIT_SECONDS) as (url, process):
        threads, answers = post_all(url, [body] * (MAX_PENDING + EXTRA))
        # The 503s come back at once, while the accepted requests are segmented: once EXTRA are
        # back, every request has reached the server, and MAX_PENDING are in flight.
        deadline = time.monotonic() + EXIT_SECONDS
        while (sum(getattr(a, "status_code", None) == 503 for a in answers) < EXTRA and not all(answers)
               and time.monotonic() < deadline):
            time.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        for thread in threads:
            thread.join(EXIT_SECONDS)
        assert process.wait(EXIT_SECONDS) == 0
    statuses = [getattr(a, "status_code", a) for a in answers]
    assert statuses.count(503) >= 1 and statuses.count(200) >= MAX_PENDING, statuses
    assert set(statuses) == {200, 503}, statuses  # none lost: every request has its answer
    assert all(len(a.json()["results"]) == PROMPTS_PER_REQUEST for a in answers if a.status_code == 200)
    assert "pending requests" in next(a for a in answers if a.status_code == 503).json()["detail"]
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/health", timeout=5)
