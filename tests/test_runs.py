"""Dataset runs that never lie: failures, resume with settings, bad files, leftovers, DDP."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from paintseg_engine.amcp import AMCPConfig
from paintseg_engine.data import PromptSettings, generate_dataset
from paintseg_engine.run.datamodule import DatasetSpec, PaintSegDataModule, SegmentationFolder
from paintseg_engine.features import ColorTextureFeatures
from paintseg_engine.imageio import load_image, load_mask, save_png_atomic
from paintseg_engine.painters import OpenCVPainter
from paintseg_engine.run.folder import RunFolder, RunFolderError
from tests.run_helpers import REPO, paintseg, paintseg_in_process, run_in_process, write_config

@pytest.fixture
def dataset(tmp_path):
    return generate_dataset(tmp_path / "data", num_images=4, height=40, width=56, seed=5)


def add_bad_files(root: Path) -> dict[str, str]:
    """Each kind of bad file the issue names, and a word of the failure message it must give."""
    image = np.asarray(Image.open(root / "images/scene_000.png"))
    mask = np.asarray(Image.open(root / "masks/scene_000.png"))
    (root / "images/corrupt.png").write_bytes(b"\x89PNG not really")
    Image.fromarray(mask).save(root / "masks/corrupt.png")
    (root / "images/zero.png").write_bytes(b"")
    Image.fromarray(mask).save(root / "masks/zero.png")
    Image.fromarray(image).save(root / "images/othersize.png")
    Image.fromarray(mask[:-3]).save(root / "masks/othersize.png")
    Image.fromarray(image).save(root / "images/nomask.png")
    Image.fromarray(image).save(root / "images/void.png")
    Image.fromarray(np.full_like(mask, 128)).save(root / "masks/void.png")
    Image.fromarray(image).save(root / "images/twice.png")
    Image.fromarray(image).save(root / "images/twice.jpg")
    Image.fromarray(mask).save(root / "masks/twice.png")
    (root / "images/._scene_000.png").write_bytes(b"\x00\x05\x16\x07 macOS resource fork")
    return {"corrupt": "cannot be read", "zero": "cannot be read", "othersize": "HxW", "nomask": "no ground-truth mask",
            "void": "all void", "twice": "share the name"}


def test_skip_records_each_bad_file_and_the_table_counts_them(tmp_path, dataset):
    expected = add_bad_files(dataset)
    out = tmp_path / "out"
    code, printed = paintseg("predict", "--config", write_config(tmp_path, dataset, out), "--on_error", "skip")
    assert code == 0, printed
    failures = {f["name"]: f["error"] for f in json.loads((out / "gen/failures.json").read_text())}
    assert set(failures) == set(expected)
    assert all(word in failures[name] for name, word in expected.items()), failures
    assert sorted(p.stem for p in (out / "gen/records").glob("*.json")) == [f"scene_{i:03d}" for i in range(4)]
    assert "| gen | box | amcp | 4 | 6 |" in (out / "results.md").read_text()
    assert "6 item(s) failed" in printed


def test_stop_ends_with_one_line_naming_the_file_and_keeps_what_was_done(tmp_path, dataset):
    (dataset / "images/scene_002.png").write_bytes(b"broken")
    out = tmp_path / "out"
    code, printed = paintseg("predict", "--config", write_config(tmp_path, dataset, out))
    assert code != 0
    assert "scene_002.png: cannot be read" in printed and "Traceback" not in printed
    assert sorted(p.stem for p in (out / "gen/records").glob("*.json")) == ["scene_000", "scene_001"]


def test_resume_with_other_settings_is_refused_and_overwrite_starts_afresh(tmp_path, dataset):
    out = tmp_path / "out"
    config = write_config(tmp_path, dataset, out)
    paintseg_in_process("predict", "--config", config, "--model.segmenter.init_args.config.iterations", "0")
    code, printed = paintseg("predict", "--config", config)
    assert code != 0 and "other settings (model.segmenter.init_args.config.iterations: 0 -> 2)" in printed and "Traceback" not in printed
    paintseg_in_process("predict", "--config", config, "--overwrite", "true")
    records = [json.loads(p.read_text()) for p in (out / "gen/records").glob("*.json")]
    key = json.loads((out / "settings.json").read_text())["key"]
    assert len(records) == 4 and all(r["settings"] == key and len(r["timings"]) == 2 for r in records)
    metrics = json.loads((out / "gen/metrics.json").read_text())
    assert metrics["iou"] == pytest.approx(np.mean([r["iou"] for r in records]), abs=1e-4)


def test_metrics_come_from_records_of_the_current_settings_only(tmp_path):
    run = RunFolder(tmp_path / "run")
    key = run.claim({"a": 1})
    for name, settings, iou in (("x", key, 0.9), ("y", "stale", 0.1)):
        path = run.record_path("d", name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"name": name, "dataset": "d", "prompt": "box", "method": "amcp", "iou": iou,
                                    "prompt_iou": 0.5, "fbeta": 0.9, "seconds": 1.0, "settings": settings}))
    assert [r.name for r in run.current_records()] == ["x"]


def test_a_rerun_of_a_finished_folder_does_no_work_and_keeps_its_table(tmp_path, dataset):
    out = tmp_path / "out"
    config = write_config(tmp_path, dataset, out)
    paintseg_in_process("predict", "--config", config)
    stamps = {p: p.stat().st_mtime_ns for p in (out / "gen/records").glob("*.json")}
    code, printed = paintseg("predict", "--config", config)
    assert code == 0 and "| gen | box | amcp | 4 | 0 |" in printed
    assert {p: p.stat().st_mtime_ns for p in (out / "gen/records").glob("*.json")} == stamps
    # It says so in one line, with none of Lightning's noise: no empty-dataloader warning, no adverts.
    assert printed.count("every item is finished already") == 1
    assert "across ranks is zero" not in printed and "Tip:" not in printed and "LeafSpec" not in printed


def test_killed_run_leftovers_are_removed_and_outputs_follow_the_umask(tmp_path):
    run = RunFolder(tmp_path / "run")
    leftover = tmp_path / "run/d/masks/.x.png.abc.tmp"
    leftover.parent.mkdir(parents=True)
    leftover.write_bytes(b"half")
    run.claim({"a": 1}, overwrite=True)
    assert not leftover.exists()
    old = os.umask(0o022)
    try:
        save_png_atomic(tmp_path / "m.png", np.zeros((2, 2), np.uint8))
    finally:
        os.umask(old)
    assert (tmp_path / "m.png").stat().st_mode & 0o777 == 0o644


def test_a_second_run_into_the_same_folder_is_refused(tmp_path):
    first = RunFolder(tmp_path / "run")
    first.claim({"a": 1})
    with pytest.raises(RunFolderError, match="another run is writing"):
        RunFolder(tmp_path / "run").claim({"a": 1})
    first.release()
    RunFolder(tmp_path / "run").claim({"a": 1})


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_output_folder_is_refused_before_any_work(tmp_path):
    (tmp_path / "ro").mkdir(mode=0o555)
    with pytest.raises(RunFolderError, match="not writable"):
        RunFolder(tmp_path / "ro/run").claim({"a": 1})


def test_a_read_only_output_folder_is_refused_before_any_work_even_as_root(tmp_path, dataset):
    blocker = tmp_path / "file"
    blocker.write_text("a file where the output folder should go")
    code, printed = paintseg("predict", "--config", write_config(tmp_path, dataset, blocker / "out"))
    assert code != 0 and "not writable" in printed and "Traceback" not in printed


def test_dataset_names_must_be_plain_and_distinct(tmp_path, dataset):
    for name in ("a/b", "..", "", ".hidden"):
        with pytest.raises(ValueError, match="plain folder name"):
            DatasetSpec(name, str(dataset))
    with pytest.raises(ValueError, match="repeated"):
        PaintSegDataModule([{"name": "a", "root": str(dataset)}, {"name": "a", "root": str(dataset)}])


def test_an_empty_image_folder_is_an_error(tmp_path):
    (tmp_path / "empty/images").mkdir(parents=True)
    (tmp_path / "empty/masks").mkdir()
    with pytest.raises(FileNotFoundError, match="no images"):
        SegmentationFolder(tmp_path / "empty", "empty")


def test_zero_one_masks_exif_rotation_and_sixteen_bit_images(tmp_path, dataset):
    root = tmp_path / "ds"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    image = np.asarray(Image.open(dataset / "images/scene_000.png"))
    mask = np.asarray(Image.open(dataset / "masks/scene_000.png")) > 0
    Image.fromarray(mask.astype(np.uint8)).save(root / "masks/binary.png")  # 0 / 1
    Image.fromarray(image).save(root / "images/binary.png")
    # A JPEG stored landscape with EXIF "rotate 90": the mask was drawn on the stored pixels.
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(image).save(root / "images/rotated.jpg", exif=exif, quality=95)
    Image.fromarray(mask.astype(np.uint8) * 255).save(root / "masks/rotated.png")
    items = {item.name: item for item in SegmentationFolder(root, "ds")}
    assert torch.equal(items["binary"].gt, torch.from_numpy(mask))
    assert items["rotated"].error is None and items["rotated"].image.shape[-2:] == mask.shape
    assert load_image(root / "images/rotated.jpg").shape[-2:] == mask.shape[::-1]  # EXIF applied elsewhere
    deep = np.full((4, 5), 200, np.uint16)  # a 16-bit file whose values happen to stay below 256
    Image.fromarray(deep).save(tmp_path / "deep.png")
    assert torch.allclose(load_image(tmp_path / "deep.png"), torch.full((3, 4, 5), 200 / 65535), atol=1e-6)
    assert load_mask(tmp_path / "deep.png").max() == 1  # 200 / 65535 of full scale


def test_settings_out_of_range_are_refused_with_the_range(tmp_path):
    with pytest.raises(ValueError, match=r"box_jitter=5 \(allowed: \[0.0, 1.0\)\)"):
        PromptSettings(box_jitter=5)
    with pytest.raises(ValueError, match=r"radius=-5 \(allowed: >= 1\)"):
        OpenCVPainter(radius=-5)
    with pytest.raises(ValueError, match=r"work_size=0 \(allowed: >= 8\)"):
        OpenCVPainter(work_size=0)
    with pytest.raises(ValueError, match=r"stride=0 \(allowed: >= 1\)"):
        ColorTextureFeatures(stride=0)
    with pytest.raises(ValueError, match=r"outpaint_band=-3 \(allowed: >= 0\); kmeans_steps=0 \(allowed: >= 1\)"):
        AMCPConfig(kmeans_steps=0, outpaint_band=-3)
    code, printed = paintseg("predict", "--config", write_config(tmp_path, tmp_path, tmp_path / "out"),
                             "--model.segmenter.init_args.config.crop_scale", "-1")
    assert code != 0 and "crop_scale=-1.0 (allowed: > 0)" in printed


def ddp_run(tmp_path, dataset, out, *extra, strategy="ddp"):
    return paintseg("predict", "--config", write_config(tmp_path, dataset, out, f"{out.name}.yaml"),
                    "--trainer.devices", "2", "--trainer.strategy", strategy, *extra)


@pytest.mark.parametrize("strategy", ["ddp", "ddp_fork"])  # ddp_fork: docs/scaling.md's CPU recipe
def test_ddp_on_two_processes_gives_the_single_process_masks_and_table(tmp_path, dataset, strategy):
    single, ddp = tmp_path / "single", tmp_path / "ddp"
    paintseg_in_process("predict", "--config", write_config(tmp_path, dataset, single))
    code, printed = ddp_run(tmp_path, dataset, ddp, strategy=strategy)
    assert code == 0, printed
    masks = lambda out: {p.name: p.read_bytes() for p in (out / "gen/masks").glob("*.png")}  # noqa: E731
    assert masks(single) == masks(ddp) and len(masks(ddp)) == 4
    table = lambda out: (out / "results.csv").read_text().splitlines()  # noqa: E731
    strip_seconds = lambda lines: [line.rsplit(",", 2)[0] for line in lines]  # seconds per image and per click  # noqa: E731
    assert strip_seconds(table(single)) == strip_seconds(table(ddp))
    assert printed.count("| gen | box | amcp | 4 | 0 |") == 1  # written once, complete


def test_ddp_with_a_bad_file_on_the_second_rank_fails_the_run(tmp_path, dataset):
    # Rank 1 of 2 takes the odd items: scene_001 and scene_003.
    (dataset / "images/scene_003.png").write_bytes(b"broken")
    code, printed = ddp_run(tmp_path, dataset, tmp_path / "stop")
    assert code != 0 and "scene_003" in printed
    code, printed = ddp_run(tmp_path, dataset, tmp_path / "skip", "--on_error", "skip")
    assert code == 0 and "| gen | box | amcp | 3 | 1 |" in (tmp_path / "skip/results.md").read_text()


def test_a_killed_run_restarted_ends_complete_with_no_leftovers(tmp_path):
    dataset = generate_dataset(tmp_path / "data", num_images=6, height=40, width=56, seed=6)
    out = tmp_path / "out"
    config = write_config(tmp_path, dataset, out)
    run = subprocess.Popen([sys.executable, "-m", "paintseg_engine", "predict", "--config", str(config)], cwd=REPO,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while len(list(out.glob("gen/records/*.json"))) < 2 and run.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        run.kill()  # SIGKILL: no handler runs, whatever it was writing
        run.wait()
    code, printed = paintseg("predict", "--config", config)
    assert code == 0, printed
    assert sorted(p.stem for p in out.glob("gen/records/*.json")) == [f"scene_{i:03d}" for i in range(6)]
    assert all(load_mask(p).shape == (40, 56) for p in out.glob("gen/masks/*.png"))
    assert not list(out.rglob("*.tmp"))


def test_sigterm_stops_the_run_after_the_item_in_hand_in_one_line_and_the_same_command_resumes(tmp_path):
    dataset = generate_dataset(tmp_path / "data", num_images=100, height=40, width=56, seed=6)
    out = tmp_path / "out"
    config = write_config(tmp_path, dataset, out)
    run = subprocess.Popen([sys.executable, "-m", "paintseg_engine", "predict", "--config", str(config)], cwd=REPO,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 120
    while len(list(out.glob("gen/records/*.json"))) < 2 and run.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    run.terminate()  # SIGTERM, as a scheduler or `kill` sends it
    printed, _ = run.communicate(timeout=60)
    done = len(list(out.glob("gen/records/*.json")))
    assert run.returncode != 0 and 2 <= done < 100, printed
    assert "stopped by SIGTERM; the finished items are kept in" in printed and "Traceback" not in printed
    assert not list(out.rglob("*.tmp"))
    paintseg_in_process("predict", "--config", config)
    assert len(list(out.glob("gen/records/*.json"))) == 100 and "| gen | box | amcp | 100 | 0 |" in (out / "results.md").read_text()


def test_a_refused_or_stopped_run_leaves_the_folder_free_in_the_same_process(tmp_path):
    first = RunFolder(tmp_path / "run")
    first.claim({"a": 1})
    first.release()
    with pytest.raises(RunFolderError, match="other settings"):
        RunFolder(tmp_path / "run").claim({"a": 2})
    RunFolder(tmp_path / "run").claim({"a": 2}, overwrite=True)  # not "another run is writing"


def test_after_a_stopped_run_the_same_process_can_run_again(tmp_path, dataset):
    from paintseg_engine.run.writer import RunFailed

    (dataset / "images/scene_001.png").write_bytes(b"broken")
    out = tmp_path / "out"
    with pytest.raises(RunFailed, match="scene_001"):
        run_in_process(dataset, out, "stop")
    run_in_process(dataset, out, "skip")  # the stopped run released the folder
    assert "| gen | box | amcp | 3 | 1 |" in (tmp_path / "out/results.md").read_text()


def child_processes(pid: int) -> list[int]:
    """Live (not zombie) processes whose parent is ``pid``, from /proc."""
    children = []
    for entry in Path("/proc").iterdir():
        try:
            state, parent = entry.joinpath("stat").read_text().rsplit(")", 1)[1].split()[:2]
        except (OSError, ValueError):
            continue
        if int(parent) == pid and state != "Z":
            children.append(int(entry.name))
    return children


def rank_one_of(pid: int) -> int | None:
    """The child process of ``pid`` that Lightning started as local rank 1 (other children, short-lived
    helpers, are not it)."""
    for child in child_processes(pid):
        try:
            if b"LOCAL_RANK=1" in Path(f"/proc/{child}/environ").read_bytes().split(b"\0"):
                return child
        except OSError:
            continue
    return None


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_a_killed_rank_zero_leaves_the_folder_locked_until_its_last_rank_ends_then_recoverable(tmp_path):
    # Rank 1 of 2 takes the odd items. Once it has written one, rank 1 is paused and rank 0 killed:
    # while rank 1 lives, no other run may start in the folder (it would mix settings there).
    dataset = generate_dataset(tmp_path / "data", num_images=8, height=40, width=56, seed=7)
    out = tmp_path / "out"
    config = write_config(tmp_path, dataset, out)
    rank0 = subprocess.Popen([sys.executable, "-m", "paintseg_engine", "predict", "--config", str(config),
                              "--trainer.devices", "2", "--trainer.strategy", "ddp"], cwd=REPO,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rank1 = None
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and rank0.poll() is None and not (
                rank1 and any(out.glob("gen/records/scene_00[1357].json"))):
            rank1 = rank1 or rank_one_of(rank0.pid)
            time.sleep(0.05)
        assert rank1 and rank0.poll() is None, "the DDP run ended (or never started rank 1) before the kill"
        os.kill(rank1, signal.SIGSTOP)
        rank0.kill()
        rank0.wait()
        with pytest.raises(RunFolderError, match="another run is writing"):
            RunFolder(out).claim({"other settings": 1}, overwrite=True)
    finally:
        if rank1 and alive(rank1):
            os.kill(rank1, signal.SIGCONT)
        rank0.kill()
        rank0.wait()
    deadline = time.monotonic() + 120
    while alive(rank1) and time.monotonic() < deadline:  # it finds rank 0 gone at its next collective
        time.sleep(0.1)
    if alive(rank1):
        os.kill(rank1, signal.SIGKILL)
        pytest.fail("rank 1 did not end within 120 s of losing rank 0")
    # The next run, with other settings, takes the folder and ends with every item of its own settings.
    run_in_process(dataset, out, on_error="stop", settings={"other settings": 1}, overwrite=True)
    assert "| gen | box | amcp | 8 | 0 |" in (out / "results.md").read_text()
    assert len({json.loads(p.read_text())["settings"] for p in out.glob("gen/records/*.json")}) == 1
