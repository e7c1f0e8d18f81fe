"""COCO datasets through ``paintseg predict``: one session per image, records and failures per
instance, COCO results that match the written masks, mask AP in metrics.json and the table."""
import json
from pathlib import Path

import pytest
import torch
import yaml

pytest.importorskip("pycocotools", reason="the coco extra is not installed: pip install -e '.[coco]'")

from paintseg_engine.data.coco import decode_segmentation, encode_mask  # noqa: E402
from paintseg_engine.imageio import load_mask  # noqa: E402
from tests.run_helpers import paintseg, paintseg_in_process  # noqa: E402

SEGMENTERS = {
    "amcp": {"class_path": "paintseg_engine.Segmenter", "init_args": {"config": {
        "frame_size": 64, "iterations": 2, "num_samples": 2, "log_contrast": True, "outpaint_region": "background"}}},
    "grabcut": {"class_path": "paintseg_engine.baselines.GrabCutSegmenter"},
}


def write_config(tmp_path, dataset: dict, out, method: str) -> Path:
    """A run of ``method`` over ``dataset`` into ``out``, on the CPU, quietly."""
    config = tmp_path / f"{method}.yaml"
    config.write_text(yaml.safe_dump({
        "seed_everything": 0, "output_dir": str(out), "model": {"segmenter": SEGMENTERS[method]},
        "trainer": {"accelerator": "cpu", "devices": 1, "logger": False, "enable_progress_bar": False},
        "data": {"datasets": [dataset]}}))
    return config


def predict(tmp_path, dataset: dict, out, *args, method="amcp"):
    return paintseg("predict", "--config", write_config(tmp_path, dataset, out, method), *args)


def predict_in_process(tmp_path, dataset: dict, out, *args, method="amcp") -> None:
    """The same run in this process, for the tests that check what it writes, not what it prints."""
    paintseg_in_process("predict", "--config", write_config(tmp_path, dataset, out, method), *args)


def spec(root, annotations, **extra):
    return {"name": "scenes", "root": str(root), "layout": "coco", "annotations": str(annotations), **extra}


def records(out):
    return {p.stem: json.loads(p.read_text()) for p in sorted((out / "scenes/records").glob("*.json"))}


def test_ground_truth_boxes_give_one_record_per_instance_and_results_matching_the_masks(tmp_path, coco_dataset):
    root, annotations, _, data = coco_dataset
    out = tmp_path / "out"
    predict_in_process(tmp_path, spec(root, annotations), out)
    found = records(out)
    expected = {f"scene_00{a['image_id'] - 1}_a{a['id']}" for a in data["annotations"] if not a["iscrowd"]}
    assert set(found) == expected  # 8 instances, the crowd annotation has none
    results = json.loads((out / "scenes/coco_results.json").read_text())
    assert len(results) == 8 and {"image_id", "category_id", "segmentation", "score"} <= set(results[0])
    for record in found.values():
        entry = record["coco"]
        png = load_mask(out / "scenes/masks" / f"{record['name']}.png") > 0
        assert torch.equal(decode_segmentation(entry["segmentation"], 96, 128), png)
        assert entry["segmentation"] in [r["segmentation"] for r in results]
    metrics = json.loads((out / "scenes/metrics.json").read_text())
    assert metrics["images"] == 8 and metrics["failed"] == 0
    for key in ("mask_ap", "mask_ap50", "mask_ap75", "prompt_mask_ap", "prompt_box_ap"):
        assert 0.0 <= metrics[key] <= 1.0, key
    assert metrics["prompt_box_ap"] == pytest.approx(1.0)  # the prompts are the tight ground-truth boxes
    assert "mask AP" in (out / "results.md").read_text()


def test_detections_prompt_with_their_scores_above_the_threshold(tmp_path, coco_dataset):
    root, annotations, detections, _ = coco_dataset
    out = tmp_path / "out"
    predict_in_process(tmp_path, spec(root, annotations, prompts=str(detections), score_threshold=0.5), out,
                       method="grabcut")
    found = records(out)
    assert len(found) == 8 and "scene_000_d8" not in found  # the 0.05 detection is below the threshold
    assert found["scene_000_d0"]["coco"]["score"] == 0.9 and found["scene_000_d0"]["iou"] is None
    results = json.loads((out / "scenes/coco_results.json").read_text())
    assert sorted(r["score"] for r in results) == sorted(r["coco"]["score"] for r in found.values())
    assert json.loads((out / "scenes/metrics.json").read_text())["prompt_box_ap"] == pytest.approx(1.0)


