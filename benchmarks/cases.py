"""What a benchmark run measures: its YAML config, the cases in it, and how each case's painter,
features, AMCP settings and images are built.

A case names a *settings* block (a model config of ``configs/``, e.g. the released reference
settings, plus overrides), and for diffusion painters a weight *source* and a runtime *backend*.
Fields left unset keep the settings' values; fields set to less than them (steps, resolution,
iterations, ...) are reported as reduced, next to the settings' value.

A config's ``dry_run`` block turns it into its own rehearsal (``--dry-run``): the same cases on
tiny models at tiny sizes, on the machine at hand, so that a run meant for a GPU is known to
work before one is lent.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from paintseg_engine.amcp import AMCPConfig, Segmenter
from paintseg_engine.build import DEFAULT_SEGMENTER, build_segmenter, class_of, segmenter_section
from paintseg_engine.prompts import BoxPrompt, box_of

REPO = Path(__file__).resolve().parent.parent
AMCP_SEGMENTER = DEFAULT_SEGMENTER["class_path"]
DIFFUSION_PAINTER = "paintseg_engine.painters.diffusion.DiffusionPainter"
# Weight sources of diffusion cases; anything else is a checkpoint folder or hub id.
RANDOM_FULL_SIZE, TINY = "random_full_size", "tiny"
# Backends that run an exported engine directory, and the export format each runs.
ENGINE_FORMATS = {"onnxruntime": "onnx", "tensorrt": "onnx", "aoti": "aoti"}
ENGINE_BACKENDS = tuple(ENGINE_FORMATS)
# Case field -> where it lands: (section of the model config, key).
OVERRIDES = {
    "resolution": ("amcp", "frame_size"),  # the diffusion painter paints at the frame size
    "samples": ("amcp", "num_samples"),
    "iterations": ("amcp", "iterations"),
    "steps": ("painter", "steps"),
    "features_input_size": ("features", "input_size"),
    "dtype": ("painter", "dtype"),
}
SWEEP_PARAMETERS = ("resolution", "samples", "steps", "iterations")
SWEEP_KEYS = ("case", "parameter", "values")  # a sweep's other keys are case fields


@dataclass
class Case:
    name: str
    settings: str  # a key of the config's ``settings``
    # Diffusion painters only (weight-free settings ignore them): source, backend, engine, steps,
    # features_input_size, dtype.
    source: str = RANDOM_FULL_SIZE  # random_full_size, tiny, or a checkpoint folder / hub id
    backend: str = "torch"  # torch, torch-compile, onnxruntime, tensorrt, aoti
    backend_options: dict = field(default_factory=dict)
    engine: str | None = None  # onnxruntime/tensorrt/aoti: a key of the config's ``engines``
    resolution: int | None = None
    samples: int | None = None
    steps: int | None = None
    iterations: int | None = None
    features_input_size: int | None = None
    dtype: str | None = None  # painter and features precision
    images: int | None = None  # the first N of the config's images (None: all)
    warmup: int = 1  # untimed runs of AMCP on the first image
    # Denoising steps of the warm-up runs (None: the case's own). Kernel selection, allocations and
    # compilation depend on shapes, not on the step count, so a few steps warm up as well as 50.
    warmup_steps: int | None = None
    repeats: int = 3  # timed runs over the images
    skip: str | None = None  # a reason not to run the case here, reported as its skip reason
    # Seconds the case takes on the config's machine (process, build, warm-up, repeats), an estimate:
    # under a time budget, a case that would not finish in what is left is not started.
    estimate_seconds: float = 0.0
    sweep: dict | None = None  # set on the cases a scaling sweep derives: {case, parameter, value}


@dataclass
class Engine:
    """An engine directory, exported by ``export.export_engine`` before the cases that run it."""

    out: str  # keep it outside the repository: a full-size fp32 UNet is 3.4 GB
    source: str = RANDOM_FULL_SIZE
    formats: list[str] = field(default_factory=lambda: ["onnx"])  # aoti: compiled for the config's device
    precisions: list[str] = field(default_factory=lambda: ["fp32"])
    batch: list[int] = field(default_factory=lambda: [1, 5, 10])
    image_size: list[int] = field(default_factory=lambda: [512, 512, 512])
    estimate_seconds: float = 0.0  # the export's, counted with the first case that needs it (see Case)


@dataclass
class Images:
    """A fixed image set: generated scenes (exact ground truth) with box prompts around the objects."""

    count: int = 2
    height: int = 240
    width: int = 320
    seed: int = 0


@dataclass
class BenchConfig:
    settings: dict[str, dict]
    cases: list[Case]
    device: str = "cpu"
    torch_threads: int | None = None  # intra-op threads of each case's process; None: torch's default
    machine_tag: str | None = None  # results folder suffix; None: derived from the machine
    images: Images = field(default_factory=Images)
    models_dir: str = "/tmp/paintseg-bench/models"  # random and tiny checkpoints written for the run
    engines: dict[str, Engine] = field(default_factory=dict)
    scaling: list[dict] = field(default_factory=list)  # {case, parameter, values}
    ratios: list[dict] = field(default_factory=list)  # {case, baseline}: speed-up of case over baseline
    # {case, baseline}: cases whose masks must be identical, image by image (e.g. the exact cuts).
    mask_checks: list[dict] = field(default_factory=list)
    # GPU name -> {dtype: dense tensor-core TFLOP/s}: the roofline a UNet step is set against.
    peak_tflops: dict[str, dict[str, float]] = field(default_factory=dict)
    source_file: str | None = None

    def sweep_cases(self) -> list[Case]:
        """One case per value of each scaling sweep: its base case with that parameter changed (and
        the sweep's other case fields, e.g. fewer repeats)."""
        by_name = {case.name: case for case in self.cases}
        return [replace(by_name[sweep["case"]], name=f"{sweep['case']} [{sweep['parameter']}={value}]",
                        **{k: v for k, v in sweep.items() if k not in SWEEP_KEYS}, **{sweep["parameter"]: value},
                        sweep={"case": sweep["case"], "parameter": sweep["parameter"], "value": value})
                for sweep in self.scaling for value in sweep["values"]]


def load_config(path: str | Path, dry_run: bool = False, work_dir: str | Path | None = None) -> BenchConfig:
    """The config at ``path``; ``dry_run``: with its ``dry_run`` block applied; ``work_dir``: the
    random checkpoints and engines written there instead of the config's folders."""
    raw = yaml.safe_load(Path(path).read_text())
    rehearsal = raw.pop("dry_run", None)
    if dry_run:
        if not rehearsal:
            raise ValueError(f"{path}: --dry-run needs a dry_run block in the config")
        raw = apply_dry_run(raw, rehearsal)
    raw["cases"] = [Case(**{**raw.get("case_defaults", {}), **case}) for case in raw["cases"]]
    raw.pop("case_defaults", None)
    raw["images"] = Images(**raw.get("images", {}))
    raw["engines"] = {name: Engine(**spec) for name, spec in raw.get("engines", {}).items()}
    if work_dir is not None:
        raw["models_dir"] = str(Path(work_dir) / "models")
        for name, engine in raw["engines"].items():
            engine.out = str(Path(work_dir) / "engines" / name)
    config = BenchConfig(**raw, source_file=str(path))
    check(config)
    return config


def apply_dry_run(raw: dict, rehearsal: dict) -> dict:
    """A config's ``dry_run`` block over the config: its keys merged into the config's (nested
    dicts key by key), ``case_overrides`` set on every case over the case's own fields, and
    ``backend_options`` (backend -> options) replacing the options of that backend's cases."""
    rehearsal = dict(rehearsal)
    overrides = rehearsal.pop("case_overrides", {})
    options = rehearsal.pop("backend_options", {})
    raw = merged(raw, rehearsal)
    raw["cases"] = [{**case, **overrides, **({"backend_options": options[case["backend"]]}
                                             if case.get("backend") in options else {})}
                    for case in raw["cases"]]
    return raw


def check(config: BenchConfig) -> None:
    names = [case.name for case in config.cases]
    by_name = {case.name: case for case in config.cases}
    problems = [f"case names repeat: {sorted({n for n in names if names.count(n) > 1})}"] if len(set(names)) < len(names) else []
    for case in config.cases:
        if case.settings not in config.settings:
            problems.append(f"case {case.name!r}: settings {case.settings!r} is not in settings {sorted(config.settings)}")
        elif case.backend in ENGINE_BACKENDS and case.engine not in config.engines:
            problems.append(f"case {case.name!r}: backend {case.backend} needs an engine from {sorted(config.engines)}")
        elif case.backend in ENGINE_BACKENDS and ENGINE_FORMATS[case.backend] not in config.engines[case.engine].formats:
            problems.append(f"case {case.name!r}: backend {case.backend} runs {ENGINE_FORMATS[case.backend]} "
                            f"exports; engine {case.engine!r} has formats {config.engines[case.engine].formats}")
    for name in config.settings:
        if "outpaint_painter" in settings_model(config, name):  # two painters: python -m benchmarks.paper_mix
            problems.append(f"settings {name!r}: a second painter (outpaint_painter) is measured by benchmarks.paper_mix")
    for sweep in config.scaling:
        if sweep["case"] not in names or sweep["parameter"] not in SWEEP_PARAMETERS:
            problems.append(f"scaling {sweep}: case must be one of {names}, parameter one of {SWEEP_PARAMETERS}")
        elif sweep["parameter"] == "steps" and not is_diffusion(settings_model(config, by_name[sweep["case"]].settings)):
            problems.append(f"scaling {sweep}: a weight-free painter has no denoising steps")
    for pair in config.ratios + config.mask_checks:
        if pair["case"] not in names or pair["baseline"] not in names:
            problems.append(f"ratio or mask check {pair}: case and baseline must be among {names}")
    if problems:
        raise ValueError(f"{config.source_file}: " + "; ".join(problems))


def merged(base: dict, override: dict) -> dict:
    """``base`` with ``override`` on top, nested dicts merged key by key."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        out[key] = merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def settings_model(config: BenchConfig, name: str) -> dict:
    """A settings block as {painter, features: {class_path, init_args}, amcp: {...}}: its model
    config's AMCP segmenter (``model.segmenter.init_args``, its ``config`` as ``amcp``) with the
    block's painter/features/amcp overrides."""
    block = config.settings[name]
    segmenter = segmenter_section(REPO / block["config"])
    if segmenter["class_path"] != AMCP_SEGMENTER:
        raise ValueError(f"settings {name!r}: {block['config']} is not an AMCP config ({segmenter['class_path']})")
    init_args = segmenter.get("init_args", {})
    model = {"painter": init_args["painter"], "features": init_args["features"], "amcp": init_args.get("config", {})}
    if "outpaint_painter" in init_args:
        model["outpaint_painter"] = init_args["outpaint_painter"]
    for section in ("painter", "features"):
        model[section]["init_args"] = merged(model[section].get("init_args", {}), block.get(section, {}))
    model["amcp"] = merged(model.get("amcp", {}), block.get("amcp", {}))
    return model


def is_diffusion(model: dict) -> bool:
    return model["painter"]["class_path"] == DIFFUSION_PAINTER


def resolve(config: BenchConfig, case: Case) -> dict:
    """What the case runs: its settings' model section with the case's fields applied, and for each
    field that changed a setting, the settings' own value (``reduced``)."""
    model = settings_model(config, case.settings)
    diffusion = is_diffusion(model)
    changed = {}
    for name, (section, key) in OVERRIDES.items():
        value = getattr(case, name)
        if value is None or (section != "amcp" and not diffusion):  # e.g. steps, from case_defaults
            continue
        target = model[section]["init_args"] if section != "amcp" else model["amcp"]
        if name == "iterations" and target.get("iterations_box") is not None:
            key = "iterations_box"  # the cases' prompts are boxes: the setting a box runs by
        settings_value = target.get(key, getattr(AMCPConfig, key, None) if section == "amcp" else None)
        if value != settings_value:
            changed[name] = {"measured": value, "settings": settings_value}
        target[key] = value
        if name == "dtype":
            model["features"]["init_args"]["dtype"] = value
    if diffusion:
        model["painter"]["init_args"]["backend"] = case.backend
    return {"model": model, "diffusion": diffusion, "changed": changed}


def random_weights(case: Case, diffusion: bool) -> bool | None:
    """True for random or tiny weights, False for a checkpoint, None for a weight-free painter."""
    return case.source in (RANDOM_FULL_SIZE, TINY) if diffusion else None


# --- Building what a case runs --------------------------------------------------------------


def with_init_args(spec: dict, **init_args: Any) -> dict:
    return {**spec, "init_args": {**spec.get("init_args", {}), **init_args}}


def instantiate(spec: dict):
    return class_of(spec["class_path"])(**spec.get("init_args", {}))


def tiny_sd_folder(models_dir: str) -> Path:
    return Path(models_dir) / "tiny-sd-inpainting"


def features_folder(models_dir: str, source: str) -> Path:
    return Path(models_dir) / ("random-vit-b8" if source == RANDOM_FULL_SIZE else "tiny-vit")


def prepare_models(models_dir: str, sources: set[str]) -> None:
    """Write the random checkpoints the sources need, once: complete folders are kept."""
    from export.random_weights import save_random_vit_b8, save_tiny_sd_inpainting, save_tiny_vit

    # folder -> (writer, the file it writes last, so present only in a complete folder)
    needed = {}
    if RANDOM_FULL_SIZE in sources:
        needed[features_folder(models_dir, RANDOM_FULL_SIZE)] = (save_random_vit_b8, "model.safetensors")
    if TINY in sources:
        needed[tiny_sd_folder(models_dir)] = (save_tiny_sd_inpainting, "model_index.json")
        needed[features_folder(models_dir, TINY)] = (save_tiny_vit, "model.safetensors")
    for folder, (write, last_file) in needed.items():
        if not (folder / last_file).exists():
            write(folder)


def build(config: BenchConfig, case: Case, resolved: dict, device: torch.device) -> Segmenter:
    """The AMCP segmenter of a case, on ``device``, built as every door builds one (build.py)."""
    from export.random_weights import random_sd_components

    model = resolved["model"]
    painter, features = model["painter"], model["features"]
    if resolved["diffusion"]:
        weights = {RANDOM_FULL_SIZE: random_sd_components, TINY: lambda: str(tiny_sd_folder(config.models_dir))}
        painter_model = weights[case.source]() if case.source in weights else case.source
        features_model = (str(features_folder(config.models_dir, case.source)) if case.source in weights
                          else features["init_args"]["model"])
        backend_options = {**painter["init_args"].get("backend_options", {}), **case.backend_options}
        if case.engine:
            backend_options["engine_dir"] = config.engines[case.engine].out
        painter = with_init_args(painter, model=painter_model, backend_options=backend_options)
        if not isinstance(painter_model, str):  # random weights in memory: no folder a config could name
            painter = instantiate(painter)
        features = with_init_args(features, model=features_model)
    section = {"class_path": AMCP_SEGMENTER, "init_args": {"painter": painter, "features": features,
                                                           "config": model["amcp"]}}
    return build_segmenter(section, device=device)


def fixed_images(spec: Images) -> list[tuple[torch.Tensor, BoxPrompt]]:
    """The config's image set (generated scenes, same seed every run) with a tight box prompt each."""
    from paintseg_engine.data.synthetic import make_scene

    rng = np.random.default_rng(spec.seed)
    images = []
    for _ in range(spec.count):
        pixels, mask = make_scene(rng, spec.height, spec.width)
        image = torch.from_numpy(pixels).permute(2, 0, 1).float().div(255)
        images.append((image, BoxPrompt(box_of(torch.from_numpy(mask)))))
    return images
