"""A benchmark run: export the engines its cases need, measure each case in a fresh process, and
gather machine facts, per-case statistics and costs, scaling sweeps, ratios and mask checks into
one results dict.

Each case runs in its own process because a process's peak memory (``ru_maxrss``) cannot be
reset: a fresh process makes the peak the case's own, and frees the case's models. The processes
fork from a multiprocessing forkserver that has imported the suite's modules once (torch,
diffusers, transformers, this package): a case then starts in a fraction of a second, not the
seconds of a new interpreter's imports, and its peak still counts those imports, as a spawned
interpreter's would. The server never touches CUDA, so its children may.
"""
from __future__ import annotations

import base64
import hashlib
import multiprocessing
import os
import platform
import resource
import subprocess
import time
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch

from paintseg_engine.runtime.errors import BackendUnavailable

from .cases import (ENGINE_BACKENDS, REPO, TINY, BenchConfig, Case, build, fixed_images, prepare_models,
                    random_weights, resolve, tiny_sd_folder)
from .cost import CostMeter, CountedFeatures
from .timing import TimedRunners, summary, synchronize

# Per AMCP step: its total, and its parts (UNet/VAE parts exist for diffusion painters only).
STEP_PARTS = ("seconds", "paint", "encode", "unet", "unet_step", "decode", "paint_other", "features", "update")
STEPS = ("inpaint", "outpaint")
PACKAGES = ("torch", "diffusers", "transformers", "onnxruntime", "onnxruntime-gpu", "tensorrt", "numpy",
            "opencv-python-headless", "matplotlib")
MIB = 2**20
# What the forkserver imports once for every case (one not installed is passed over). diffusers and
# transformers import their model classes lazily, on first use: without the classes' own modules
# here, every case paid their imports again (about 5 of a tiny case's 6 s of set-up).
PRELOADED = ["benchmarks.suite", "diffusers", "transformers",
             "diffusers.models.unets.unet_2d_condition", "diffusers.models.autoencoders.autoencoder_kl",
             "diffusers.schedulers.scheduling_ddim", "diffusers.schedulers.scheduling_dpmsolver_multistep",
             "transformers.models.clip.modeling_clip", "transformers.models.clip.tokenization_clip",
             "transformers.models.vit.modeling_vit"]
COMMIT_VARIABLE = "PAINTSEG_COMMIT"


def log(message: str) -> None:
    print(message, flush=True)


