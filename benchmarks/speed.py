"""CPU speed of the shipped commands, measured in one run: a results page for a quiet machine.

    python -m benchmarks.speed --out benchmarks/results/<date>-cpu-speed
    python -m benchmarks.speed --out /tmp/speed --max-images 10 --steps quick_start shared   # a quick look

Each measurement runs the command a user would type, in a subprocess, and notes the load average
(1 min) before and after it beside its numbers:

1. The Quick start's main job (`paintseg predict --config configs/default.yaml`) with no
   environment variable, against every manual thread count (`--model.threads N`, N = 1..cores).
2. AMCP (configs/default.yaml) against the seeded GrabCut baseline (configs/grabcut_baseline.yaml)
   on the shared datasets (configs/datasets/shared.yaml): s/image and mIoU from the results table.
3. Images per second of the main job with 1 and with 2 CPU processes (`--trainer.devices 2
   --trainer.strategy ddp_fork`), on a generated set large enough for the processes to matter.
4. The test suite's wall time (the README's command).

Every run writes into a fresh folder under ``--work`` (default: a temporary folder).
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from paintseg_engine.data.synthetic import generate_dataset
from paintseg_engine.threads import usable_cores

PREDICT = [sys.executable, "-m", "paintseg_engine", "predict"]
SHARED = ["--config", "configs/datasets/shared.yaml", "--data.prompt", "box", "--compare_with", "[]"]
STEPS = ("quick_start", "processes", "shared", "suite")
# docs/scaling.md's recipe: the other ranks forked from the first, not new interpreters that import
# Lightning again (measured there).
CPU_STRATEGY = "ddp_fork"
SCALING_IMAGES = 240  # generated scenes for the 1 vs 2 processes run: a minute of work, next to a start-up of seconds


def load() -> float:
    return round(os.getloadavg()[0], 2)


def timed(command: list[str], env: dict | None = None) -> dict:
    """Run ``command``; its wall seconds and the load before and after. A failed command stops the benchmark."""
    before, start = load(), time.perf_counter()
    done = subprocess.run(command, env={**os.environ, **(env or {})}, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"benchmarks.speed: {' '.join(command)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return {"command": " ".join(command), "env": env or {}, "wall_seconds": round(seconds, 2),
            "load_before": before, "load_after": load(), "output_tail": done.stdout[-400:]}


def table_rows(run_dir: Path) -> list[dict]:
    with open(run_dir / "results.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def predict(run_dir: Path, *args: str, env: dict | None = None) -> dict:
    result = timed(PREDICT + [*args, "--output_dir", str(run_dir), "--overwrite", "true"], env)
    return {**result, "rows": table_rows(run_dir)}


def time_split(run_dir: Path) -> dict[str, dict]:
    """Per dataset, mean seconds per image of the whole item and of AMCP's parts (from the records):
    painting, features, the mask updates without the refinement, and the refinement."""
    split = {}
    for dataset in sorted(p for p in run_dir.iterdir() if (p / "records").is_dir()):
        records = [json.loads(path.read_text()) for path in (dataset / "records").glob("*.json")]
        parts = {"item": [r["seconds"] for r in records]}
        for part in ("paint", "features", "refine"):
            parts[part] = [sum(t.get(part, 0.0) for t in r["timings"]) for r in records]
        parts["update"] = [sum(t["update"] - t.get("refine", 0.0) for t in r["timings"]) for r in records]
        split[dataset.name] = {part: round(sum(v) / max(1, len(v)), 3) for part, v in parts.items()}
    return split


def quick_start(work: Path) -> dict:
    default = predict(work / "quick-auto", "--config", "configs/default.yaml")
    manual = {n: predict(work / f"quick-{n}", "--config", "configs/default.yaml", "--model.threads", str(n))
              for n in range(1, usable_cores() + 1)}
    return {"default": default, "manual": manual}


def shared_sets(work: Path, max_images: int | None) -> dict:
    cap = ["--data.max_images", str(max_images)] if max_images else []
    runs = {method: predict(work / method, "--config", config, *SHARED, *cap)
            for method, config in (("amcp", "configs/default.yaml"), ("grabcut", "configs/grabcut_baseline.yaml"))}
    runs["amcp"]["split"] = time_split(work / "amcp")
    return runs


def steady_rate(run_dir: Path) -> float:
    """Images per second between the first and the last record written (every rank's): the
    throughput once the processes are up, without the start-up that the wall time includes."""
    written = sorted(path.stat().st_mtime for path in run_dir.glob("*/records/*.json"))
    return round((len(written) - 1) / (written[-1] - written[0]), 3)


def processes(work: Path) -> dict:
    data = ["--config", "configs/default.yaml", "--data.datasets",
            json.dumps([{"name": "generated", "root": str(work / "scaling-data"), "kind": "synthetic",
                         "num_images": SCALING_IMAGES, "seed": 0}])]
    generate_dataset(work / "scaling-data", num_images=SCALING_IMAGES, seed=0)  # written before the clocks start
    runs = {}
    for count in (1, 2):
        strategy = ["--trainer.strategy", CPU_STRATEGY] if count > 1 else []
        run_dir = work / f"processes-{count}"
        run = predict(run_dir, *data, "--trainer.accelerator", "cpu", "--trainer.devices", str(count), *strategy)
        runs[count] = {**run, "images_per_second": round(SCALING_IMAGES / run["wall_seconds"], 3),
                       "steady_images_per_second": steady_rate(run_dir)}
    return runs


def suite() -> dict:
    return timed([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"])


def row_line(label: str, run: dict, row: dict) -> str:
    return (f"| {label} | {row['dataset']} | {row['images']} | {row['failed']} | {row['iou']} | "
            f"{row['seconds_per_image']} | {run['wall_seconds']} | {run['load_before']} / {run['load_after']} |")


def report(results: dict) -> str:
    lines = [f"# CPU speed, {results['date']}", "",
             f"Machine: {results['cores']} usable cores; load average (1 min) before / after each command "
             "beside its numbers. Commands as run are in results.json.", ""]
    head = "| run | dataset | images | failed | mIoU | s/image | wall (s) | load before / after |"
    rule = "|---|---|---|---|---|---|---|---|"
    if "quick_start" in results:
        quick = results["quick_start"]
        lines += ["## Quick start: `paintseg predict --config configs/default.yaml`", "", head, rule,
                  row_line("no environment variable (threads auto)", quick["default"], quick["default"]["rows"][0])]
        lines += [row_line(f"--model.threads {n}", run, run["rows"][0]) for n, run in quick["manual"].items()]
        best = min(float(run["rows"][0]["seconds_per_image"]) for run in quick["manual"].values())
        ratio = float(quick["default"]["rows"][0]["seconds_per_image"]) / best
        lines += ["", f"Default / best manual s/image: {ratio:.2f}", ""]
    if "shared" in results:
        lines += ["## AMCP (configs/default.yaml) vs the seeded GrabCut baseline, shared datasets", "", head, rule]
        for method, run in results["shared"].items():
            lines += [row_line(method, run, row) for row in run["rows"] if row["method"] == method]
        lines += ["", "Where AMCP's time goes, mean seconds per image, from the run's records "
                  "(item: set_image, the prompt's AMCP run and the metrics; decoding is the DataModule's):", "",
                  "| dataset | item | paint | features | mask updates | refinement |", "|---|---|---|---|---|---|"]
        lines += [f"| {name} | {p['item']} | {p['paint']} | {p['features']} | {p['update']} | {p['refine']} |"
                  for name, p in results["shared"]["amcp"]["split"].items()]
        lines += [""]
    if "processes" in results:
        lines += [f"## 1 vs 2 CPU processes ({CPU_STRATEGY}), generated set", "",
                  "| processes | images | wall (s) | images/s, wall | images/s, once started | load before / after |",
                  "|---|---|---|---|---|---|"]
        runs = results["processes"]
        lines += [f"| {n} | {SCALING_IMAGES} | {run['wall_seconds']} | {run['images_per_second']} | "
                  f"{run['steady_images_per_second']} | {run['load_before']} / {run['load_after']} |"
                  for n, run in runs.items()]
        wall, steady = (runs[2][key] / runs[1][key] for key in ("images_per_second", "steady_images_per_second"))
        lines += ["", f"2 processes / 1 process, images/s: {wall:.2f} by wall time (each run's start-up included), "
                  f"{steady:.2f} once started (between the first and the last record written)", ""]
    if "suite" in results:
        run = results["suite"]
        lines += ["## Test suite: `python -m pytest -q`", "",
                  f"Wall {run['wall_seconds']} s, load {run['load_before']} / {run['load_after']}; "
                  f"its last line: `{run['output_tail'].strip().splitlines()[-1]}`", ""]
    return "\n".join(lines)


def main(args: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.speed", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="where results.md and results.json go")
    parser.add_argument("--work", type=Path, help="run folders and generated data (default: a temporary folder)")
    parser.add_argument("--max-images", type=int, help="cap each shared dataset (evenly spaced); default: all")
    parser.add_argument("--steps", nargs="+", choices=STEPS, default=list(STEPS),
                        help="what to measure (default: all, in this order)")
    options = parser.parse_args(args)
    if options.max_images is not None and options.max_images < 1:
        parser.error(f"--max-images must be >= 1, got {options.max_images}")
    work = options.work or Path(tempfile.mkdtemp(prefix="paintseg-speed-"))
    options.out.mkdir(parents=True, exist_ok=True)
    results = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "cores": usable_cores(),
               "max_images": options.max_images}
    steps = {"quick_start": lambda: quick_start(work), "processes": lambda: processes(work),
             "shared": lambda: shared_sets(work, options.max_images), "suite": suite}
    for name in (name for name in STEPS if name in options.steps):
        print(f"benchmarks.speed: {name} (load {load()})", flush=True)
        results[name] = steps[name]()
        # Rewritten after every step: a run stopped from outside keeps what it measured.
        (options.out / "results.json").write_text(json.dumps(results, indent=1))
        (options.out / "results.md").write_text(report(results))
    print(report(results))


if __name__ == "__main__":
    main()
