"""COCO in and out without Lightning: the reader, RLE, COCOeval's AP, the scenes, the converter."""
import json

import numpy as np
import pytest
import torch

pytest.importorskip("pycocotools", reason="the coco extra is not installed: pip install -e '.[coco]'")

from paintseg_engine.coco_eval import average_precision, box_to_xywh, result_entry  # noqa: E402
from paintseg_engine.data.coco import (CocoFileError, decode_segmentation, encode_mask,  # noqa: E402
                                       list_coco_images)
from paintseg_engine.data.synthetic import generate_coco_dataset, generate_dataset, make_multi_scene  # noqa: E402
from paintseg_engine.commands.to_coco import main as to_coco  # noqa: E402
from paintseg_engine.data.to_coco import folder_to_coco  # noqa: E402


def gt_masks(data, image_id):
    image = next(i for i in data["images"] if i["id"] == image_id)
    return {a["id"]: decode_segmentation(a["segmentation"], image["height"], image["width"])
            for a in data["annotations"] if a["image_id"] == image_id and not a["iscrowd"]}


def test_multi_scenes_have_separate_objects():
    image, objects = make_multi_scene(np.random.default_rng(0), 96, 128, 16)
    masks = np.stack([mask for mask, _ in objects])
    assert image.shape == (96, 128, 3) and len(objects) == 16
    assert masks.any(axis=(1, 2)).all() and masks.sum(axis=0).max() == 1  # every object present, none overlapping


def test_rle_round_trip_and_polygons():
    mask = torch.zeros(30, 40, dtype=torch.bool)
    mask[5:20, 10:33] = True
    rle = encode_mask(mask)
    assert isinstance(rle["counts"], str) and rle["size"] == [30, 40]
    assert torch.equal(decode_segmentation(rle, 30, 40), mask)
    polygon = [[10, 5, 33, 5, 33, 20, 10, 20]]
    assert (decode_segmentation(polygon, 30, 40) == mask).float().mean() > 0.95


def test_ground_truth_instances_skip_crowd_and_keep_empty_images(coco_dataset):
    root, annotations, _, data = coco_dataset
    images = list_coco_images(root, annotations)
    assert [i.image_id for i in images] == [1, 2]
    names = [ins.name for ins in images[0].instances]
    assert names == ["scene_000_a1", "scene_000_a2", "scene_000_a3", "scene_000_a4"]  # no crowd 1000
    first = images[0].instances[0]
    assert torch.equal(decode_segmentation(first.segmentation, 96, 128), gt_masks(data, 1)[1])
    assert first.score == 1.0 and images[0].path == root / "images/scene_000.png"


def test_category_filter_max_images_and_bad_categories(coco_dataset):
    root, annotations, _, data = coco_dataset
    wanted = data["annotations"][0]["category_id"]
    name = next(c["name"] for c in data["categories"] if c["id"] == wanted)
    images = list_coco_images(root, annotations, categories=[name], max_images=1)
    assert len(images) == 1 and images[0].instances
    assert {ins.category_id for ins in images[0].instances} == {wanted}
    with pytest.raises(CocoFileError, match="unknown categories \\['cat'\\]"):
        list_coco_images(root, annotations, categories=["cat"])


def test_detections_become_instances_above_the_threshold_with_their_scores(coco_dataset):
    root, annotations, detections, _ = coco_dataset
    images = list_coco_images(root, annotations, detections=detections, score_threshold=0.5)
    first = images[0].instances
    assert [ins.name for ins in first] == ["scene_000_d0", "scene_000_d1", "scene_000_d2", "scene_000_d3"]
    assert first[0].score == 0.9 and first[0].segmentation is None
    low = list_coco_images(root, annotations, detections=detections, score_threshold=0.0)[0].instances
    assert low[-1].name == "scene_000_d4" and low[-1].score == 0.05


@pytest.mark.parametrize("content, message", [("{not json", "not a JSON"), ('{"images": []}', "missing"),
                                              ("[]", "not a COCO instances file")])