def in_fresh_process(function, *args):
    """``function(*args)`` in a new process, forked from the suite's forkserver (see above)."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOADED)  # read when the server starts: at the first case
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        return pool.submit(function, *args).result()


# --- One case, inside its own process ---------------------------------------------------------


def iteration_parts(timing: dict, runner_parts: dict) -> dict:
    row = {**timing, **runner_parts}
    if runner_parts:
        # Scheduler steps, masks, resizing: what the paint call spent outside the UNet and VAE.
        row["paint_other"] = timing["paint"] - runner_parts["encode"] - runner_parts["unet"] - runner_parts["decode"]
    return row


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@contextmanager
def denoising_steps(painter, steps: int | None) -> Iterator[None]:
    """Inside the block, the painter's denoising loop ends after ``steps`` steps, through its step
    callback (None, or a painter without one: unchanged)."""
    if steps is None or not hasattr(painter, "callback_on_step_end"):
        yield
        return

    def stop_after(painter, index, timestep, kwargs):
        painter.interrupt = index + 1 >= steps
        return kwargs

    painter.callback_on_step_end = stop_after
    try:
        yield
    finally:
        painter.callback_on_step_end = None


def packed_mask(mask: torch.Tensor) -> dict:
    """A bool mask as its SHA-256 and its bits (base64), for comparisons between cases."""
    bits = np.packbits(mask.cpu().numpy().astype(bool))
    return {"shape": list(mask.shape), "sha256": hashlib.sha256(bits.tobytes()).hexdigest(),
            "bits": base64.b64encode(bits.tobytes()).decode()}


def unpacked_mask(packed: dict) -> np.ndarray:
    bits = np.frombuffer(base64.b64decode(packed["bits"]), dtype=np.uint8)
    height, width = packed["shape"]
    return np.unpackbits(bits)[:height * width].reshape(height, width).astype(bool)


def peak_memory(device: torch.device) -> dict:
    peak = {"cpu_max_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / MIB}  # Linux: KiB
    if device.type == "cuda":
        peak["cuda_max_allocated_mib"] = torch.cuda.max_memory_allocated(device) / MIB
    return peak


@torch.inference_mode()
def measure_case(config: BenchConfig, case: Case, images: list) -> dict:
    """Warm up, then time AMCP ``repeats`` times over the images: every iteration's parts, every
    image; then count what each image cost (calls and FLOPs) from the calls recorded."""
    device = torch.device(config.device)
    if config.torch_threads:
        torch.set_num_threads(config.torch_threads)
    load_at_start = os.getloadavg()
    started = time.perf_counter()
    segmenter = build(config, case, resolve(config, case), device)
    painter, features = segmenter.painter, segmenter.features
    images = [(image.to(device), prompt) for image, prompt in images[:case.images]]
    # UNet/VAE calls are timed at the runners; each AMCP step takes the calls made during it.
    runners = TimedRunners(painter, device) if hasattr(painter, "unet_runner") else None
    take_parts = runners.take if runners else dict
    counted = segmenter.features = CountedFeatures(features)
    take_calls = lambda: (runners.take_calls() if runners else []) + counted.take_calls()
    build_seconds = time.perf_counter() - started
    with denoising_steps(painter, case.warmup_steps):
        for _ in range(case.warmup):  # first calls: kernel selection, allocations, compilation
            segmenter.set_image(images[0][0])
            segmenter.predict(images[0][1])
    take_parts(), take_calls()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    cpu_before, timed_start = cpu_seconds(), time.perf_counter()
    runs, calls, masks = [], [], []
    for repeat in range(case.repeats):
        for index, (image, prompt) in enumerate(images):
            synchronize(device)
            start = time.perf_counter()
            segmenter.set_image(image)
            # A painter may encode the image once here (cached latents); that is per image, not per step.
            set_image_parts = take_parts()
            iterations = []
            result = segmenter.predict(prompt, on_step=lambda step: iterations.append(
                iteration_parts(step.timings(), take_parts())))
            synchronize(device)
            seconds = time.perf_counter() - start
            mask = packed_mask(result.mask)
            runs.append({"image": index, "repeat": repeat, "seconds": seconds, "set_image": set_image_parts,
                         "iterations": iterations, "mask_sha256": mask["sha256"]})
            calls.append(take_calls())
            if repeat == 0:
                masks.append(mask)
    # Cores this process kept busy while timed: well under its threads means other jobs took the cores.
    cores_busy = (cpu_seconds() - cpu_before) / (time.perf_counter() - timed_start)
    peak = peak_memory(device)
    meter = CostMeter(painter, features)  # after the timed runs: counting takes a moment per shape
    for run, image_calls in zip(runs, calls):
        run["cost"] = meter.cost(image_calls)
    return {"runs": runs, "masks": masks, "peak_memory": peak, "torch_threads": torch.get_num_threads(),
            "cores_busy": cores_busy,
            "load_average_at_start": load_at_start, "build_seconds": build_seconds,
            "case_seconds": time.perf_counter() - started}


# --- Statistics over a case's runs ------------------------------------------------------------


def statistics(runs: list[dict]) -> dict:
    per_step = {}
    for step in STEPS:
        rows = [row for run in runs for row in run["iterations"] if row["step"] == step]
        if rows:
            per_step[step] = {part: summary([row[part] for row in rows]) for part in STEP_PARTS if part in rows[0]}
            if "unet_steps" in rows[0]:
                per_step[step]["unet_steps_per_paint"] = rows[0]["unet_steps"]
                per_step[step]["unet_batch"] = rows[0]["unet_batch"]
    per_image = summary([run["seconds"] for run in runs])
    by_image = {}
    for run in runs:
        by_image.setdefault(run["image"], set()).add(run["mask_sha256"])
    return {"per_step": per_step, "per_image": per_image, "images_per_second": 1 / per_image["median"],
            "iterations_per_image": len(runs[0]["iterations"]), "cost_per_image": mean_cost(runs),
            "masks_repeat": all(len(hashes) == 1 for hashes in by_image.values())}


def mean_cost(runs: list[dict]) -> dict:
    """Calls, samples and TFLOPs per image, averaged over the runs (every repeat of an image costs
    the same; images may differ)."""
    mean = lambda values: sum(values) / len(values)
    networks = runs[0]["cost"]["networks"]
    out = {network: {key: None if networks[network][key] is None else
                     mean([run["cost"]["networks"][network][key] for run in runs]) for key in networks[network]}
           for network in networks}
    return {"networks": out, "tflop": mean([run["cost"]["tflop"] for run in runs]),
            "all_counted": all(run["cost"]["all_counted"] for run in runs)}


def roofline(record: dict, peaks: dict[str, dict[str, float]], gpu: str | None) -> dict | None:
    """The median UNet step against the time its FLOPs take at the GPU's peak rate for the case's
    dtype (config ``peak_tflops``): ratio = measured / roofline, 1 at the peak."""
    unet = record["statistics"]["cost_per_image"]["networks"].get("unet")
    if not unet or not unet["tflop"]:
        return None
    steps = [row["unet_step"] for run in record["runs"] for row in run["iterations"] if row.get("unet_steps")]
    step_tflop = unet["tflop"] / unet["calls"]
    measured = float(np.median(steps))
    dtype = record["settings"]["painter"]["init_args"].get("dtype", "float32")
    out = {"unet_step_seconds": measured, "unet_step_tflop": step_tflop, "batch": unet["samples"] / unet["calls"],
           "achieved_tflops": step_tflop / measured, "dtype": dtype, "gpu": gpu,
           "peak_tflops": (peaks.get(gpu) or {}).get(dtype)}
    if out["peak_tflops"]:
        out["roofline_seconds"] = step_tflop / out["peak_tflops"]
        out["ratio"] = measured / out["roofline_seconds"]
    return out


def extrapolate_steps(runs: list[dict], stats: dict, steps: dict) -> dict:
    """Seconds at the settings' step count, from a run with fewer steps: measured + (S - s) x the
    median UNet step. An estimate (marked so), not a measurement; its inputs are kept with it."""
    extra = steps["settings"] - steps["measured"]
    unet_step = float(np.median([row["unet_step"] for run in runs for row in run["iterations"]]))
    out = {"extrapolated": True, "method": "measured median + (settings steps - measured steps) x median UNet step",
           "steps": steps, "unet_step_median": unet_step}
    for step, parts in stats["per_step"].items():
        out[step] = {"measured": parts["seconds"]["median"], "seconds": parts["seconds"]["median"] + extra * unet_step}
    measured = stats["per_image"]["median"]
    out["per_image"] = {"measured": measured, "seconds": measured + stats["iterations_per_image"] * extra * unet_step}
    return out


# --- The run ----------------------------------------------------------------------------------


def unavailable(case: Case, diffusion: bool, device: torch.device) -> str | None:
    """Why this machine (or the config) cannot run the case, or None."""
    if case.skip:
        return f"not run by the config: {case.skip}"
    if device.type == "cuda" and not torch.cuda.is_available():
        return "no CUDA device here"
    if not diffusion:
        return None
    try:
        if case.backend == "onnxruntime":
            from paintseg_engine.runtime.onnxruntime_backend import import_onnxruntime, require_cuda_provider

            import_onnxruntime()
            if device.type == "cuda":
                require_cuda_provider()
        elif case.backend == "tensorrt":
            from paintseg_engine.runtime.tensorrt_backend import import_tensorrt

            import_tensorrt()
    except BackendUnavailable as err:
        return str(err)
    return None


def export(config: BenchConfig, name: str, tensorrt: bool) -> None:
    from export import ExportSettings, export_engine

    engine = config.engines[name]
    source = {"random_full_size": True} if engine.source == "random_full_size" else {
        "model": str(tiny_sd_folder(config.models_dir)) if engine.source == TINY else engine.source}
    # AOTInductor compiles for the device the cases run on; ONNX alone is traced on the CPU.
    device = config.device if "aoti" in engine.formats else "cpu"
    export_engine(ExportSettings(out=Path(engine.out), formats=tuple(engine.formats), device=device,
                                 precisions=tuple(engine.precisions), batch=tuple(engine.batch),
                                 image_size=tuple(engine.image_size), tensorrt=tensorrt, **source))


def machine_facts(device: torch.device) -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor() or platform.machine())
    versions = {}
    for package in PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" and torch.cuda.is_available() else None
    return {"cpu": cpu, "cpu_cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "memory_gib": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30,
            "gpu": gpu, "cuda": torch.version.cuda if gpu else None, "device": str(device),
            "platform": platform.platform(), "python": platform.python_version(), "versions": versions,
            "git_commit": source_commit()}


def source_commit() -> str | None:
    """The checkout's commit: ``PAINTSEG_COMMIT`` when set (a copy of the tree without git, as on
    the GPU machine, is given it from a file written beforehand; empty: unknown), else git's."""
    if COMMIT_VARIABLE in os.environ:
        return os.environ[COMMIT_VARIABLE] or None
    try:
        found = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    except OSError:  # no git here
        return None
    return found.stdout.strip() or None