def test_failed_instances_fail_alone_and_a_rerun_does_only_those(tmp_path, coco_dataset):
    root, annotations, _, data = coco_dataset
    broken = data["annotations"][1]  # image 1's second object: RLE of another image's size
    good = broken["segmentation"]
    broken["segmentation"] = encode_mask(torch.ones(10, 10, dtype=torch.bool))
    annotations.write_text(json.dumps(data))
    image_2 = (root / "images/scene_001.png").read_bytes()
    (root / "images/scene_001.png").write_bytes(b"\x89PNG not really")  # every instance of image 2 fails
    out = tmp_path / "out"
    code, log = predict(tmp_path, spec(root, annotations), out, "--on_error", "skip")
    assert code == 0 and "5 item(s) failed" in log, log
    failures = json.loads((out / "scenes/failures.json").read_text())
    assert [f["name"] for f in failures] == ["scene_000_a2", *(f"scene_001_a{i}" for i in range(5, 9))]
    assert all("scene_001.png" in f["error"] for f in failures[1:])
    assert set(records(out)) == {"scene_000_a1", "scene_000_a3", "scene_000_a4"}
    metrics = json.loads((out / "scenes/metrics.json").read_text())
    assert metrics["images"] == 3 and metrics["failed"] == 5
    partial = metrics["mask_ap50"]  # failed objects count as missed: never the AP of the survivors only

    broken["segmentation"] = good
    annotations.write_text(json.dumps(data))
    (root / "images/scene_001.png").write_bytes(image_2)
    kept = (out / "scenes/records/scene_000_a1.json").stat().st_mtime_ns
    predict_in_process(tmp_path, spec(root, annotations), out)
    assert len(records(out)) == 8
    assert (out / "scenes/records/scene_000_a1.json").stat().st_mtime_ns == kept  # finished instances not redone
    assert json.loads((out / "scenes/failures.json").read_text()) == []
    assert len(json.loads((out / "scenes/coco_results.json").read_text())) == 8
    assert json.loads((out / "scenes/metrics.json").read_text())["mask_ap50"] > partial


def test_bad_coco_settings_are_refused_with_their_reason(coco_dataset):
    from paintseg_engine.run.coco import CocoImages
    from paintseg_engine.run.datamodule import DatasetSpec
    root, annotations, detections, _ = coco_dataset
    with pytest.raises(ValueError, match="layout coco needs kind folder and annotations"):
        DatasetSpec("scenes", str(root), layout="coco")
    with pytest.raises(ValueError, match="annotations, prompts and categories belong to layout coco"):
        DatasetSpec("scenes", str(root), annotations=str(annotations))
    with pytest.raises(ValueError, match="score_threshold must be in \\[0, 1\\], got 2"):
        DatasetSpec("scenes", str(root), layout="coco", annotations=str(annotations), score_threshold=2)
    with pytest.raises(ValueError, match="a detections file gives boxes"):
        CocoImages(root, "scenes", annotations, "points", detections=detections)


def test_coco_items_skip_finished_instances_and_finished_images(coco_dataset):
    from paintseg_engine.run.coco import CocoImages
    root, annotations, _, _ = coco_dataset
    done = {"scene_000_a1", "scene_000_a2", "scene_000_a3", "scene_000_a4", "scene_001_a5"}
    images = CocoImages(root, "scenes", annotations, skip=done)
    assert len(images) == 1
    item = images[0]
    assert [i.name for i in item.instances] == ["scene_001_a6", "scene_001_a7", "scene_001_a8"]
    assert item.coco_scope.image_ids == (1, 2)  # AP is still computed on both images


def test_a_coco_dataset_without_any_instance_still_reports_its_ap(tmp_path, coco_dataset):
    from paintseg_engine.run.coco import CocoImages
    from paintseg_engine.run.folder import RunFolder
    from paintseg_engine.run.results import run_rows
    from paintseg_engine.imageio import write_json_atomic
    root, annotations, detections, _ = coco_dataset
    images = CocoImages(root, "scenes", annotations, detections=detections, score_threshold=0.95)
    assert len(images) == 2 and images[0].instances == [] and images[0].image is None
    run = RunFolder(tmp_path / "out")
    write_json_atomic(run.coco_scope_path("scenes"), images.scope.to_json())
    (row,) = run_rows(run, [], [], write_coco_results=True)
    assert (row["dataset"], row["images"], row["mask_ap"], row["prompt_box_ap"]) == ("scenes", 0, 0.0, 0.0)
    assert json.loads(run.coco_results_path("scenes").read_text()) == []


def test_a_bad_annotations_file_is_one_line_naming_it(tmp_path, coco_dataset):
    root, _, _, _ = coco_dataset
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    config = write_config(tmp_path, spec(root, bad), tmp_path / "out", "amcp")
    with pytest.raises(SystemExit, match=f"paintseg: error: {bad} is not a JSON COCO annotations file"):
        paintseg_in_process("predict", "--config", config)


def test_ddp_answers_each_image_on_one_rank_and_writes_the_results_once(tmp_path, coco_dataset):
    root, annotations, _, _ = coco_dataset
    out = tmp_path / "ddp"
    code, log = predict(tmp_path, spec(root, annotations), out, "--trainer.devices", "2", "--trainer.strategy", "ddp",
                        method="grabcut")
    assert code == 0, log
    assert len(records(out)) == 8 and log.count("| scenes | box | grabcut | 8 | 0 |") == 1
    results = json.loads((out / "scenes/coco_results.json").read_text())
    assert sorted(r["image_id"] for r in results) == [1] * 4 + [2] * 4  # both ranks' instances, once each
    assert json.loads((out / "scenes/metrics.json").read_text())["mask_ap"] is not None
