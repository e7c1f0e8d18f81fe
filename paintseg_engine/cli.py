"""``paintseg``: the LightningCLI entry point (``paintseg predict --config configs/default.yaml``)."""
from __future__ import annotations

from lightning.pytorch.cli import LightningCLI

from .data.datamodule import PaintSegDataModule
from .module import PaintSegModule


def main(args: list[str] | None = None) -> None:
    LightningCLI(
        PaintSegModule,
        PaintSegDataModule,
        args=args,
        # Predict runs never fit, so a saved config would only clutter the output folder.
        save_config_callback=None,
    )


if __name__ == "__main__":
    main()