def machine_tag(facts: dict) -> str:
    if facts["gpu"]:
        return "gpu-" + "-".join(facts["gpu"].lower().replace("nvidia", "").split())
    return f"cpu-{facts['cpu_cores']}core"


def run_suite(config: BenchConfig, reuse_engines: bool = False, time_budget: float | None = None,
              on_progress: Callable[[dict], None] | None = None) -> dict:
    """Run every case of ``config`` in order, each engine exported just before the first case that
    runs it. ``time_budget``: seconds after which no further case or export starts (they are
    reported skipped). ``on_progress`` gets the results so far after every case."""
    device = torch.device(config.device)
    facts = machine_facts(device)
    results = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "machine": facts,
               "machine_tag": config.machine_tag or machine_tag(facts), "load_average_at_start": os.getloadavg(),
               "config_file": config.source_file, "config": asdict(config), "cases": []}
    started = time.perf_counter()
    cases = config.cases + config.sweep_cases()
    for case in cases:
        resolved = resolve(config, case)
        results["cases"].append({"case": asdict(case), "settings": resolved["model"], "diffusion": resolved["diffusion"],
                                 "changed": resolved["changed"], "status": "pending",
                                 "random_weights": random_weights(case, resolved["diffusion"]),
                                 "skip_reason": unavailable(case, resolved["diffusion"], device)})

    # Made once here: the case processes need not import the data package (and Lightning with it).
    images = fixed_images(config.images)
    runnable = [case for case, r in zip(cases, results["cases"]) if not r["skip_reason"]]
    prepare_models(config.models_dir, {case.source for case, r in zip(cases, results["cases"])
                                       if r["diffusion"] and not r["skip_reason"]})
    engine_errors: dict[str, str | None] = {}  # engine -> why its export failed, None once exported
    masks: dict[str, list[dict]] = {}  # case -> its masks of the first repeat, for the mask checks
    for case, record in zip(cases, results["cases"]):
        if not record["skip_reason"] and time_budget is not None:
            export_first = case.backend in ENGINE_BACKENDS and case.engine not in engine_errors
            needed = case.estimate_seconds + (config.engines[case.engine].estimate_seconds if export_first else 0)
            record["skip_reason"] = over_budget(time.perf_counter() - started, time_budget, needed)
        if record["skip_reason"]:
            record["status"] = "skipped"
            log(f"{case.name}: skipped ({record['skip_reason']})")
        else:
            if case.backend in ENGINE_BACKENDS and case.engine not in engine_errors:
                tensorrt = any(c.engine == case.engine and c.backend == "tensorrt" for c in runnable)
                engine_errors[case.engine] = prepare_engine(config, case.engine, tensorrt, reuse_engines)
            if case.backend in ENGINE_BACKENDS and engine_errors[case.engine]:
                record.update(status="failed", error=engine_errors[case.engine])
            else:
                log(f"{case.name}: running")
                try:
                    record.update(in_fresh_process(measure_case, config, case, images), status="ok")
                    masks[case.name] = record.pop("masks")
                except BackendUnavailable as err:
                    record.update(status="skipped", skip_reason=str(err))
                except Exception as err:  # noqa: BLE001 - one broken case must not lose the others' results
                    record.update(status="failed", error=repr(err))
        if record["status"] == "ok":
            record["statistics"] = statistics(record["runs"])
            record["roofline"] = roofline(record, config.peak_tflops, facts["gpu"])
            steps = record["changed"].get("steps")
            if steps and steps["measured"] < steps["settings"] and not case.sweep:
                record["extrapolated_to_settings_steps"] = extrapolate_steps(record["runs"], record["statistics"], steps)
            log(f"{case.name}: {record['statistics']['per_image']['median']:.3f} s per image (median)")
        elif record["status"] == "failed":
            log(f"{case.name}: FAILED {record['error']}")
        summarize(config, results, masks, started)
        if on_progress:
            on_progress(results)
    return results


