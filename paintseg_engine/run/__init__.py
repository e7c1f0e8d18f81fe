"""The Lightning run: the DataModule that serves items, the thin LightningModule that segments
them, the writer that keeps them, the run folder that owns the layout, and the results table."""
from .datamodule import DatasetSpec, PaintSegDataModule, SegmentationFolder
from .module import PaintSegModule
from .writer import PredictionWriter, RunFailed

__all__ = ["DatasetSpec", "PaintSegDataModule", "PaintSegModule", "PredictionWriter", "RunFailed", "SegmentationFolder"]
