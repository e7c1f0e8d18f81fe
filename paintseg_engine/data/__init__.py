from .datamodule import DatasetSpec, PaintSegDataModule, SegmentationFolder
from .protocols import PromptSettings, prompt_from_gt
from .readers import LAYOUTS, list_samples
from .synthetic import generate_dataset

__all__ = ["LAYOUTS", "DatasetSpec", "PaintSegDataModule", "PromptSettings", "SegmentationFolder",
           "generate_dataset", "list_samples", "prompt_from_gt"]