def over_budget(spent: float, budget: float, needed: float) -> str | None:
    """Why a case that needs about ``needed`` seconds (its estimate, and its engine's export) must not
    start, ``spent`` seconds into a run of ``budget``; None if it fits."""
    if spent >= budget:
        return f"not started: the run's time budget of {budget:.0f} s was spent"
    if spent + needed > budget:
        return (f"not started: it needs about {needed:.0f} s (the config's estimate) and {budget - spent:.0f} s "
                f"of the run's time budget of {budget:.0f} s were left")
    return None


def prepare_engine(config: BenchConfig, name: str, tensorrt: bool, reuse: bool) -> str | None:
    """Export the engine ``name`` (or reuse it); returns why that failed, or None."""
    if reuse and (Path(config.engines[name].out) / "manifest.json").is_file():
        log(f"engine {name}: reusing {config.engines[name].out}")
        return None
    log(f"engine {name}: exporting to {config.engines[name].out}")
    try:
        in_fresh_process(export, config, name, tensorrt)
    except Exception as err:  # noqa: BLE001 - the cases that need it are reported failed with why
        return f"engine export failed: {err!r}"
    return None


def summarize(config: BenchConfig, results: dict, masks: dict[str, list[dict]], started: float) -> None:
    """What compares cases, from the cases run so far."""
    results["scaling"] = scaling(config, results["cases"])
    results["ratios"] = ratios(config, results["cases"])
    results["mask_checks"] = mask_checks(config, results["cases"], masks)
    results["load_average_at_end"] = os.getloadavg()
    results["wall_seconds"] = time.perf_counter() - started


