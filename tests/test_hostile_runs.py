"""Runs under hostile conditions: a changed dataset, huge images and decompression bombs, broken
links, NaN pixels, an interrupted table, long names, a full disk, settings out of range."""
import errno
import gc
import json
import os
import signal
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from paintseg_engine.amcp import Segmenter, SettingsError
from paintseg_engine.baselines import GrabCutSegmenter
from paintseg_engine.commands.predict import fill
from paintseg_engine.data import generate_dataset
from paintseg_engine.errors import ImageLoadError, ImageTooLargeError
from paintseg_engine.imageio import load_image, save_png_atomic
from paintseg_engine.limits import check_pixel_count
from paintseg_engine.run.datamodule import SegmentationFolder
from paintseg_engine.run.folder import RunFolder, RunFolderError, settings_key
from paintseg_engine.run.records import PredictionRecord
from paintseg_engine.run.results import COLUMNS, write_results

from tests.scenes import png_header
from tests.run_helpers import REPO, paintseg, paintseg_in_process, run_in_process, write_config


@pytest.fixture
def dataset(tmp_path):
    return generate_dataset(tmp_path / "data", num_images=3, height=40, width=56, seed=5)


def table_row(out: Path) -> str:
    return next(line for line in (out / "results.md").read_text().splitlines() if line.startswith("| gen |"))


# --- the table counts the dataset's current items -----------------------------------------------

def test_an_image_removed_from_the_dataset_leaves_the_table(tmp_path, dataset):
    out = tmp_path / "out"
    run_in_process(dataset, out)
    assert table_row(out).startswith("| gen | box | amcp | 3 | 0 |")
    (dataset / "images/scene_001.png").unlink()
    run_in_process(dataset, out)
    assert table_row(out).startswith("| gen | box | amcp | 2 | 0 |")
    assert json.loads((out / "gen/metrics.json").read_text())["images"] == 2


def test_max_images_caps_the_table_when_the_dataset_grows(tmp_path, dataset):
    out = tmp_path / "out"
    run_in_process(dataset, out, max_images=2)
    image, mask = Image.open(dataset / "images/scene_000.png"), Image.open(dataset / "masks/scene_000.png")
    image.save(dataset / "images/scene_003.png")
    mask.save(dataset / "masks/scene_003.png")
    run_in_process(dataset, out, max_images=2)
    assert table_row(out).startswith("| gen | box | amcp | 2 | 0 |")


def test_finished_means_a_record_of_the_settings_the_folder_was_claimed_with(tmp_path):
    run = RunFolder(tmp_path / "run")
    run.claim({"a": 2})
    for name, settings in (("old", {"a": 1}), ("new", {"a": 2})):
        record = PredictionRecord(name, "gen", "box", "amcp", 0.5, 0.5, 0.5, 1.0, settings=settings_key(settings))
        save_json = run.record_path("gen", name)
        save_json.parent.mkdir(parents=True, exist_ok=True)
        save_json.write_text(json.dumps(record.to_json()))
    assert run.finished("gen") == {"new"}  # the other settings' record is redone, not counted


# --- bounded work per image ---------------------------------------------------------------------

def test_an_image_above_the_pixel_limit_is_refused_in_one_line_naming_it_and_the_limit(tmp_path):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        with pytest.raises(ImageTooLargeError, match=r"big.png: 3000x2000 is 6,000,000 pixels, more than the "
                                                     r"limit of 1,000,000"):
            load_image(png_header(tmp_path / "big.png", 3000, 2000), max_pixels=1_000_000)
        gc.collect()
    assert not [w for w in caught if issubclass(w.category, ResourceWarning)]  # the refused file was closed
    with pytest.raises(ImageLoadError, match="x.jpg"):
        check_pixel_count(1001, 1000, 1_000_000, "x.jpg")
    check_pixel_count(1000, 1000, 1_000_000, "x.jpg")  # at the limit: accepted


def test_a_decompression_bomb_is_an_image_load_error_naming_the_file(tmp_path):
    bomb = png_header(tmp_path / "bomb.png", 20000, 20000)  # 400 MP: above PIL's own limit too
    with pytest.raises(ImageLoadError, match="bomb.png"):
        load_image(bomb, max_pixels=10**12)
    with pytest.raises(ImageLoadError, match="bomb.png"):
        load_image(bomb)


def test_a_decompression_bomb_is_an_item_failure_and_the_run_goes_on(tmp_path, dataset):
    png_header(dataset / "images/bomb.png", 20000, 20000)
    Image.open(dataset / "masks/scene_000.png").save(dataset / "masks/bomb.png")
    out = tmp_path / "out"
    run_in_process(dataset, out, on_error="skip")
    assert table_row(out).startswith("| gen | box | amcp | 3 | 1 |")
    [failure] = json.loads((out / "gen/failures.json").read_text())
    assert failure["name"] == "bomb" and "bomb.png" in failure["error"]


def test_max_pixels_is_a_setting_with_its_range(dataset):
    with pytest.raises(ValueError, match="max_pixels must be >= 1, got 0"):
        SegmentationFolder(dataset, "gen", max_pixels=0)


# --- broken links, NaN pixels -------------------------------------------------------------------

def test_dangling_and_looping_links_are_reported_items_not_skipped(dataset):
    images = dataset / "images"
    os.symlink(images / "absent.png", images / "dangling.png")
    os.symlink(images / "loop_b.png", images / "loop_a.png")
    os.symlink(images / "loop_a.png", images / "loop_b.png")
    folder = SegmentationFolder(dataset, "gen")
    errors = {item.name: item.error for item in folder}
    assert len(errors) == 6 and errors["scene_000"] is None
    assert "dangling.png is a symbolic link" in errors["dangling"] and "points to nothing" in errors["dangling"]
    assert "loops" in errors["loop_a"] and "loops" in errors["loop_b"]


