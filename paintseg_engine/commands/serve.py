"""``paintseg serve``: the segmenter as an HTTP service, on LitServe (``pip install "paintseg-engine[serve]"``).

    paintseg serve --config configs/default.yaml            # http://127.0.0.1:8000
    curl -s http://127.0.0.1:8000/predict -F image=@photo.jpg -F 'prompts=[{"box": [40, 30, 200, 180]}]'

POST /predict an image and prompts: per prompt a mask (PNG and COCO RLE) and the time of each
AMCP step come back. GET /health answers 200 once the workers are up. The schema, the refusals
and the settings (--settings, default configs/serve.yaml): docs/serve.md.
"""
from __future__ import annotations

import argparse
import multiprocessing
import os
import signal
import sys
import time
from pathlib import Path

import litserve as ls
from fastapi.responses import JSONResponse

from ..build import build_segmenter, check_device, missing_weights
from ..errors import ConfigError, PromptError, SettingsError
from ..serving.gate import Gate
from ..serving.requests import Refusal, SegmentRequest, content_key, decode_image, parse_prompts, read_fields
from ..serving.responses import PromptAnswer, SegmentAnswer
from ..serving.sessions import ImageSessions
from ..serving.settings import ServeSettings
from ..threads import use_threads
from .arguments import CONFIGS, DEFAULT_CONFIG, default_device

API_PATH, HEALTH_PATH = "/predict", "/health"
DEFAULT_SETTINGS = CONFIGS / "serve.yaml"
DEFAULT_PORT = 8000
HOSTS = ("127.0.0.1", "0.0.0.0", "::")  # what LitServe can bind; loopback unless told otherwise
UNPRIVILEGED_PORTS = (1024, 65535)


class RequestTimeout(Exception):
    """A segmentation still running at its request's deadline."""


class SegmentAPI(ls.LitAPI):
    """A worker: its segmenter, the image set-ups it keeps, and the four steps of a request.

    A bad request is not raised but carried through as a ``Refusal`` and answered as such: raised in
    a batch, it would fail the batch's other requests with it."""

    def __init__(self, config: str | Path, settings: ServeSettings):
        super().__init__(max_batch_size=settings.max_batch_size, batch_timeout=settings.batch_timeout,
                         api_path=API_PATH)
        self.config, self.settings = str(config), settings

    def setup(self, device: str) -> None:
        segmenter = build_segmenter(self.config, device=device)
        # The thread policy (threads.py), a network's cores shared among the device's workers.
        use_threads("auto", *segmenter.components().values(), processes=self.settings.workers_per_device)
        self.sessions = ImageSessions(segmenter, self.settings.image_cache_size, device)

    def decode_request(self, request) -> SegmentRequest | Refusal:
        settings = self.settings
        try:
            data, prompts = read_fields(request)
            key = content_key(data)
            session = self.sessions.get(key)
            image = None if session else decode_image(data, settings.max_pixels)
            size = session.size if session else tuple(image.shape[-2:])
            return SegmentRequest(key, size, session, image,
                                  parse_prompts(prompts, size, settings.max_prompts, settings.max_pixels))
        except Refusal as refusal:
            return refusal

    def predict(self, x):
        # Batched (max_batch_size > 1), x is the batch's requests: the prompts of each image, from
        # one request or several, are answered together; images one after the other.
        return self.segment(x) if self.max_batch_size > 1 else self.segment([x])[0]

    def segment(self, requests: list[SegmentRequest | Refusal]) -> list[SegmentAnswer | Refusal]:
        """One answer per request, in order: a refusal as it is, the others by image."""
        answers = {i: r for i, r in enumerate(requests) if isinstance(r, Refusal)}
        by_image: dict[str, list[int]] = {}
        for i, request in enumerate(requests):
            if i not in answers:
                by_image.setdefault(request.key, []).append(i)
        for members in by_image.values():
            answers.update(zip(members, self.segment_image([requests[i] for i in members])))
        return [answers[i] for i in range(len(requests))]

    def segment_image(self, requests: list[SegmentRequest]) -> list[SegmentAnswer | Refusal]:
        """Answers to requests on one image: the image set up once, all their prompts answered in
        lockstep by one ``predict_many``. A request that fails (a prompt the segmenter refuses,
        its deadline passed) is answered alone, and the others are answered again without it."""
        first = requests[0]
        session, set_image_seconds = first.session or self.sessions.get(first.key), None
        if session is None:
            session, set_image_seconds = self.sessions.open(first.key, first.image)
        timeout = self.settings.timeout
        answers: dict[int, SegmentAnswer | Refusal] = {}
        while len(answers) < len(requests):
            pending = [i for i in range(len(requests)) if i not in answers]
            owners = [(i, n) for i in pending for n in range(len(requests[i].prompts))]  # (request, its prompt)

            def check_deadline(index: int, step) -> None:
                if time.monotonic() > requests[owners[index][0]].received + timeout:
                    raise RequestTimeout

            start = time.perf_counter()
            try:
                results = session.segmenter.predict_many([requests[i].prompts[n] for i, n in owners], check_deadline)
            except PromptError as error:  # e.g. a prompt that covers no pixel of the frame
                i, n = owners[0 if error.index is None else error.index]
                answers[i] = Refusal(422, f"prompts[{n}]: {error.reason}")
                continue
            except RequestTimeout:
                now = time.monotonic()
                answers.update({i: Refusal(504, f"the segmentation took longer than timeout={timeout} s")
                                for i in pending if now > requests[i].received + timeout})
                continue
            seconds = time.perf_counter() - start
            for i in pending:  # each prompt's seconds: the predict_many that answered it, shared
                mine = [PromptAnswer(r.mask.cpu(), r.steps, seconds)
                        for (owner, _), r in zip(owners, results) if owner == i]
                answers[i] = SegmentAnswer(first.key, first.size, set_image_seconds if i == 0 else None, mine)
        return [answers[i] for i in range(len(requests))]

    def encode_response(self, output: SegmentAnswer | Refusal):
        if isinstance(output, Refusal):
            return JSONResponse({"detail": output.detail}, status_code=output.status)
        return output.to_json()


