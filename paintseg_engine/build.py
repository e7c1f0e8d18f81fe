"""A config to a segmenter, in one place: every door (the dataset run's LightningModule, ``paintseg
segment``, the app, the benchmarks) builds through here.

A config's ``model.segmenter`` section names the segmenter as jsonargparse (and so LightningCLI)
does, ``class_path`` and ``init_args``::

    model:
      segmenter:
        class_path: paintseg_engine.Segmenter            # AMCP
        init_args:
          painter: {class_path: paintseg_engine.painters.OpenCVPainter, init_args: {...}}
          features: {class_path: paintseg_engine.features.ColorTextureFeatures}
          config: {frame_size: 320, ...}                 # AMCPConfig
    # or: class_path: paintseg_engine.baselines.GrabCutSegmenter, init_args: {iterations: 5, seed: 0}

Configs from before this section (``model.painter``, ``model.features``, ``model.amcp``,
``model.method``) are refused with one line naming the key that replaced each.
"""
from __future__ import annotations

import importlib
import inspect
from pathlib import Path
from typing import Any, Mapping

import torch
import yaml

from .amcp import PromptSegmenter
from .errors import ConfigError
from .pretrained import missing_local_weights

# configs/ of the repository this package runs from (an editable install or a checkout).
CONFIGS = Path(__file__).resolve().parent.parent / "configs"
DEFAULT_DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
DEFAULT_SEGMENTER = {"class_path": "paintseg_engine.Segmenter"}
GRABCUT_SEGMENTER = "paintseg_engine.baselines.GrabCutSegmenter"
# Keys of the model section before ``segmenter:``, and where each went.
LEGACY_KEYS = {
    "painter": "model.segmenter.init_args.painter",
    "features": "model.segmenter.init_args.features",
    "amcp": "model.segmenter.init_args.config",
    "method": f"model.segmenter.class_path (paintseg_engine.Segmenter or {GRABCUT_SEGMENTER})",
    "grabcut_iterations": f"model.segmenter.init_args.iterations (of {GRABCUT_SEGMENTER})",
}


def legacy_key_message(key: str, source: str) -> str | None:
    """The one line refusing an old ``model.<key>`` (e.g. ``amcp.iterations``), or None for a current key."""
    head, _, rest = key.partition(".")
    if head not in LEGACY_KEYS:
        return None
    return (f"{source}: model.{key} is now {LEGACY_KEYS[head]}{'.' + rest if rest else ''} "
            f"(see configs/default.yaml)")


def check_model_section(model: Mapping, source: str) -> None:
    """Refuse a model section written for the old layout, naming the new key."""
    for key in model:
        message = legacy_key_message(key, source)
        if message:
            raise ConfigError(message)


def segmenter_section(config: str | Path | Mapping) -> dict:
    """The ``segmenter`` section of ``config``: a YAML file, or a mapping that is a whole config
    (``model.segmenter``), a model section (``segmenter``) or the section itself (``class_path``)."""
    source = f"config {config}" if isinstance(config, (str, Path)) else "config"
    if isinstance(config, (str, Path)):
        path = Path(config)
        if not path.is_file():
            raise ConfigError(f"config {path}: no such file")
        try:
            config = yaml.safe_load(path.read_text()) or {}
        except (yaml.YAMLError, UnicodeDecodeError) as error:  # an image given as config, a typo
            raise ConfigError(f"config {path}: not a YAML file ({' '.join(str(error).split())})") from None
    if not isinstance(config, Mapping):
        raise ConfigError(f"{source}: expected a mapping, got {type(config).__name__}")
    if "class_path" in config:
        return dict(config)
    model = config.get("model", config) or {}
    check_model_section(model, source)
    return dict(model.get("segmenter") or DEFAULT_SEGMENTER)


def component_weights(spec: Mapping) -> str | None:
    """The ``model`` (hub id or folder) a ``class_path`` spec loads weights from, its class's
    default when the spec leaves it out; None for a weight-free component."""
    init_args = spec.get("init_args") or {}
    if isinstance(init_args.get("model"), str):
        return init_args["model"]
    parameter = inspect.signature(class_of(spec["class_path"])).parameters.get("model")
    return parameter.default if parameter is not None and isinstance(parameter.default, str) else None


def class_of(class_path: str) -> type:
    module, _, name = class_path.rpartition(".")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as error:
        raise ConfigError(f"class_path {class_path}: {error}") from None


def method_of(section: Any) -> str:
    """The method name (``amcp``, ``grabcut``) of a segmenter section, parsed or not: it fills
    ``{method}`` in run folder names."""
    class_path = section.get("class_path") if isinstance(section, Mapping) else getattr(section, "class_path", None)
    return class_of(class_path or DEFAULT_SEGMENTER["class_path"]).method


def missing_weights(config: str | Path | Mapping) -> list[str]:
    """Why ``config``'s segmenter cannot be built here, one line per component whose weights are
    not on this machine (``painter: no folder ...``); empty when all are. Checks files only:
    nothing is loaded. A config that cannot be read raises ConfigError."""
    reasons = []

    def visit(spec: Any, name: str) -> None:
        if isinstance(spec, Mapping):
            if "class_path" in spec and name:
                weights = component_weights(spec)
                reason = missing_local_weights(weights) if weights else None
                if reason:
                    reasons.append(f"{name}: {reason}")
            for key, value in (spec.get("init_args") or {}).items() if "class_path" in spec else spec.items():
                visit(value, key)

    visit(segmenter_section(config), "")
    return reasons


def innermost(error: BaseException) -> str:
    """The first cause's message, on one line: the parser wraps what a constructor raised
    (a SettingsError naming the setting and its range) in its own words."""
    while (error.__cause__ or error.__context__) is not None:
        error = error.__cause__ or error.__context__
    return " ".join(line.strip() for line in str(error).strip().splitlines())


def check_device(device: str) -> str:
    """``device`` if a tensor can be made there; a ConfigError naming it otherwise (``cuda:7`` on a
    one-GPU machine, CUDA on a CPU build, a misspelt name)."""
    try:
        torch.empty(0, device=device)
    except (RuntimeError, AssertionError) as error:
        raise ConfigError(f"device {device!r} is not usable here ({str(error).splitlines()[0]})") from None
    return device


def build_segmenter(config: str | Path | Mapping, *, device: str | torch.device | None = None) -> PromptSegmenter:
    """The segmenter ``config`` names (see the module's docstring), its components on ``device``
    (None: where they were built). A ConfigError says, in one line, why not."""
    from jsonargparse import ArgumentError, ArgumentParser

    source = f"config {config}" if isinstance(config, (str, Path)) else "config"
    section = segmenter_section(config)
    missing = missing_weights(section)
    if missing:
        raise ConfigError(f"{source}: " + "; ".join(missing))
    parser = ArgumentParser(exit_on_error=False)
    parser.add_argument("--segmenter", type=PromptSegmenter)
    # instantiate_classes is named instantiate from jsonargparse 4.49 on (the older name warns).
    instantiate = getattr(parser, "instantiate", None) or parser.instantiate_classes
    try:
        segmenter = instantiate(parser.parse_object({"segmenter": section})).segmenter
    except (ArgumentError, ValueError, TypeError) as error:
        raise ConfigError(f"{source}: {innermost(error)}") from None
    if device is not None:
        for part in segmenter.components().values():
            if isinstance(part, torch.nn.Module):
                part.to(device)
    return segmenter
