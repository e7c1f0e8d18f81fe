"""Datasets as plain data (no Lightning): folder layouts, prompts made from ground truth, and the
generated scenes. The Lightning DataModule that serves them is `paintseg_engine.run.datamodule`."""
from .protocols import PromptSettings, prompt_from_gt
from .readers import LAYOUTS, list_samples
from .synthetic import generate_dataset

__all__ = ["LAYOUTS", "PromptSettings", "generate_dataset", "list_samples", "prompt_from_gt"]