def test_bad_annotation_files_are_named(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(CocoFileError, match=message) as error:
        list_coco_images(tmp_path, path)
    assert "bad.json" in str(error.value)


def test_bad_detections_are_named(coco_dataset, tmp_path):
    root, annotations, _, _ = coco_dataset
    bad = tmp_path / "dets.json"
    bad.write_text(json.dumps([{"image_id": 99, "category_id": 1, "bbox": [0, 0, 4, 4], "score": 1}]))
    with pytest.raises(CocoFileError, match="dets.json: detections on images not in"):
        list_coco_images(root, annotations, detections=bad)
    with pytest.raises(FileNotFoundError, match="no COCO detection results file"):
        list_coco_images(root, annotations, detections=tmp_path / "missing.json")


def test_one_perfect_instance_scores_one_at_every_threshold(tmp_path):
    annotations = generate_coco_dataset(tmp_path, num_images=1, objects=1, height=48, width=64)
    data = json.loads(annotations.read_text())
    (object_,) = data["annotations"]
    mask = gt_masks(data, 1)[object_["id"]]
    ap = average_precision(annotations, [result_entry(1, object_["category_id"], mask, 0.3)], [1])
    assert (ap.ap, ap.ap50, ap.ap75) == pytest.approx((1.0, 1.0, 1.0))
    shifted = average_precision(annotations, [result_entry(1, object_["category_id"], mask.roll(1, 1), 0.3)], [1])
    assert shifted.ap < 1.0


def test_ap_of_all_ground_truth_is_one_and_crowd_hits_do_not_count(coco_dataset):
    root, annotations, _, data = coco_dataset
    results = [result_entry(a["image_id"], a["category_id"], gt_masks(data, a["image_id"])[a["id"]], 1.0)
               for a in data["annotations"] if not a["iscrowd"]]
    crowd = torch.zeros(96, 128, dtype=torch.bool)
    crowd[:4, :8] = True  # a detection on the crowd region is ignored, as COCO does
    ap = average_precision(annotations, results + [result_entry(1, 1, crowd, 0.99)], [1, 2])
    assert (ap.ap, ap.ap50, ap.ap75) == pytest.approx((1.0, 1.0, 1.0))
    boxes = [{"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"], "score": 1.0}
             for a in data["annotations"] if not a["iscrowd"]]
    assert average_precision(annotations, boxes, [1, 2], iou_type="bbox").ap == pytest.approx(1.0)


def test_missed_objects_lower_ap_and_no_results_score_zero(coco_dataset):
    root, annotations, _, data = coco_dataset
    half = [result_entry(a["image_id"], a["category_id"], gt_masks(data, a["image_id"])[a["id"]], 1.0)
            for a in data["annotations"] if a["image_id"] == 1 and not a["iscrowd"]]
    assert 0.0 < average_precision(annotations, half, [1, 2]).ap < 1.0
    assert average_precision(annotations, [], [1, 2]).ap == 0.0
    assert box_to_xywh((2, 3, 10, 7)) == [2.0, 3.0, 8.0, 4.0]


def test_converter_writes_every_object_of_a_folder(tmp_path):
    generate_dataset(tmp_path / "gen", num_images=3, height=48, width=64)
    out = tmp_path / "gen.json"
    to_coco(["--root", str(tmp_path / "gen"), "--out", str(out), "--category", "thing"])
    data = json.loads(out.read_text())
    assert [i["file_name"] for i in data["images"]] == [f"images/scene_00{i}.png" for i in range(3)]
    assert data["categories"] == [{"id": 1, "name": "thing"}] and len(data["annotations"]) == 3
    from paintseg_engine.imageio import load_mask
    for image in list_coco_images(tmp_path / "gen", out):
        mask = load_mask(tmp_path / "gen/masks" / image.path.name) > 128
        assert torch.equal(decode_segmentation(image.instances[0].segmentation, 48, 64), mask)


def test_converter_leaves_out_unreadable_items_and_names_them(tmp_path, capsys):
    generate_dataset(tmp_path / "gen", num_images=2, height=48, width=64)
    (tmp_path / "gen/masks/scene_001.png").unlink()
    data, left_out = folder_to_coco(tmp_path / "gen")
    assert len(data["images"]) == 1 and left_out == [f"{tmp_path}/gen/images/scene_001.png: no mask"]
    with pytest.raises(SystemExit, match="paintseg to_coco: .*no folder"):
        to_coco(["--root", str(tmp_path / "nowhere"), "--out", str(tmp_path / "x.json")])
