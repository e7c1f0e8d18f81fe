"""A bounded load test of ``paintseg serve`` on loopback: the weight-free default behind LitServe,
clients at concurrency 1, 4 and 16 sending a mix of good requests (a box or a click on generated
scenes) and bad ones (malformed JSON, a box outside the image, bytes that are not an image, too
many pixels). Per level: requests/s, latency percentiles of the good requests, answers by status,
responses lost (must be 0), the server's peak memory, and whether every good request's mask equals
``Segmenter.predict`` run here on the same prompt (it must).

    python -m benchmarks.serve_load                     # -> benchmarks/results/<date>-cpu-serve/
    python -m benchmarks.serve_load --requests 16 --time-limit 60 --concurrency 1 4 --out /tmp/serve-load

Each level sends at most --requests requests and starts none after --time-limit seconds (those
are reported as not sent); the server is started once, with --workers inference workers.
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import io
import json
import os
import platform
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import date
from pathlib import Path

import httpx
import numpy as np
import psutil
import torch
from PIL import Image

from paintseg_engine.clicks import interior_point
from paintseg_engine.build import build_segmenter
from paintseg_engine.data.synthetic import make_scene
from paintseg_engine.limits import DEFAULT_MAX_PIXELS
from paintseg_engine.prompts import box_of, prompt_from

from .cases import REPO
from .serve_process import png_bytes, request_json, running_server

CONCURRENCY = (1, 4, 16)
REQUESTS = 32  # per level
TIME_LIMIT = 180.0  # s per level: no request is started after it
BAD_EVERY = 4  # every 4th request is a bad one
SCENES, SCENE_SIZE = 4, (240, 320)  # (H, W), the generated dataset's size
TOO_MANY_PIXELS_SIDE = int(DEFAULT_MAX_PIXELS**0.5) + 1  # a black square just over the default max_pixels
MEMORY_SAMPLE_SECONDS = 0.25
CLIENT_TIMEOUT = 600.0  # s: longer than any answer the server may give (its timeout is 60 s twice)
# The server's bounds answering (queue full, timeout): load shed, not a wrong answer; counted by status.
SHED = (503, 504)
EXPECTED_BAD = {"malformed JSON": 400, "box outside the image": 422, "non-image bytes": 415, "too many pixels": 413}


def body(image_png: bytes, prompt: dict) -> bytes:
    return json.dumps(request_json(image_png, [prompt])).encode()


def good_requests(config: Path) -> tuple[list[dict], list[float]]:
    """A box and a click per generated scene, each with the mask ``Segmenter.predict`` gives here;
    and the seconds each of those predictions took."""
    segmenter = build_segmenter(config, device="cpu")
    torch.set_num_threads(1)  # as each of the server's workers, when there are as many as cores
    rng, cases, seconds = np.random.default_rng(0), [], []
    for _ in range(SCENES):
        pixels, gt = make_scene(rng, *SCENE_SIZE)
        segmenter.set_image(torch.from_numpy(pixels).permute(2, 0, 1).float() / 255)
        encoded = png_bytes(pixels)
        for spec in ({"box": list(box_of(torch.from_numpy(gt)))}, {"positive": [list(interior_point(gt))]}):
            start = time.perf_counter()
            expected = segmenter.predict(prompt_from(spec.get("box"), spec.get("positive", ()))).mask.numpy()
            seconds.append(time.perf_counter() - start)
            cases.append({"kind": "box" if "box" in spec else "click", "body": body(encoded, spec), "mask": expected})
    return cases, seconds


def bad_requests() -> list[dict]:
    pixels, _ = make_scene(np.random.default_rng(1), *SCENE_SIZE)
    box = {"box": [0, 0, SCENE_SIZE[1] * 2, SCENE_SIZE[0]]}
    bodies = {"malformed JSON": b'{"image": "iVBOR', "box outside the image": body(png_bytes(pixels), box),
              "non-image bytes": body(b"GIF89a but not really an image", box),
              "too many pixels": body(png_bytes(np.zeros((TOO_MANY_PIXELS_SIDE,) * 2, np.uint8)), box)}
    return [{"kind": kind, "body": data, "status": EXPECTED_BAD[kind]} for kind, data in bodies.items()]


class MemorySampler:
    """The resident memory of a process and its children, sampled in a thread: the peak and the last."""

    def __init__(self, pid: int):
        self.process, self.peak, self.last = psutil.Process(pid), 0, 0
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def rss(self) -> int:
        total = 0
        for process in [self.process, *self.process.children(recursive=True)]:
            try:
                total += process.memory_info().rss
            except psutil.Error:  # a child that ended between listing and reading
                pass
        return total

    def run(self) -> None:
        while not self.stopped.wait(MEMORY_SAMPLE_SECONDS):
            self.last = self.rss()
            self.peak = max(self.peak, self.last)

    def __enter__(self):
        self.peak = self.last = self.rss()
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stopped.set()
        self.thread.join()


async def run_level(url: str, concurrency: int, requests: list[dict], time_limit: float) -> list[dict]:
    """Send ``requests`` from ``concurrency`` clients; one outcome per request, in order."""
    outcomes: list[dict | None] = [None] * len(requests)
    start = time.monotonic()
    next_index = iter(range(len(requests)))

    async def client(http: httpx.AsyncClient) -> None:
        for i in next_index:
            if time.monotonic() - start > time_limit:
                outcomes[i] = {"status": "not sent"}
                continue
            sent = time.monotonic()
            try:
                response = await http.post("/predict", content=requests[i]["body"],
                                           headers={"content-type": "application/json"})
            except httpx.HTTPError as error:
                outcomes[i] = {"status": "lost", "error": f"{type(error).__name__}: {error}"}
                continue
            outcomes[i] = {"status": response.status_code, "seconds": time.monotonic() - sent,
                           "json": response.json() if response.status_code == 200 else None}

    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=CLIENT_TIMEOUT, limits=limits) as http:
        await asyncio.gather(*(client(http) for _ in range(concurrency)))
    return outcomes


def mask_of(answer: dict) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(answer["results"][0]["mask_png"])))) > 0


def summarize(concurrency: int, requests: list[dict], outcomes: list[dict], wall: float, memory: MemorySampler,
              rss_before: int) -> dict:
    done = [o for o in outcomes if o["status"] not in ("not sent", "lost")]
    good = [(r, o) for r, o in zip(requests, outcomes) if "mask" in r and o["status"] == 200]
    latencies = [o["seconds"] for r, o in zip(requests, outcomes) if "mask" in r and "seconds" in o]
    wrong_status = sum(1 for r, o in zip(requests, outcomes) if o["status"] not in ("not sent", "lost", *SHED)
                       and o["status"] != r.get("status", 200))
    mib = 2**20
    return {
        "concurrency": concurrency, "requests": len(requests),
        "good_requests": sum("mask" in r for r in requests), "bad_requests": sum("mask" not in r for r in requests),
        "answered": len(done), "not_sent": sum(o["status"] == "not sent" for o in outcomes),
        "lost": sum(o["status"] == "lost" for o in outcomes),
        "lost_errors": sorted({o["error"] for o in outcomes if o["status"] == "lost"}),
        "by_status": dict(sorted(Counter(str(o["status"]) for o in done).items())),
        "unexpected_status": wrong_status,
        "mask_mismatches": sum(not np.array_equal(mask_of(o["json"]), r["mask"]) for r, o in good),
        "masks_checked": len(good),
        "wall_seconds": wall, "requests_per_second": len(done) / wall if wall else None,
        "good_latency_seconds": {f"p{q}": float(np.percentile(latencies, q)) for q in (50, 95, 99)} if latencies else {},
        "server_rss_mib": {"before": rss_before / mib, "peak": memory.peak / mib, "after": memory.last / mib},
        "load_average_after": os.getloadavg(),
    }


def level_requests(goods: list[dict], bads: list[dict], count: int) -> list[dict]:
    """``count`` requests, every BAD_EVERY-th a bad one, both kinds taken in turn."""
    good_turn, bad_turn, requests = iter(range(count)), iter(range(count)), []
    for i in range(count):
        if (i + 1) % BAD_EVERY == 0:
            requests.append(bads[next(bad_turn) % len(bads)])
        else:
            requests.append(goods[next(good_turn) % len(goods)])
    return requests


def write_results(results: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2))
    rows = ["| concurrency | sent (good / bad) | answered | not sent | lost | req/s | good p50 / p95 / p99 (s) | "
            "answers by status | wrong status | masks equal to Segmenter.predict | server RSS before / peak / "
            "after (MiB) | load after |", "|" + "---|" * 12]
    for level in results["levels"]:
        lat = level["good_latency_seconds"]
        rss = level["server_rss_mib"]
        rows.append(
            f"| {level['concurrency']} | {level['requests'] - level['not_sent']} ({level['good_requests']} / "
            f"{level['bad_requests']} planned) | {level['answered']} | {level['not_sent']} | {level['lost']} | "
            f"{level['requests_per_second']:.2f} | {lat.get('p50', float('nan')):.2f} / "
            f"{lat.get('p95', float('nan')):.2f} / {lat.get('p99', float('nan')):.2f} | "
            + ", ".join(f"{k}: {v}" for k, v in level["by_status"].items())
            + f" | {level['unexpected_status']} | {level['masks_checked'] - level['mask_mismatches']} of "
            f"{level['masks_checked']} | {rss['before']:.0f} / {rss['peak']:.0f} / {rss['after']:.0f} | "
            f"{level['load_average_after'][0]:.1f} |")
    single = results["reference_seconds_per_prompt"]
    text = [f"# paintseg serve: bounded loopback load test, {results['date']}", "",
            f"`{results['command']}`", "",
            f"Machine: {results['machine']}; load average at the start {results['load_average_start'][0]:.1f} "
            f"(1 min), {results['load_average_start'][1]:.1f} (5 min). Server: `{results['config']}`, "
            f"{results['workers']} inference worker(s), the other settings of configs/serve.yaml. Requests: "
            f"{SCENES} generated {SCENE_SIZE[1]}x{SCENE_SIZE[0]} scenes, a box and a click on each; every "
            f"{BAD_EVERY}th request a bad one ({', '.join(f'{k} -> {v}' for k, v in EXPECTED_BAD.items())}). "
            f"The same prompts through `Segmenter.predict` in the client process (one thread), before the load: "
            f"{single:.2f} s per prompt (median).", "", *rows, "",
            "*lost*: a request sent that got no HTTP answer. *wrong status*: a good request not answered 200, "
            "or a bad one not answered its 4xx, apart from the server's bounds (503 queue full, 504 past the "
            "timeout), which are counted by status. Latency percentiles are over the good requests answered "
            "(200 or 503/504).", ""]
    (out / "results.md").write_text("\n".join(text))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.serve_load", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, default=REPO / "configs/default.yaml", help="the served segmenter")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="inference workers (default: cores)")
    parser.add_argument("--requests", type=int, default=REQUESTS, help="requests per level (default: %(default)s)")
    parser.add_argument("--time-limit", type=float, default=TIME_LIMIT,
                        help="seconds per level after which no request is started (default: %(default)s)")
    parser.add_argument("--concurrency", type=int, nargs="+", default=list(CONCURRENCY))
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks/results" / f"{date.today()}-cpu-serve")
    args = parser.parse_args(argv)

    load_start = os.getloadavg()
    goods, reference_seconds = good_requests(args.config)
    bads = bad_requests()
    results = {"date": str(date.today()), "command": " ".join(["python -m benchmarks.serve_load", *(argv or sys.argv[1:])]),
               "machine": f"{platform.machine()}, {os.cpu_count()} cores, no GPU",
               "config": str(args.config.relative_to(REPO) if args.config.is_relative_to(REPO) else args.config),
               "workers": args.workers, "load_average_start": load_start,
               "reference_seconds_per_prompt": float(np.median(reference_seconds)), "levels": []}
    with tempfile.TemporaryDirectory() as folder, \
            running_server(Path(folder), args.config, workers_per_device=args.workers) as (url, process):
        for concurrency in args.concurrency:
            requests = level_requests(goods, bads, args.requests)
            with MemorySampler(process.pid) as memory:
                rss_before, start = memory.peak, time.perf_counter()
                outcomes = asyncio.run(run_level(url, concurrency, requests, args.time_limit))
                wall = time.perf_counter() - start
            level = summarize(concurrency, requests, outcomes, wall, memory, rss_before)
            results["levels"].append(level)
            write_results(results, args.out)  # after every level: a run stopped from outside keeps what it did
            print(f"concurrency {concurrency}: {level['answered']} answered in {wall:.1f} s "
                  f"({level['requests_per_second']:.2f} req/s), by status {level['by_status']}, lost {level['lost']}, "
                  f"masks equal {level['masks_checked'] - level['mask_mismatches']}/{level['masks_checked']}, "
                  f"peak RSS {level['server_rss_mib']['peak']:.0f} MiB, load {os.getloadavg()[0]:.1f}", flush=True)
    print(f"wrote {args.out}/results.json, results.md")
    failed = [level["concurrency"] for level in results["levels"]
              if level["lost"] or level["mask_mismatches"] or level["unexpected_status"]]
    if failed:
        print(f"lost responses, wrong masks or wrong statuses at concurrency {failed}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
