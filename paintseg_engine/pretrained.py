"""Shared by the pretrained components: precision names, and one clear error for missing weights."""
from __future__ import annotations

import os
import re
from contextlib import contextmanager
from typing import Iterator, Literal

import torch

from .errors import MissingWeightsError

Precision = Literal["float32", "float16", "bfloat16"]
# The one map of precisions: config names to torch dtypes, and the short names of exports' files.
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
SHORT_NAMES = {"float32": "fp32", "float16": "fp16", "bfloat16": "bf16"}
# Tokens in SD 1.x's CLIP text context: the text embedding's length, in the painter and in exports.
CLIP_CONTEXT_LENGTH = 77
HUB_ID = re.compile(r"[\w-][\w.-]*/[\w.-]+")  # owner/name; a folder path has other forms or exists


def torch_dtype(name: str) -> torch.dtype:
    if name not in DTYPES:
        raise ValueError(f"dtype must be one of {list(DTYPES)}, got {name!r}")
    return DTYPES[name]


@contextmanager
def explain_missing_weights(model: str, what: str, default_repo: str) -> Iterator[None]:
    """Turn the loaders' OSError for absent files into one error saying what to download where.

    ``model`` is what the user passed (a hub id or a folder); ``default_repo`` is the hub id to
    suggest when ``model`` is a folder.
    """
    try:
        yield
    except OSError as err:
        is_hub_id = HUB_ID.fullmatch(model) is not None and not os.path.exists(model)
        repo = model if is_hub_id else default_repo
        folder = os.path.join("checkpoints", model.split("/")[-1]) if is_hub_id else model
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise MissingWeightsError(
            f"{what} weights not found for model={model!r} ({reason}).\n"
            f"Download them once (needs network), e.g.\n"
            f"    hf download {repo} --local-dir {folder}\n"
            f"then pass model={folder} (set HF_HUB_OFFLINE=1 to keep loading offline)."
        ) from None


def missing_local_weights(model: str) -> str | None:
    """Why ``model`` (a folder or a hub id) cannot be loaded without the network, or None when
    its files are here: the folder exists, or the hub id is in the local Hugging Face cache.
    Cheap: nothing is loaded and the hub is never asked."""
    if os.path.isdir(model):
        return None
    if HUB_ID.fullmatch(model) is None:
        return f"no folder {model}"
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        snapshot_download(model, local_files_only=True)
    except LocalEntryNotFoundError:
        folder = os.path.join("checkpoints", model.split("/")[-1])
        return f"weights {model} are not on this machine (hf download {model} --local-dir {folder})"
    return None
