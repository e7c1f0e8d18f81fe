from .datamodule import DatasetSpec, PaintSegDataModule, SegmentationFolder, prompt_from_gt
from .synthetic import generate_dataset

__all__ = ["DatasetSpec", "PaintSegDataModule", "SegmentationFolder", "generate_dataset", "prompt_from_gt"]