def test_a_nan_image_is_refused():
    image = torch.full((3, 24, 32), float("nan"))
    with pytest.raises(ValueError, match="NaN"):
        Segmenter().set_image(image)


# --- the folder and the table -------------------------------------------------------------------

def test_a_refused_resume_lists_only_real_differences(tmp_path):
    first = RunFolder(tmp_path / "run")
    first.claim({"scales": (1.0, 3.0), "size": 64})
    first.release()
    with pytest.raises(RunFolderError) as refused:
        RunFolder(tmp_path / "run").claim({"scales": (1.0, 3.0), "size": 96})
    assert "size: 64 -> 96" in str(refused.value) and "scales" not in str(refused.value)


def test_ctrl_c_while_the_table_is_written_leaves_both_files_agreeing(tmp_path, monkeypatch):
    rows = [{**dict.fromkeys(COLUMNS), "dataset": "gen", "images": 1, "failed": 0}]
    write_results(rows, tmp_path)
    replace = os.replace

    def replace_then_ctrl_c(source, target):
        replace(source, target)
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C right after the first file is in place

    monkeypatch.setattr(os, "replace", replace_then_ctrl_c)
    # Ctrl-C as Python handles it by default, whatever an earlier test in this worker left installed.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            write_results([{**rows[0], "images": 2}], tmp_path)
    finally:
        signal.signal(signal.SIGINT, previous)
    monkeypatch.undo()
    assert "| gen | - | - | 2 |" in (tmp_path / "results.md").read_text()
    assert (tmp_path / "results.csv").read_text().splitlines()[1].startswith("gen,,,2,")
    assert not list(tmp_path.glob(".*.tmp"))


def test_a_name_near_the_file_system_limit_is_written(tmp_path):
    path = tmp_path / ("x" * 245 + ".png")  # the temporary file's name must not pass 255 bytes
    save_png_atomic(path, np.zeros((2, 2), np.uint8))
    assert load_image(path).shape == (3, 2, 2) and not list(tmp_path.glob(".*.tmp"))


def test_output_dir_braces_other_than_method_and_prompt_are_kept():
    assert fill("outputs/run{1}/{method}/{prompt}", "box", "amcp") == "outputs/run{1}/amcp/box"


def test_a_full_disk_ends_the_run_in_one_line_naming_the_file(tmp_path, dataset, monkeypatch):
    def disk_full(path, array):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr("paintseg_engine.run.writer.save_png_atomic", disk_full)
    monkeypatch.chdir(REPO)
    with pytest.raises(SystemExit) as ended:
        paintseg_in_process("predict", "--config", write_config(tmp_path, dataset, tmp_path / "out"))
    message = str(ended.value.code)
    assert message.startswith("paintseg: error: ") and "No space left on device" in message
    assert "scene_000.png" in message and "\n" not in message


def test_grabcut_iterations_below_one_are_refused_with_the_range():
    for iterations in (0, -1):
        with pytest.raises(SettingsError, match=r"iterations=.* \(allowed: >= 1\)"):
            GrabCutSegmenter(iterations=iterations)


def test_a_rank_that_is_not_zero_holds_the_folder_too(tmp_path):
    claimed = RunFolder(tmp_path / "run")
    claimed.claim({"a": 1})
    other_rank = RunFolder(tmp_path / "run")
    other_rank.join()
    claimed.release()  # rank zero gone: its other rank still holds the folder
    with pytest.raises(RunFolderError, match="another run is writing"):
        RunFolder(tmp_path / "run").claim({"a": 2}, overwrite=True)
    other_rank.release()
    RunFolder(tmp_path / "run").claim({"a": 2}, overwrite=True)


def test_paintseg_predict_takes_max_pixels_from_the_data_config(tmp_path, dataset):
    code, printed = paintseg("predict", "--config", write_config(tmp_path, dataset, tmp_path / "out"),
                             "--data.max_pixels", "1000", "--on_error", "skip")
    assert code == 0, printed
    failures = json.loads((tmp_path / "out/gen/failures.json").read_text())
    assert len(failures) == 3 and all("more than the limit of 1,000" in f["error"] for f in failures)


def test_paintseg_results_merges_runs_refuses_a_non_run_and_fails_on_a_short_run(tmp_path, dataset):
    from paintseg_engine.commands.results import main as results

    whole, short = tmp_path / "whole", tmp_path / "short"
    run_in_process(dataset, whole)
    (dataset / "images/scene_002.png").write_bytes(b"broken")
    run_in_process(dataset, short)
    results([str(whole), "--out", str(tmp_path / "one")])  # a complete run: the table, no error
    assert "| gen | box | amcp | 3 | 0 |" in (tmp_path / "one/results.md").read_text()

    with pytest.raises(SystemExit) as short_run:
        results([str(whole), str(short), "--out", str(tmp_path / "both")])
    assert f"{short}: 0 item(s) unfinished, 1 failed" in str(short_run.value) and str(whole) + ":" not in str(short_run.value)
    assert "| gen | box | amcp | 2 | 1 |" in (tmp_path / "both/results.md").read_text()

    with pytest.raises(SystemExit, match=r"not a run folder \(no settings.json\)") as not_a_run:
        results([str(tmp_path / "typo"), "--out", str(tmp_path / "none")])
    assert str(tmp_path / "typo") in str(not_a_run.value) and not (tmp_path / "none").exists()

    code, printed = paintseg("results", whole, "--out", tmp_path / "door")  # the door, with no runpy warning
    assert code == 0 and "Warning" not in printed and (tmp_path / "door/results.csv").is_file()