def mask_checks(config: BenchConfig, records: list[dict], masks: dict[str, list[dict]]) -> list[dict]:
    """For each configured pair, whether the case's masks equal the baseline's, image by image."""
    by_name = {record["case"]["name"]: record for record in records}
    out = []
    for pair in config.mask_checks:
        check = {"case": pair["case"], "baseline": pair["baseline"]}
        missing = [name for name in (pair["case"], pair["baseline"]) if name not in masks]
        if missing:
            check["status"] = "not available: " + ", ".join(f"{n} {by_name[n]['status']}" for n in missing)
        else:
            check["images"] = []
            for index, (a, b) in enumerate(zip(masks[pair["case"]], masks[pair["baseline"]])):
                mask, base = unpacked_mask(a), unpacked_mask(b)
                union = (mask | base).sum()
                check["images"].append({"image": index, "identical": a["sha256"] == b["sha256"],
                                        "differing_pixels": int((mask != base).sum()), "pixels": int(mask.size),
                                        "iou": float((mask & base).sum() / union) if union else 1.0})
            check["status"] = "identical" if all(i["identical"] for i in check["images"]) else "differ"
        out.append(check)
    return out


def scaling(config: BenchConfig, records: list[dict]) -> list[dict]:
    sweeps = []
    for sweep in config.scaling:
        points = []
        for record in records:
            if (record["case"]["sweep"] or {}).get("case") == sweep["case"] and record["case"]["sweep"]["parameter"] == sweep["parameter"]:
                point = {"value": record["case"]["sweep"]["value"], "status": record["status"]}
                if record["status"] == "ok":
                    stats = record["statistics"]
                    point["per_image"] = stats["per_image"]["median"]
                    point.update({step: stats["per_step"][step]["seconds"]["median"] for step in stats["per_step"]})
                points.append(point)
        sweeps.append({"case": sweep["case"], "parameter": sweep["parameter"], "points": points})
    return sweeps


def ratios(config: BenchConfig, records: list[dict]) -> list[dict]:
    """baseline / case median seconds for the config's pairs, both measured in this run."""
    by_name = {record["case"]["name"]: record for record in records}
    out = []
    for pair in config.ratios:
        case, baseline = by_name[pair["case"]], by_name[pair["baseline"]]
        ratio = {"case": pair["case"], "baseline": pair["baseline"]}
        if case["status"] != "ok" or baseline["status"] != "ok":
            ratio["status"] = "not available: " + ", ".join(f"{r['case']['name']} {r['status']}"
                                                            for r in (case, baseline) if r["status"] != "ok")
            out.append(ratio)
            continue
        a, b = case["statistics"], baseline["statistics"]
        ratio["status"] = "ok"
        ratio["speedup"] = {"per_image": b["per_image"]["median"] / a["per_image"]["median"]}
        ratio["speedup"].update({step: b["per_step"][step]["seconds"]["median"] / a["per_step"][step]["seconds"]["median"]
                                 for step in STEPS if step in a["per_step"] and step in b["per_step"]})
        # What the case skips, on any machine: the baseline's counted TFLOPs per image over the case's.
        if a["cost_per_image"]["tflop"] > 0 and b["cost_per_image"]["tflop"] > 0:
            ratio["tflop_ratio"] = b["cost_per_image"]["tflop"] / a["cost_per_image"]["tflop"]
        ea, eb = case.get("extrapolated_to_settings_steps"), baseline.get("extrapolated_to_settings_steps")
        if ea or eb:
            # Either side extrapolated to its settings' steps: the ratio is an estimate too.
            seconds = lambda record, extrapolated: (extrapolated or {}).get("per_image", {}).get(
                "seconds", record["statistics"]["per_image"]["median"])
            ratio["speedup_at_settings_steps"] = {"extrapolated": True,
                                                  "per_image": seconds(baseline, eb) / seconds(case, ea)}
        out.append(ratio)
    return out
