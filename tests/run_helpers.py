"""Helpers for the tests of dataset runs: the smallest config, ``paintseg`` in a process of its
own, and a predict run in this process."""
from __future__ import annotations

import multiprocessing
import os
import runpy
import sys
import tempfile
import traceback
from pathlib import Path
from unittest import mock

from paintseg_engine.amcp import AMCPConfig, Segmenter
from paintseg_engine.run.datamodule import PaintSegDataModule

REPO = Path(__file__).resolve().parents[1]
TINY_CONFIG = """
seed_everything: 0
trainer: {{accelerator: cpu, devices: 1, logger: false, enable_progress_bar: false}}
output_dir: {out}
model:
  segmenter:
    class_path: paintseg_engine.Segmenter
    init_args:
      config: {{frame_size: 64, iterations: 2, num_samples: 2, log_contrast: true, outpaint_region: background}}
data:
  datasets:
    - {{name: gen, root: {root}}}
"""


def write_config(tmp_path, root, out, name="run.yaml"):
    path = tmp_path / name
    path.write_text(TINY_CONFIG.format(out=out, root=root))
    return path


# ``paintseg`` runs fork from a server that has imported the commands' modules once: Lightning's
# import alone takes 7 s here, and this suite runs the command some twenty times. Each run is still
# a process of its own (its state, signals, exit code and output its own; DDP's other ranks are
# fresh interpreters as always). What a fresh interpreter's start-up does (thread defaults, imports,
# the door's speed) is tested by the tests that start one themselves: kills, threads, missing weights.
PRELOADED = ["paintseg_engine.commands.predict", "paintseg_engine.commands.results"]
COMMAND_TIMEOUT = 300  # seconds


def _command_child(args: list[str], cwd: str, environ: dict, log: str) -> None:
    """In the forked process: ``python -m paintseg_engine *args`` in ``cwd`` with ``environ``,
    stdout and stderr both into the file ``log``; exits with the command's code."""
    output = os.open(log, os.O_WRONLY | os.O_APPEND)
    os.dup2(output, 1)
    os.dup2(output, 2)
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(environ)
    sys.argv = ["paintseg", *args]
    code = 0
    try:
        runpy.run_module("paintseg_engine", run_name="__main__", alter_sys=True)
    except SystemExit as done:  # as the interpreter reads it: None 0, a number itself, a message 1
        if isinstance(done.code, str):
            print(done.code, file=sys.stderr)
        code = done.code if isinstance(done.code, int) else 0 if done.code is None else 1
    except BaseException:  # noqa: BLE001 - an uncaught error, as the interpreter would print it
        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def paintseg(*args, cwd=REPO):
    """``paintseg *args`` in a process of its own (see PRELOADED): its exit code and everything it printed."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOADED)
    with tempfile.NamedTemporaryFile("r", suffix=".log") as log:
        child = context.Process(target=_command_child, args=([str(a) for a in args], str(cwd), dict(os.environ),
                                                             log.name))
        child.start()
        child.join(COMMAND_TIMEOUT)
        if child.exitcode is None:
            child.kill()
            child.join()
            raise TimeoutError(f"paintseg {' '.join(map(str, args))} ran over {COMMAND_TIMEOUT} s:\n{log.read()[-2000:]}")
        return child.exitcode, log.read()


def paintseg_in_process(*args) -> None:
    """``paintseg predict ...`` in this process: for the runs a test only prepares or compares with,
    where what the command prints in a fresh process is not what it checks (no start-up cost)."""
    from paintseg_engine.commands.predict import main

    with mock.patch.object(sys, "argv", ["paintseg"]):  # LightningCLI reads args=, not pytest's argv
        main(list(map(str, args)))


def run_in_process(dataset: Path, out: Path, on_error: str = "skip", settings: dict | None = None,
                   overwrite: bool = False, **data) -> None:
    """A predict run of the smallest AMCP in this process (no start-up cost): ``data`` goes to the DataModule."""
    import lightning as L

    from paintseg_engine.run.module import PaintSegModule
    from paintseg_engine.run.writer import PredictionWriter

    writer = PredictionWriter(str(out), on_error=on_error, settings=settings or {"a": 1}, overwrite=overwrite)
    trainer = L.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, callbacks=[writer])
    trainer.predict(PaintSegModule(Segmenter(config=AMCPConfig(frame_size=64, iterations=1, num_samples=2))),
                    datamodule=PaintSegDataModule([{"name": "gen", "root": str(dataset)}], run_dir=str(out), **data),
                    return_predictions=False)
