"""The thread policy (threads.py) and what the quiet, quick commands promise."""
import subprocess
import sys

import cv2
import lightning as L
import pytest
import torch
from threadpoolctl import threadpool_info
from torch.utils.data import DataLoader

from paintseg_engine.amcp import AMCPConfig, Segmenter
from paintseg_engine.features import ColorTextureFeatures
from paintseg_engine.painters import OpenCVPainter
from paintseg_engine.prompts import BoxPrompt
from paintseg_engine.run.datamodule import collate_items
from paintseg_engine.run.module import PaintSegModule
from paintseg_engine.run.records import Item
from paintseg_engine.threads import choose_threads, use_threads, usable_cores
from tests.scenes import disc_scene
from tests.tiny_config import TINY_AMCP


def test_weight_free_components_get_one_thread():
    assert choose_threads("auto", (OpenCVPainter(), ColorTextureFeatures())) == 1


def test_a_network_gets_the_cores_shared_among_processes():
    network = torch.nn.Linear(2, 2)
    assert choose_threads("auto", (OpenCVPainter(), network)) == usable_cores()
    assert choose_threads("auto", (network,), processes=usable_cores() + 1) == 1  # never zero


def test_a_module_without_weights_counts_as_weight_free():
    assert choose_threads("auto", (torch.nn.ReLU(),)) == 1


def test_an_explicit_count_wins_and_is_set():
    before = torch.get_num_threads()
    try:
        assert use_threads(1, torch.nn.Linear(2, 2)) == 1
        assert torch.get_num_threads() == 1 and cv2.getNumThreads() == 1
        assert {pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"} == {1}
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("bad", [0, -2, "many", True, 1.5])
def test_a_bad_count_is_refused_with_the_range(bad):
    with pytest.raises(ValueError, match=r"'auto' or an integer >= 1"):
        choose_threads(bad, ())


def test_the_module_refuses_a_bad_count():
    with pytest.raises(ValueError, match="threads"):
        PaintSegModule(threads=0)


def test_segment_help_imports_no_torch_and_reads_as_plain_text():
    code = ("import sys; from paintseg_engine.commands.segment import build_parser; "
            "text = build_parser().format_help(); print(text); assert 'torch' not in sys.modules")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "--threads" in done.stdout and "``" not in done.stdout


def test_segment_refuses_a_bad_thread_count():
    done = subprocess.run([sys.executable, "-m", "paintseg_engine", "segment", "x.png", "--threads", "0"],
                          capture_output=True, text=True)
    assert done.returncode == 2 and "--threads must be auto or an integer >= 1" in done.stderr


@pytest.mark.parametrize("threads, expected", [("auto", 1), (2, 2)])
def test_a_predict_run_sets_the_threads_where_it_starts(threads, expected):
    image, _ = disc_scene()
    item = Item("disc", "d", image, BoxPrompt((10, 10, 50, 50)))
    before = torch.get_num_threads()
    torch.set_num_threads(3)
    try:
        trainer = L.Trainer(accelerator="cpu", devices=1, logger=False, enable_progress_bar=False,
                            enable_model_summary=False)
        [[prediction]] = trainer.predict(PaintSegModule(Segmenter(config=AMCPConfig(**TINY_AMCP)), threads=threads),
                                         DataLoader([item], batch_size=1, collate_fn=collate_items))
        assert prediction.failure is None and torch.get_num_threads() == expected
    finally:
        torch.set_num_threads(before)
