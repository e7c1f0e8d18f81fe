"""The run folder: one place that knows where a prediction run keeps what.

    <root>/settings.json                  the settings every record here was made with
    <root>/<dataset>/masks/<name>.png     the predicted mask (0 / 255)
    <root>/<dataset>/overlays/<name>.png  the mask over the image, prompt drawn
    <root>/<dataset>/records/<name>.json  metrics and timings; written last, so it marks the item finished
    <root>/<dataset>/failures/<name>.json an item that failed, and why (removed when a rerun finishes it)
    <root>/<dataset>/failures.json        all of the dataset's failures, at the end of a run
    <root>/<dataset>/items.json           the dataset's current items (after max_images): what the table counts
    <root>/<dataset>/metrics.json         the dataset's row of the results table
    <root>/<dataset>/coco_scope.json      a COCO dataset: the annotations, images and categories AP is computed on
    <root>/<dataset>/coco_results.json    a COCO dataset: every instance's mask as COCO results (RLE), at the end
    <root>/results.md, results.csv        the results table

The writer writes through it, the DataModule tells it the current items and asks which are
finished, and the results table reads records through it. A folder holds the records of one set
of settings: resuming with other settings is refused (or, when asked to overwrite, the old outputs
are removed first). An item is finished when it has a record of the settings the folder was last
claimed with; the table counts the finished and failed items among the dataset's current ones.

Every process of a run holds the folder's lock (rank zero claims it exclusively, then every rank
holds it shared until the end), so no other run starts in the folder while any of them is alive,
rank zero killed or not; the lock goes with the last process, however it ends.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ..errors import RunFolderError
from ..imageio import write_json_atomic
from .records import Failure, PredictionRecord

SETTINGS_FILE = "settings.json"
ITEMS_FILE = "items.json"
LOCK_FILE = ".lock"
TABLE_FILES = ("results.md", "results.csv")
# Shown when a resume is refused: this many of the settings that differ.
DIFFERENCES_SHOWN = 8


def settings_key(settings: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]


def as_stored(settings: dict[str, Any]) -> dict[str, Any]:
    """``settings`` as settings.json gives them back (tuples as lists, objects as strings), so a
    comparison with stored settings shows only real differences."""
    return json.loads(json.dumps(settings, default=str))


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """{"a.b": 1} from {"a": {"b": 1}}, so two settings can be compared key by key."""
    if isinstance(value, dict):
        return {k: v for key, item in value.items() for k, v in flatten(item, f"{prefix}{key}.").items()}
    if isinstance(value, list):
        return {k: v for i, item in enumerate(value) for k, v in flatten(item, f"{prefix}{i}.").items()}
    return {prefix.rstrip("."): value}


def differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    before, after = flatten(old), flatten(new)
    return [f"{key}: {before.get(key, '(unset)')!r} -> {after.get(key, '(unset)')!r}"
            for key in sorted(set(before) | set(after)) if before.get(key) != after.get(key)]


def listed(items: dict[str, set[str] | None], entry: PredictionRecord | Failure) -> bool:
    """Whether a record's or failure's item is among its dataset's current ``items`` (all are,
    for a dataset never listed)."""
    current = items.get(entry.dataset)
    return current is None or entry.name in current


def check_dataset_name(name: str) -> str:
    """A dataset name is a folder of the run: one plain path component."""
    if not name or name in (".", "..") or "/" in name or "\\" in name or name.startswith("."):
        raise ValueError(f"dataset name {name!r} must be a plain folder name (no '/', '\\\\', leading '.', or '..')")
    return name


class RunFolder:
    def __init__(self, root: str | Path):
        self.root = Path(root)
        self._lock = None

    # --- paths ----------------------------------------------------------------------------------

    def dataset_dir(self, dataset: str) -> Path:
        return self.root / check_dataset_name(dataset)

    def mask_path(self, dataset: str, name: str) -> Path:
        return self.dataset_dir(dataset) / "masks" / f"{name}.png"

    def overlay_path(self, dataset: str, name: str) -> Path:
        return self.dataset_dir(dataset) / "overlays" / f"{name}.png"

    def record_path(self, dataset: str, name: str) -> Path:
        return self.dataset_dir(dataset) / "records" / f"{name}.json"

    def failure_path(self, dataset: str, name: str) -> Path:
        return self.dataset_dir(dataset) / "failures" / f"{name}.json"

    def coco_scope_path(self, dataset: str) -> Path:
        return self.dataset_dir(dataset) / "coco_scope.json"

    def coco_results_path(self, dataset: str) -> Path:
        return self.dataset_dir(dataset) / "coco_results.json"

    def datasets(self) -> list[str]:
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and not p.name.startswith(".")) \
            if self.root.is_dir() else []

    # --- claiming the folder for a run ----------------------------------------------------------

    def claim(self, settings: dict[str, Any], overwrite: bool = False) -> str:
        """Take the folder for a run with ``settings``; returns their key.

        Refuses a folder another live run is writing into, and one holding outputs of other
        settings unless ``overwrite`` (then those outputs are removed). Removes the temporary
        files of a run that was killed mid-write.
        """
        self.lock(fcntl.LOCK_EX)  # no process of another run holds the folder, even shared
        try:
            settings, key = as_stored(settings), settings_key(settings)
            found = self.read_settings()
            has_outputs = bool(self.datasets())
            if (found is not None and found["key"] != key) or (found is None and has_outputs):
                if not overwrite:
                    changed = differences(found["settings"], settings) if found else ["no settings.json (an older run)"]
                    shown = "; ".join(changed[:DIFFERENCES_SHOWN]) + (" ..." if len(changed) > DIFFERENCES_SHOWN else "")
                    raise RunFolderError(f"{self.root} holds outputs made with other settings ({shown}); resume with "
                                         f"the same settings, choose another output_dir, or pass --overwrite")
                self.remove_outputs()
            self.remove_leftovers()
            write_json_atomic(self.root / SETTINGS_FILE, {"key": key, "settings": settings})
            self.lock(fcntl.LOCK_SH)  # now shared with this run's other ranks (they ``join``)
        except BaseException:
            self.release()  # a refused claim holds nothing: a retry in this process must not find it locked
            raise
        return key

    def join(self) -> None:
        """Hold the folder rank zero claimed, shared, for as long as this rank runs."""
        self.lock(fcntl.LOCK_SH)

    def lock(self, mode: int) -> None:
        """Hold the folder's lock (``fcntl.LOCK_EX`` or ``LOCK_SH``) until ``release`` (or the process
        ends, however it ends); a lock already held here changes to ``mode``."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            self._lock = self._lock or open(self.root / LOCK_FILE, "a")
        except OSError as err:
            raise RunFolderError(f"output folder {self.root} is not writable ({err.strerror})") from None
        try:
            fcntl.flock(self._lock, mode | fcntl.LOCK_NB)
        except BlockingIOError:
            self.release()
            raise RunFolderError(f"another run is writing into {self.root} (a process of it is still alive); "
                                 f"wait for it or choose another output_dir") from None

    def release(self) -> None:
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def read_settings(self) -> dict[str, Any] | None:
        path = self.root / SETTINGS_FILE
        return json.loads(path.read_text()) if path.is_file() else None

    def remove_outputs(self) -> None:
        for dataset in self.datasets():
            shutil.rmtree(self.root / dataset)
        for name in (SETTINGS_FILE, *TABLE_FILES):
            (self.root / name).unlink(missing_ok=True)

    def remove_leftovers(self) -> None:
        """Temporary files of atomic writes that a killed run never renamed into place."""
        for tmp in self.root.rglob(".*.tmp"):
            tmp.unlink(missing_ok=True)

    # --- items ----------------------------------------------------------------------------------

    def write_items(self, dataset: str, names: list[str]) -> None:
        write_json_atomic(self.dataset_dir(dataset) / ITEMS_FILE, sorted(names))

    def items(self, dataset: str) -> set[str] | None:
        """The dataset's current items, as the last run listed them (None: never listed)."""
        path = self.dataset_dir(dataset) / ITEMS_FILE
        return set(json.loads(path.read_text())) if path.is_file() else None

    def finished(self, dataset: str) -> set[str]:
        """Items with a record of the settings the folder was last claimed with (none before a claim)."""
        found = self.read_settings()
        return {r.name for r in self._read_records(f"{check_dataset_name(dataset)}/records/*.json")
                if found and r.settings == found["key"]}

    def unfinished(self) -> dict[str, set[str]]:
        """Per dataset, current items with neither a record of the current settings nor a failure."""
        done = {(r.dataset, r.name) for r in self.current_records()} | {(f.dataset, f.name) for f in self.failures()}
        return {dataset: left for dataset in self.datasets()
                if (left := {n for n in self.items(dataset) or () if (dataset, n) not in done})}

    def write_failure(self, failure: Failure) -> None:
        write_json_atomic(self.failure_path(failure.dataset, failure.name), asdict(failure))

    def clear_failure(self, dataset: str, name: str) -> None:
        self.failure_path(dataset, name).unlink(missing_ok=True)

    def _read_records(self, pattern: str) -> list[PredictionRecord]:
        return [PredictionRecord.from_json(json.loads(p.read_text())) for p in sorted(self.root.glob(pattern))]

    def current_items(self) -> dict[str, set[str] | None]:
        return {dataset: self.items(dataset) for dataset in self.datasets()}

    def records(self, key: str | None = None) -> list[PredictionRecord]:
        """The records of the datasets' current items (of the settings ``key`` only, when given),
        datasets in name order: an item since removed from its dataset, or now beyond max_images, is not counted."""
        items = self.current_items()
        return [r for r in self._read_records("*/records/*.json")
                if (key is None or r.settings == key) and listed(items, r)]

    def current_records(self) -> list[PredictionRecord]:
        """The records made with the settings the folder was last claimed with."""
        found = self.read_settings()
        return self.records(found["key"] if found else None)

    def failures(self, dataset: str | None = None) -> list[Failure]:
        """The failures of the datasets' current items."""
        pattern = f"{check_dataset_name(dataset)}/failures/*.json" if dataset else "*/failures/*.json"
        items = self.current_items()
        return [f for f in (Failure(**json.loads(p.read_text())) for p in sorted(self.root.glob(pattern)))
                if listed(items, f)]