def build_server(config: str | Path, settings: ServeSettings, device: str) -> ls.LitServer:
    api_key = os.environ.get(settings.api_key_env) or None
    gate = {"api_path": API_PATH, "health_path": HEALTH_PATH, "max_pending": settings.max_pending,
            "max_body_bytes": settings.max_body_bytes, "api_key": api_key}
    server = ls.LitServer(SegmentAPI(config, settings), accelerator="cuda" if device.startswith("cuda") else "cpu",
                          workers_per_device=settings.workers_per_device, timeout=settings.timeout,
                          healthcheck_path=HEALTH_PATH, middlewares=[(Gate, gate)])
    server.uvicorn_graceful_timeout = settings.drain_seconds  # how long SIGTERM waits for requests in flight
    return server


def drain_on_sigterm(server: ls.LitServer, seconds: float) -> None:
    """On SIGTERM, stop taking requests and answer those in flight, then stop the workers.

    LitServe's own shutdown closes the queue between the HTTP server and the workers first, losing
    the requests in flight; uvicorn's SIGTERM handling stops listening and waits for them."""
    def drain(signum, frame) -> None:
        http_servers = [p for p in multiprocessing.active_children() if p.name.startswith("LitServer-")]
        for process in http_servers:
            process.terminate()
        for process in http_servers:
            process.join(seconds + 1)
        server._shutdown_event.set()  # what LitServe's own /shutdown endpoint sets: the rest stops
    signal.signal(signal.SIGTERM, drain)


def port_number(text: str) -> int:
    low, high = UNPRIVILEGED_PORTS
    if not text.isdigit() or not low <= int(text) <= high:
        raise argparse.ArgumentTypeError(f"--port must be a number from {low} to {high}, got {text!r}")
    return int(text)


def main(args: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="paintseg serve", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG,
                        help="the segmenter: a config's model section (default: %(default)s)")
    parser.add_argument("--settings", type=Path, default=DEFAULT_SETTINGS,
                        help="the server's settings: a serve: section (default: %(default)s)")
    parser.add_argument("--host", default=HOSTS[0], choices=HOSTS, help="address to serve on (default: %(default)s)")
    parser.add_argument("--port", type=port_number, default=DEFAULT_PORT, help="port (default: %(default)s)")
    parser.add_argument("--device", default=default_device(), help="cpu or cuda (default: %(default)s)")
    options = parser.parse_args(args)
    try:
        settings = ServeSettings.from_file(options.settings)
        missing = missing_weights(options.config)  # files only: the workers build the segmenter
        if missing:
            raise ConfigError(f"config {options.config}: " + "; ".join(missing))
        server = build_server(options.config, settings, check_device(options.device))
    except (ConfigError, SettingsError) as error:
        sys.exit(f"paintseg serve: error: {error}")
    drain_on_sigterm(server, settings.drain_seconds)
    print(f"paintseg serve: {options.config} on http://{options.host}:{options.port}{API_PATH} "
          f"({settings.workers_per_device} worker(s) per device; GET {HEALTH_PATH} answers 200 once they are up)",
          flush=True)
    server.run(host=options.host, port=options.port, num_api_servers=1, generate_client_file=False,
               log_level="warning")


if __name__ == "__main__":
    main()
