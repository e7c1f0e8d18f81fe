"""Writes each prediction as it comes, and the results table once at the end of predict.

The writer only receives predictions and writes them, through the run folder (folder.py):
per image the mask, the overlay and last the record, each atomically, so a record means the
image is finished and a restarted run skips it. An item that failed is written as a failure.

``on_error`` is the failure policy: ``stop`` ends the run at the first failed item (under DDP, at
the end of the run, once every rank has finished) with one message naming the file; ``skip``
records every failure (``failures.json`` per dataset, a ``failed`` column in the table) and goes
on. Either way the run fails when any item failed, unless the policy is ``skip``.

At the end, once on rank zero after every rank has finished: ``<dataset>/metrics.json``, the
dataset's ``failures.json``, and ``results.md`` / ``results.csv``, from the records made with
this run's settings of the datasets' current items only; ``compare_with`` adds the rows of other
runs' folders (e.g. the GrabCut baseline's). A current item with neither a record nor a failure
(a rank died) fails the run.
"""
from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any, Literal

import numpy as np
from lightning.pytorch.callbacks import BasePredictionWriter

from ..errors import RunFailed, RunFolderError
from ..imageio import save_png_atomic, write_json_atomic
from .records import Failure, Item, Prediction
from .results import run_rows, write_results
from .folder import RunFolder
from ..visualize import overlay

__all__ = ["PredictionWriter", "RunFailed"]


def images_of(batch: list[Item]) -> list:
    """The image of each prediction of ``batch``: a COCO image's once per instance."""
    return [item.image for item in batch for _ in (item.instances if item.instances is not None else [item])]


class PredictionWriter(BasePredictionWriter):
    """Args:
        output_dir: the run folder.
        overlays: write the mask over the image, prompt drawn, per item.
        compare_with: other run folders whose rows join the results table.
        title: the table's title.
        on_error: ``stop`` or ``skip`` (above).
        overwrite: remove outputs of other settings from ``output_dir`` instead of refusing.
        settings: what decides this run's results (model, data, prompt protocol, weights); a
            resume with other settings is refused. The CLI fills it from the resolved config.
    """

    def __init__(self, output_dir: str = "outputs", overlays: bool = True, compare_with: list[str] | None = None,
                 title: str = "Results", on_error: Literal["stop", "skip"] = "stop", overwrite: bool = False,
                 settings: dict[str, Any] | None = None):
        super().__init__(write_interval="batch")
        if on_error not in ("stop", "skip"):
            raise ValueError(f"on_error must be 'stop' or 'skip', got {on_error!r}")
        self.run = RunFolder(output_dir)
        self.compare_with = [RunFolder(p) for p in compare_with or [] if Path(p).resolve() != Path(output_dir).resolve()]
        self.overlays, self.title, self.on_error, self.overwrite = overlays, title, on_error, overwrite
        self.settings = settings or {}
        self.settings_key = ""
        self.coco_scopes_written: set[str] = set()

    def setup(self, trainer, pl_module, stage: str) -> None:
        # Rank zero claims the folder (refusing other settings, clearing a killed run's leftovers)
        # before any rank reads which items are finished or writes; then every rank holds it, so
        # no other run starts here while any of them lives.
        error = key = None
        self.coco_scopes_written = set()
        if trainer.is_global_zero:
            try:
                key = self.run.claim(self.settings, self.overwrite)
            except RunFolderError as err:
                error = str(err)
        # Every rank must learn of a refusal, or the others would wait for rank zero forever.
        error, self.settings_key = trainer.strategy.broadcast((error, key))
        if error:
            raise RunFailed(error)
        if not trainer.is_global_zero:
            self.run.join()

    def write_on_batch_end(self, trainer, pl_module, prediction: list[Prediction], batch_indices, batch: list[Item],
                           batch_idx, dataloader_idx=0) -> None:
        self.write_coco_scopes(batch)
        for pred, image in zip(prediction, images_of(batch)):
            if pred.failure is not None:
                self.write_failure(pred.failure, trainer.world_size)
                continue
            run, record = self.run, pred.record
            record.settings = self.settings_key
            save_png_atomic(run.mask_path(pred.dataset, pred.name), pred.mask.numpy().astype(np.uint8) * 255)
            if self.overlays:
                save_png_atomic(run.overlay_path(pred.dataset, pred.name), overlay(image, pred.mask, pred.prompt))
            run.clear_failure(pred.dataset, pred.name)
            write_json_atomic(run.record_path(pred.dataset, pred.name), record.to_json())
        if trainer.received_sigterm:  # Lightning notes SIGTERM, but its predict loop would run on to the end
            raise RunFailed(f"stopped by SIGTERM; the finished items are kept in {self.run.root}: the same command "
                            "resumes the run")

    def write_coco_scopes(self, batch: list[Item]) -> None:
        """A COCO dataset's scope, once per run: the end of a resumed run may see no item of it."""
        for item in batch:
            if item.coco_scope is not None and item.dataset not in self.coco_scopes_written:
                write_json_atomic(self.run.coco_scope_path(item.dataset), item.coco_scope.to_json())
                self.coco_scopes_written.add(item.dataset)

    def write_failure(self, failure: Failure, world_size: int) -> None:
        self.run.write_failure(failure)
        # One process can stop here; under DDP the other ranks would wait for this one forever.
        if self.on_error == "stop" and world_size == 1:
            raise RunFailed(f"{failure.dataset}/{failure.name}: {failure.error} (on_error: skip records such "
                            f"items in failures.json and goes on)")

    def teardown(self, trainer, pl_module, stage: str) -> None:
        # The end of a predict run on every rank, including a rank that had no item left to do
        # (Lightning skips the predict hooks of an empty loop, and the others would wait for it).
        if stage != "predict":
            return
        trainer.strategy.barrier("paintseg_results")
        if trainer.is_global_zero:
            self.write_table()
        trainer.strategy.barrier("paintseg_results_written")
        self.run.release()
        unfinished = self.run.unfinished()
        if unfinished:  # e.g. a rank died: the table above is short, and must not pass for complete
            count = sum(map(len, unfinished.values()))
            dataset, names = next(iter(unfinished.items()))
            raise RunFailed(f"{count} item(s) have neither a record nor a failure, e.g. {dataset}/{min(names)}; "
                            f"run again to finish them")
        failures = self.run.failures()  # every rank's, from the shared folder
        if failures and self.on_error == "stop":
            first = failures[0]
            raise RunFailed(f"{len(failures)} item(s) failed, first {first.dataset}/{first.name}: {first.error} "
                            f"(all in {self.run.root}/*/failures.json)")

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        self.run.release()  # a run stopped by a failure (or anything else) leaves the folder free

    def write_table(self) -> None:
        records = self.run.records(self.settings_key)
        failures = self.run.failures()
        for dataset in sorted({r.dataset for r in records} | {f.dataset for f in failures}):
            write_json_atomic(self.run.dataset_dir(dataset) / "failures.json",
                              [asdict(f) for f in failures if f.dataset == dataset])
        rows = run_rows(self.run, records, failures, write_coco_results=True)
        for row in rows:
            write_json_atomic(self.run.dataset_dir(row["dataset"]) / "metrics.json", row)
        for other in self.compare_with:
            rows += run_rows(other, other.current_records(), other.failures())
        print("\n" + write_results(rows, self.run.root, self.title))
        if failures:
            print(f"{len(failures)} item(s) failed and are not in the table's metrics: "
                  f"{self.run.root}/<dataset>/failures.json")
