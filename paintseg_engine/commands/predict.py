"""``paintseg``: the LightningCLI entry point (``paintseg predict --config configs/default.yaml``).

The CLI composes a run: the model and the DataModule from the config, the prediction writer as
its own ``writer`` section, and one ``output_dir`` (``{method}`` and ``{prompt}`` filled in, so
one dataset config serves every model config and prompt) that it hands to both the writer and
the DataModule (which skips the items finished there). It gives the writer the resolved settings,
so a resume with other settings is refused.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Literal

import yaml
from lightning.pytorch.cli import LightningCLI

from ..build import check_model_section, legacy_key_message, method_of
from ..errors import USER_ERRORS, ConfigError
from ..run.datamodule import PaintSegDataModule
from ..run.module import PaintSegModule
from ..run.writer import PredictionWriter
# DataModule settings that change how a run is executed, not what it computes.
EXECUTION_ONLY = ("run_dir", "batch_size", "num_workers")


def fill(template: str, prompt: str, segmenter) -> str:
    """``{prompt}`` and ``{method}`` filled in; any other brace is the folder's own (``run{1}``)."""
    return template.replace("{prompt}", prompt).replace("{method}", method_of(segmenter))


def fill_all(templates: list[str], prompt: str, segmenter) -> list[str]:
    return [fill(t, prompt, segmenter) for t in templates]


def weights_fingerprints(model: PaintSegModule) -> dict[str, str]:
    """The pretrained components' weights, hashed: a folder's files may change under the same name."""
    from ..runtime.manifest import weights_fingerprint

    return {name: weights_fingerprint(part) for name, part in model.components.items()}


def check_legacy_keys(args: list[str]) -> None:
    """Refuse, in one line naming the new key, a config file or an argument of the model section
    as it was before ``model.segmenter`` (``model.painter``, ``model.amcp``, ``model.method``, ...)."""
    for index, arg in enumerate(args):
        if arg.startswith("--model."):
            message = legacy_key_message(arg[len("--model."):].split("=")[0], f"argument {arg.split('=')[0]}")
            if message:
                raise ConfigError(message)
        path = arg[len("--config="):] if arg.startswith("--config=") else (
            args[index + 1] if arg == "--config" and index + 1 < len(args) else None)
        if path and Path(path).is_file():
            config = yaml.safe_load(Path(path).read_text())
            if isinstance(config, dict) and isinstance(config.get("model"), dict):
                check_model_section(config["model"], f"config {path}")


class PaintSegCLI(LightningCLI):
    @staticmethod
    def subcommands() -> dict[str, set[str]]:
        return {"predict": {"model", "dataloaders", "datamodule"}}  # nothing here trains

    def add_arguments_to_parser(self, parser) -> None:
        parser.add_lightning_class_args(PredictionWriter, "writer")
        parser.add_argument("--output_dir", default="outputs/{method}/{prompt}",
                            help="the run folder ({method} and {prompt} are filled in)")
        parser.add_argument("--compare_with", type=list[str], default=[],
                            help="run folders whose rows join the results table ({method}, {prompt} filled in)")
        parser.add_argument("--overwrite", type=bool, default=False,
                            help="remove outputs of other settings from output_dir instead of refusing to resume")
        parser.add_argument("--on_error", type=Literal["stop", "skip"], default="stop",
                            help="an item that fails: stop the run, or record it in failures.json and go on")
        parser.link_arguments("overwrite", "writer.overwrite")
        parser.link_arguments("on_error", "writer.on_error")
        run = ("output_dir", "data.prompt", "model.segmenter")
        parser.link_arguments(run, "writer.output_dir", compute_fn=fill)
        parser.link_arguments(run, "data.run_dir", compute_fn=fill)
        parser.link_arguments(("compare_with", "data.prompt", "model.segmenter"), "writer.compare_with",
                              compute_fn=fill_all)

    def before_predict(self) -> None:
        config = self.config[self.subcommand]
        data = {k: v for k, v in config.data.as_dict().items() if k not in EXECUTION_ONLY}
        settings = {"model": config.model.as_dict(), "data": data, "seed": config.seed_everything,
                    "weights": weights_fingerprints(self.model)}
        for callback in self.trainer.callbacks:
            if isinstance(callback, PredictionWriter):
                callback.settings = settings
        if self.config_init[self.subcommand].get("return_predictions") is None:
            self.config_init[self.subcommand]["return_predictions"] = False  # the writer has them; keep none in memory


def user_error(error: BaseException) -> BaseException | None:
    """The user's error behind ``error``, if any: the config parser wraps what a class raised."""
    while error is not None and not isinstance(error, USER_ERRORS):
        error = error.__cause__ or error.__context__
    return error


def main(args: list[str] | None = None) -> None:
    try:
        check_legacy_keys(sys.argv[1:] if args is None else args)
        PaintSegCLI(
            PaintSegModule,
            PaintSegDataModule,
            args=args,
            # Predict runs never fit: a saved config would only clutter the folder, optimizers are moot.
            save_config_callback=None,
            auto_configure_optimizers=False,
        )
    except Exception as error:
        cause = user_error(error)
        if cause is None:
            raise
        sys.exit(f"paintseg: error: {cause}")


if __name__ == "__main__":
    main()
